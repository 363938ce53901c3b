"""FIX 4.4 session layer, sans-I/O: bytes and time in, events and bytes to send out.

One :class:`FixSession` is one TCP connection's session, either side (initiator or acceptor), written as an
explicit state machine in the manner of h11: a call that is illegal in the current state raises
:class:`FixSessionError` instead of drifting::

    initiator:  IDLE --start()--> LOGON_SENT --Logon--> ACTIVE --logout()--> LOGOUT_SENT --Logout--> CLOSED
    acceptor:   AWAITING_LOGON --Logon (answered)--> ACTIVE ...
    any state --error / peer Logout / dead peer / timeout / connection_lost()--> CLOSED

What it does:
- **Logon**: both sides reset sequence numbers (141=Y); the initiator's Logon and the acceptor's answer are
  both MsgSeqNum 1. The acceptor adopts the initiator's SenderCompID (when not told whom to expect) and its
  HeartBtInt, as FIX prescribes.
- **Sequence numbers**: outgoing MsgSeqNum counts up from 1; an incoming number above the expected one (a
  gap) or below it without PossDupFlag=Y ends the session with a Logout naming both numbers. No
  ResendRequest is sent or honoured: a broken session is simply re-established and orders are reconciled at
  the order level (OrderStatusRequest re-sends executions under their original ExecIDs).
- **Liveness**: a Heartbeat after ``heartbeat_interval`` seconds without sending; a TestRequest after
  ``heartbeat_interval * (1 + TEST_REQUEST_GRACE)`` seconds without receiving; the peer is declared dead when
  that TestRequest is not answered (by anything) within another ``heartbeat_interval``. Time is passed in
  (``now``, monotonic seconds); SendingTime (52) comes from ``clock`` (UTC epoch seconds).
- **Bad input**: a garbled message (bad framing, BodyLength or CheckSum; garbage) ends the session with a
  Logout giving the reason, since nothing in it can be trusted and no resend is offered. A well-framed
  message with a malformed field gets a session Reject (35=3) and consumes its sequence number. Application
  content errors are the application's to answer, with :meth:`FixSession.reject`.

Events (:data:`Event`): :class:`LoggedOn`, :class:`Received` (an application message, in sequence),
:class:`RejectReceived`, and :class:`Closed` (always the last one, exactly once; the adapter then sends what
``data_to_send()`` holds and closes the socket).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from vocab.digits import is_ascii_digits, parse_ascii_int

from .codec import (
    HEART_BT_INT,
    INCARNATION,
    MSG_SEQ_NUM,
    MSG_TYPE,
    POSS_DUP_FLAG,
    POSS_RESEND,
    RESET_SEQ_NUM_FLAG,
    SENDER_COMP_ID,
    SENDING_TIME,
    TARGET_COMP_ID,
    TEST_REQ_ID,
    TEXT,
    DecodeErrorKind,
    FixDecodeError,
    FixMessage,
    FixParser,
    encode,
    utc_timestamp,
)
from .messages import (
    FixFieldError,
    MsgType,
    SessionReject,
    SessionRejectReason,
    heartbeat,
    logon,
    logout,
    test_request,
)

TEST_REQUEST_GRACE = 0.2  # fraction of the heartbeat interval allowed for transmission delay
MAX_HEARTBEAT_INTERVAL = 3600


class Role(enum.Enum):
    INITIATOR = "initiator"
    ACCEPTOR = "acceptor"


class SessionState(enum.Enum):
    IDLE = "idle"                      # initiator, before start()
    AWAITING_LOGON = "awaiting_logon"  # acceptor, until the initiator's Logon
    LOGON_SENT = "logon_sent"          # initiator, until the acceptor answers
    ACTIVE = "active"
    LOGOUT_SENT = "logout_sent"        # we asked to end; waiting for the peer's Logout (or a timeout)
    CLOSED = "closed"


TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.IDLE: frozenset({SessionState.LOGON_SENT, SessionState.CLOSED}),
    SessionState.AWAITING_LOGON: frozenset({SessionState.ACTIVE, SessionState.CLOSED}),
    SessionState.LOGON_SENT: frozenset({SessionState.ACTIVE, SessionState.CLOSED}),
    SessionState.ACTIVE: frozenset({SessionState.LOGOUT_SENT, SessionState.CLOSED}),
    SessionState.LOGOUT_SENT: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}


class FixSessionError(Exception):
    """The session was used in a way its state does not allow (a bug in the caller, h11's LocalProtocolError)."""


@dataclass(frozen=True, slots=True)
class LoggedOn:
    peer_comp_id: str
    heartbeat_interval: int
    # the peer's order-memory incarnation (tag 9100 on its Logon): a new one means it restarted without its orders
    peer_incarnation: str | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """An application message from the peer, in sequence (header included)."""

    message: FixMessage


@dataclass(frozen=True, slots=True)
class RejectReceived:
    """The peer refused one of our messages at the session level."""

    reject: SessionReject


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over; ``by_peer`` when the peer ended it (Logout, lost connection)."""

    reason: str
    by_peer: bool


Event = LoggedOn | Received | RejectReceived | Closed

COUNTER_NAMES = ("messages_in", "messages_out", "heartbeats_out", "test_requests_out", "garbled", "rejects_out",
                 "rejects_in", "duplicates_ignored")


class FixSession:
    def __init__(self, role: Role, sender_comp_id: str, target_comp_id: str | None = None, *,
                 heartbeat_interval: int = 30, logon_timeout: float = 10.0, logout_timeout: float = 2.0,
                 clock: Callable[[], float] = time.time, max_message_size: int | None = None,
                 incarnation: str | None = None, admit: Callable[[str], str | None] | None = None) -> None:
        if role is Role.INITIATOR and not target_comp_id:
            raise ValueError("an initiator must name its target CompID")
        if not 1 <= heartbeat_interval <= MAX_HEARTBEAT_INTERVAL:
            raise ValueError(f"heartbeat interval must be 1..{MAX_HEARTBEAT_INTERVAL} s")
        self.role = role
        self.sender_comp_id = sender_comp_id
        self.target_comp_id = target_comp_id
        self.heartbeat_interval = heartbeat_interval
        self.incarnation = incarnation  # sent on our Logon (tag 9100)
        # acceptor: called with the initiator's SenderCompID once its Logon is otherwise valid; a reason refuses it
        # (answered with a Logout giving the reason), None admits it
        self.admit = admit
        self.logon_timeout = logon_timeout
        self.logout_timeout = logout_timeout
        self.clock = clock
        self.state = SessionState.IDLE if role is Role.INITIATOR else SessionState.AWAITING_LOGON
        self.next_out_seq = 1
        self.next_in_seq = 1
        # "slow" fault injection: send no Heartbeats or TestRequests and answer no TestRequest
        self.muted = False
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.close_reason: str | None = None
        self._parser = FixParser(max_message_size) if max_message_size else FixParser()
        self._out: list[bytes] = []
        self._started = False
        self._state_since = 0.0
        self._last_sent = 0.0
        self._last_received = 0.0
        self._test_req: tuple[str, float] | None = None
        self._test_req_count = 0
        self._logout_reason = ""

    # ------------------------------------------------------------------ state

    def _set_state(self, new: SessionState, now: float) -> None:
        if new not in TRANSITIONS[self.state]:
            raise FixSessionError(f"illegal session transition {self.state.value} -> {new.value}")
        self.state = new
        self._state_since = now

    @property
    def active(self) -> bool:
        return self.state is SessionState.ACTIVE

    @property
    def closed(self) -> bool:
        return self.state is SessionState.CLOSED

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> bytes:
        """Every byte produced since the last call, in order (send all of it before closing)."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _send(self, message: FixMessage, now: float) -> None:
        target = self.target_comp_id or "UNKNOWN"
        header: list[tuple[int, str]] = [(MSG_TYPE, message.msg_type), (SENDER_COMP_ID, self.sender_comp_id),
                                         (TARGET_COMP_ID, target), (MSG_SEQ_NUM, str(self.next_out_seq))]
        body: list[tuple[int, str]] = []
        for tag, value in message.fields[1:]:
            if tag in (POSS_DUP_FLAG, POSS_RESEND):
                header.append((tag, value))
            elif tag in (SENDER_COMP_ID, TARGET_COMP_ID, MSG_SEQ_NUM, SENDING_TIME):
                raise FixSessionError(f"tag {tag} is set by the session")
            else:
                body.append((tag, value))
        header.append((SENDING_TIME, utc_timestamp(self.clock())))
        self._out.append(encode(FixMessage(header + body)))
        self.next_out_seq += 1
        self._last_sent = now
        self.counters["messages_out"] += 1

    def start(self, now: float) -> None:
        """Begin: an initiator sends its Logon; an acceptor starts waiting for one (the logon timeout)."""
        if self._started:
            raise FixSessionError("session already started")
        self._started = True
        self._last_received = self._last_sent = self._state_since = now
        if self.role is Role.INITIATOR:
            self._send(logon(self.heartbeat_interval, incarnation=self.incarnation), now)
            self._set_state(SessionState.LOGON_SENT, now)

    def send(self, message: FixMessage, now: float) -> None:
        """Queue an application message (header and sequence number added here). Only when ACTIVE."""
        if self.state is not SessionState.ACTIVE:
            raise FixSessionError(f"cannot send application messages in state {self.state.value}")
        if message.msg_type in (MsgType.LOGON, MsgType.LOGOUT, MsgType.HEARTBEAT, MsgType.TEST_REQUEST, "2", "4"):
            raise FixSessionError(f"MsgType {message.msg_type} is sent by the session itself")
        self._send(message, now)

    def reject(self, ref_seq_num: int, reason: SessionRejectReason, text: str, now: float, *,
               ref_tag: int | None = None, ref_msg_type: str | None = None) -> None:
        """Answer the peer's message ``ref_seq_num`` with a session Reject (35=3)."""
        if self.state not in (SessionState.ACTIVE, SessionState.LOGOUT_SENT):
            raise FixSessionError(f"cannot reject in state {self.state.value}")
        self._send(SessionReject(ref_seq_num, reason, text[:200], ref_tag, ref_msg_type).to_fix(), now)
        self.counters["rejects_out"] += 1

    def logout(self, reason: str, now: float) -> list[Event]:
        """End the session: ACTIVE sends a Logout and waits for the peer's; before logon, close at once."""
        if self.state is SessionState.CLOSED:
            raise FixSessionError("session already closed")
        if self.state is SessionState.LOGOUT_SENT:
            return []
        if self.state is SessionState.ACTIVE:
            self._send(logout(reason), now)
            self._logout_reason = reason
            self._set_state(SessionState.LOGOUT_SENT, now)
            return []
        return self._fail(reason, now)

    def fail(self, reason: str, now: float) -> list[Event]:
        """End the session at once because this side cannot go on (the adapter caught an error it did not
        expect): a Logout saying why if a session was up, then CLOSED. Nothing is drained or awaited."""
        if self.state is SessionState.CLOSED:
            raise FixSessionError("session already closed")
        return self._fail(reason, now)

    def connection_lost(self, now: float, reason: str = "connection lost") -> list[Event]:
        """The transport is gone; returns the Closed event unless the session had already ended."""
        if self.state is SessionState.CLOSED:
            return []
        return self._close(reason, now, by_peer=True)

    # ------------------------------------------------------------------ closing

    def _close(self, reason: str, now: float, *, by_peer: bool) -> list[Event]:
        self._set_state(SessionState.CLOSED, now)
        self.close_reason = reason
        return [Closed(reason, by_peer)]

    def _fail(self, reason: str, now: float) -> list[Event]:
        """End the session because of an error on the peer's side: a Logout saying why, then CLOSED."""
        if self.state in (SessionState.ACTIVE, SessionState.LOGOUT_SENT, SessionState.AWAITING_LOGON,
                          SessionState.LOGON_SENT):
            self._send(logout(reason[:200]), now)
        return self._close(reason, now, by_peer=False)

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the socket; returns the events they cause (stops after :class:`Closed`)."""
        if not self._started:
            raise FixSessionError("start() the session before feeding it")
        if self.state is SessionState.CLOSED:
            raise FixSessionError("session closed")
        events: list[Event] = []
        for item in self._parser.feed(data):
            if self.closed:
                break
            self._last_received = now
            if isinstance(item, FixDecodeError):
                events += self._on_garbled(item, now)
            else:
                events += self._on_message(item, now)
        return events

    def _on_garbled(self, error: FixDecodeError, now: float) -> list[Event]:
        self.counters["garbled"] += 1
        if error.kind.framing or self.state not in (SessionState.ACTIVE, SessionState.LOGOUT_SENT) \
                or error.seq_num != self.next_in_seq:
            return self._fail(f"garbled message ({error.kind.value}: {error.detail})", now)
        self.next_in_seq += 1
        if error.kind is DecodeErrorKind.MISSING_MSG_TYPE:
            self.reject(error.seq_num, SessionRejectReason.REQUIRED_TAG_MISSING, error.detail, now, ref_tag=MSG_TYPE)
        else:
            self.reject(error.seq_num, SessionRejectReason.INCORRECT_DATA_FORMAT, error.detail, now,
                        ref_msg_type=error.msg_type)
        return []

    def _on_message(self, msg: FixMessage, now: float) -> list[Event]:
        self.counters["messages_in"] += 1
        seq_text = msg.get(MSG_SEQ_NUM)
        if seq_text is None or not is_ascii_digits(seq_text):
            return self._fail("MsgSeqNum (34) missing or malformed", now)
        seq = parse_ascii_int(seq_text)
        peer = msg.get(SENDER_COMP_ID)
        if self.state is SessionState.AWAITING_LOGON and self.target_comp_id is None and peer:
            self.target_comp_id = peer
        if peer != self.target_comp_id or msg.get(TARGET_COMP_ID) != self.sender_comp_id:
            return self._fail(f"CompID problem: got {peer}->{msg.get(TARGET_COMP_ID)}, expected "
                              f"{self.target_comp_id}->{self.sender_comp_id}", now)
        mtype = msg.msg_type

        if self.state in (SessionState.AWAITING_LOGON, SessionState.LOGON_SENT):
            return self._on_logon_phase(msg, mtype, seq, now)

        # ACTIVE or LOGOUT_SENT
        if mtype == MsgType.LOGOUT:
            return self._on_logout(msg, now)
        if seq > self.next_in_seq:
            return self._fail(f"MsgSeqNum too high, expected {self.next_in_seq} received {seq}", now)
        if seq < self.next_in_seq:
            if msg.get(POSS_DUP_FLAG) == "Y":
                self.counters["duplicates_ignored"] += 1
                return []
            return self._fail(f"MsgSeqNum too low, expected {self.next_in_seq} received {seq}", now)
        self.next_in_seq += 1
        self._test_req = None  # anything in sequence shows the peer is alive

        if mtype == MsgType.HEARTBEAT:
            return []
        if mtype == MsgType.TEST_REQUEST:
            if not self.muted:
                self._send(heartbeat(msg.get(TEST_REQ_ID)), now)
            return []
        if mtype == MsgType.REJECT:
            self.counters["rejects_in"] += 1
            try:
                rej = SessionReject.from_fix(msg)
            except FixFieldError:
                rej = SessionReject(0, None, msg.get(TEXT, "") or "")
            return [RejectReceived(rej)]
        if mtype == MsgType.LOGON:
            return self._fail("Logon received in an established session", now)
        if mtype in ("2", "4"):
            return self._fail("ResendRequest/SequenceReset not supported: reconnect and reconcile orders", now)
        return [Received(msg)]

    def _on_logon_phase(self, msg: FixMessage, mtype: str, seq: int, now: float) -> list[Event]:
        if mtype == MsgType.LOGOUT:
            return self._close(f"logon refused: {msg.get(TEXT) or 'no reason given'}", now, by_peer=True)
        if mtype != MsgType.LOGON:
            return self._fail(f"expected Logon, got MsgType {mtype}", now)
        if msg.get(RESET_SEQ_NUM_FLAG) != "Y" or seq != 1:
            return self._fail("Logon must reset sequence numbers (141=Y, MsgSeqNum 1)", now)
        hb_text = msg.get(HEART_BT_INT) or ""
        if not is_ascii_digits(hb_text, 4) or not 1 <= int(hb_text) <= MAX_HEARTBEAT_INTERVAL:
            return self._fail(f"HeartBtInt (108) must be 1..{MAX_HEARTBEAT_INTERVAL}", now)
        if msg.get(98, "0") != "0":
            return self._fail("EncryptMethod (98) must be 0", now)
        if self.role is Role.ACCEPTOR and self.admit is not None:
            refusal = self.admit(self.target_comp_id or "")
            if refusal is not None:
                return self._fail(f"logon refused: {refusal}", now)
        self.next_in_seq = 2
        if self.role is Role.ACCEPTOR:
            self.heartbeat_interval = int(hb_text)
            self._send(logon(self.heartbeat_interval, incarnation=self.incarnation), now)
        self._set_state(SessionState.ACTIVE, now)
        self._test_req = None
        return [LoggedOn(self.target_comp_id or "", self.heartbeat_interval, msg.get(INCARNATION))]

    def _on_logout(self, msg: FixMessage, now: float) -> list[Event]:
        text = msg.get(TEXT) or "logout"
        if self.state is SessionState.LOGOUT_SENT:
            return self._close(self._logout_reason or text, now, by_peer=False)
        self._send(logout("logout acknowledged"), now)
        return self._close(f"peer logged out: {text}", now, by_peer=True)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (None: nothing until more input)."""
        st = self.state
        if not self._started or st is SessionState.CLOSED:
            return None
        if st in (SessionState.AWAITING_LOGON, SessionState.LOGON_SENT):
            return self._state_since + self.logon_timeout
        if st is SessionState.LOGOUT_SENT:
            return self._state_since + self.logout_timeout
        hb = self.heartbeat_interval
        if self._test_req is not None:
            due = self._test_req[1] + hb
        elif self.muted:
            due = self._last_received + hb * (2 + TEST_REQUEST_GRACE)
        else:
            due = self._last_received + hb * (1 + TEST_REQUEST_GRACE)
        if not self.muted:
            due = min(due, self._last_sent + hb)
        return due

    def tick(self, now: float) -> list[Event]:
        """Run the timers: logon/logout timeouts, Heartbeat, TestRequest, dead peer."""
        st = self.state
        if not self._started or st is SessionState.CLOSED:
            return []
        if st in (SessionState.AWAITING_LOGON, SessionState.LOGON_SENT):
            if now - self._state_since >= self.logon_timeout:
                return self._close(f"no Logon within {self.logon_timeout:g} s", now, by_peer=False)
            return []
        if st is SessionState.LOGOUT_SENT:
            if now - self._state_since >= self.logout_timeout:
                return self._close(self._logout_reason, now, by_peer=False)
            return []
        hb = self.heartbeat_interval
        if self._test_req is not None:
            if now - self._test_req[1] >= hb:
                return self._fail(f"peer dead: no answer to TestRequest within {hb} s", now)
        elif self.muted:
            if now - self._last_received >= hb * (2 + TEST_REQUEST_GRACE):
                return self._fail(f"peer dead: nothing received for {hb * (2 + TEST_REQUEST_GRACE):g} s", now)
        elif now - self._last_received >= hb * (1 + TEST_REQUEST_GRACE):
            self._test_req_count += 1
            test_id = f"TEST-{self._test_req_count}"
            self._send(test_request(test_id), now)
            self.counters["test_requests_out"] += 1
            self._test_req = (test_id, now)
        if not self.muted and now - self._last_sent >= hb:
            self._send(heartbeat(), now)
            self.counters["heartbeats_out"] += 1
        return []
