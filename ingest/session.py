"""MoldUDP64 feed session state (pure, sans-I/O): datagrams in, messages in sequence order out.

The session is an explicit state machine (h11-style, like ``order_api.fix.session``): the legal moves are the
table ``TRANSITIONS``, every change of state goes through one method that checks it, and a move the table does
not list raises :class:`FeedSessionError` (a bug in the session or its caller, never bad input)::

    IN_SYNC --gap--> RECOVERING --hole filled--> IN_SYNC (or STALE, if a hole was skipped before)
                         |
                         +--recovery timeout, no hole left--> STALE (hole skipped; the books can no longer
                         |                                      |     be vouched for until rebuilt)
                         |                                      +--gap--> RECOVERING
    IN_SYNC | RECOVERING | STALE --begin_rebuild()--> REBUILDING --rebuilt(seq) / abort_rebuild()--> RECOVERING

In sync, each packet's new messages are given out at once. On a gap the session holds the packets that
arrive beyond the hole, whole and undecoded (``recovery.HeldPackets``, bounded by ``max_pending`` messages,
O(log n) per packet so a handler behind under a burst catches up), and asks, through ``take_requests``, for
the missing ranges to be re-sent by the re-request server ("rewinder"): a window of requests at a time
(``recovery.plan_requests``), each new hole as soon as it is seen, the window sliding on as answers arrive,
the same window again only if nothing has arrived for ``retry_interval``. Re-sent packets go through
``on_packet`` like any other, from any line, and whichever copy of a sequence number comes first wins (A/B
arbitration is this same rule). A hole that gets no answer for ``recovery_timeout`` is given up on. Time is
passed in (``now``), never read, so the machine can be tested step by step. Nothing here raises on bad
input: every problem has its own counter.

Hostile input (issue 10): a sequence farther than ``max_gap`` from the stream is ``implausible_jump``,
ignored, never a gap (one forged heartbeat announcing 2**64-1 used to stop the feed for good); only the same
far-away stream, consistent and alone for a whole recovery timeout, is followed (``resyncs``: through
RECOVERING to STALE, the books to be rebuilt). Held packets are bounded in bytes as well as messages. The
session name is given, or pinned from a snapshot (``adopt_session=False``), not taken from the first packet.
A rebuild resets every piece of sequence state (expected and highest known sequence, holes, requests, what
was held before it), so a poisoned state ends with the next snapshot.

Output comes in one of two forms, fixed at construction:

- decoded messages (the default): ``on_packet``, ``poll``, ``rebuilt`` and ``abort_rebuild`` return them;
- ``raw=True``, for batched books (``KernelBooks.apply_bytes``): those methods return nothing, and
  ``take_ready`` gives the applicable messages as undecoded blocks (length-prefixed ITCH, as in a capture),
  in sequence order; ``take_raw`` is the fast path for the packet that simply continues the stream.
"""

from __future__ import annotations

import enum
from collections import deque

from .messages import Message
from .moldudp64 import END_OF_SESSION_COUNT, HEADER, HEADER_SIZE, HEARTBEAT_COUNT
from .packets import decode_blocks, framing_error, skip_messages, walk_packet
from .partition import PartitionFilter
from .recovery import DEFAULT_MAX_HELD_BYTES, MAX_MISSING_RANGES, Gap, HeldPackets, Request, plan_requests

__all__ = ["COUNTER_NAMES", "DEFAULT_MAX_GAP", "DEFAULT_MAX_HELD_BYTES", "TRANSITIONS", "FeedSession",
           "FeedSessionError", "Gap", "Request", "State"]

# The farthest a packet's sequence may lie from where the stream stands and still be believed: about two
# seconds of the busiest US equity feed at its peak (~1M messages/s), what a recovery timeout can lose.
# A sequence farther away (a forged heartbeat announcing 2**64-1, a stray packet of last week's session) is
# counted as ``implausible_jump`` and ignored, never taken for a gap.
DEFAULT_MAX_GAP = 2_000_000

class State(enum.Enum):
    IN_SYNC = "in_sync"
    RECOVERING = "recovering"
    STALE = "stale"
    REBUILDING = "rebuilding"  # live messages are held while a snapshot is fetched


# The whole machine: anything not listed is a bug, not a drift. Why each move happens:
TRANSITIONS: dict[State, frozenset[State]] = {
    # a hole (in a packet's or a heartbeat's sequence); or a snapshot asked for (a late joiner)
    State.IN_SYNC: frozenset({State.RECOVERING, State.REBUILDING}),
    # every hole filled: in sync, or stale if an earlier hole was skipped; the last hole given up on: stale;
    # a snapshot asked for while another hole is still being recovered
    State.RECOVERING: frozenset({State.IN_SYNC, State.STALE, State.REBUILDING}),
    # a new hole (recovered as usual, the session stays flagged); a snapshot asked for
    State.STALE: frozenset({State.RECOVERING, State.REBUILDING}),
    # the snapshot applied, or not to be had: what was held is released, its holes recovered as usual
    State.REBUILDING: frozenset({State.RECOVERING}),
}


class FeedSessionError(Exception):
    """The session was driven through a move its table does not allow (h11's LocalProtocolError)."""

    def __init__(self, old: State, new: State) -> None:
        super().__init__(f"illegal feed-session transition {old.value} -> {new.value}")
        self.old, self.new = old, new


COUNTER_NAMES = (
    "packets", "bytes", "messages", "heartbeats", "end_of_session", "duplicate_packets",
    "duplicate_messages", "gaps", "messages_missed", "unknown_session", "malformed_packets",
    "truncated_messages", "unknown_message_types", "requests_sent", "messages_recovered",
    "recoveries", "recovery_failures", "pending_overflow", "other_partition", "sequence_backwards",
    # hostile input: a sequence beyond ``max_gap`` (ignored); the stream found to have truly moved there
    # (followed, books stale); a datagram from a source not configured (counted by the handler)
    "implausible_jump", "resyncs", "foreign_source",
)


class FeedSession:
    def __init__(self, session: str | None = None, *, recovery_timeout: float = 2.0,
                 retry_interval: float = 0.2, max_pending: int = 2_000_000,
                 partition: PartitionFilter | None = None, raw: bool = False, max_gap: int = DEFAULT_MAX_GAP,
                 max_held_bytes: int = DEFAULT_MAX_HELD_BYTES, adopt_session: bool = True) -> None:
        if max_gap <= 0 or max_held_bytes <= 0 or max_pending <= 0:
            raise ValueError("max_gap, max_held_bytes and max_pending must be positive")
        if raw and partition is not None:
            raise ValueError("raw output carries every symbol: a partition needs decoded output")
        # with a partition, only its symbols' messages are decoded and returned (all are sequenced)
        self.partition = partition
        self.raw = raw
        # None: with ``adopt_session`` (captures, tests), the first session name seen is taken; without it (a
        # node on a network), nothing is accepted until ``pin_session`` names it (from a snapshot), and the
        # books start stale so that the handler fetches that snapshot at once.
        self.session = session
        self.adopt_session = adopt_session
        self.max_gap = max_gap
        # the session as it appears on the wire (compared per packet on the hot path)
        self._raw_session = session.encode("ascii", "replace").ljust(10, b" ")[:10] if session is not None else b""
        self.next_seq: int | None = None
        self._state = State.IN_SYNC
        self.ended = False
        self.recovery_timeout = recovery_timeout
        self.retry_interval = retry_interval
        self.max_pending = max_pending
        self.missing: deque[Gap] = deque(maxlen=MAX_MISSING_RANGES)
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.last_error: str | None = None
        self._held = HeldPackets(max_pending, max_held_bytes)  # packets beyond a hole, whole and undecoded
        # holes seen beyond the first one, [first, end) in sequence order, to ask for before the front reaches
        self._holes: deque[tuple[int, int]] = deque(maxlen=MAX_MISSING_RANGES)
        self._ready: list[bytes] = []  # raw output not yet taken
        self._hole_since = 0.0  # when the current recovery began
        self._last_progress = 0.0  # when the front of the hole last moved
        self._last_request = -1.0
        self._requested_until = 0  # every missing message below this has been asked for (since the last retry)
        self._last_packet_seq = 0  # first sequence of the previous data packet
        self._requests: list[Request] = []
        # the sequence number after the highest one known to exist (from packets and heartbeats)
        self._known_end = 0
        # set when a hole had to be skipped: some book may be wrong until rebuilt from a snapshot
        self.needs_rebuild = session is None and not adopt_session
        # an implausible sequence seen with no progress since: (when first seen, where it ends, the progress
        # marker then). The same far-away stream, consistent and alone for a recovery timeout, is followed.
        self._jump: tuple[float, int, tuple[int | None, int]] | None = None
        # seconds from each gap's detection to its last message applied, most recent last
        self.recovery_seconds: deque[float] = deque(maxlen=256)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> State:
        """Read only: every change goes through ``_set_state``, which checks it against ``TRANSITIONS``."""
        return self._state

    def _set_state(self, new: State) -> None:
        if new not in TRANSITIONS[self._state]:
            raise FeedSessionError(self._state, new)
        self._state = new

    def _begin_recovery(self, since: float) -> None:
        """Enter recovery (or start it afresh on the next hole): the clock that times a hole out starts at
        ``since``, and everything missing is to be asked for again."""
        if self._state is not State.RECOVERING:
            self._set_state(State.RECOVERING)
        self._hole_since = self._last_progress = since
        self._requested_until = 0

    @property
    def held_messages(self) -> int:
        """Messages held beyond a hole (bounded by ``max_pending``)."""
        return self._held.messages

    @property
    def held_bytes(self) -> int:
        """Payload bytes held beyond a hole (bounded by ``max_held_bytes``)."""
        return self._held.bytes

    def pin_session(self, name: str) -> None:
        """Accept only session ``name`` from now on (a snapshot said which session the feed is in)."""
        self.session = name
        self._raw_session = name.encode("ascii", "replace").ljust(10, b" ")[:10]

    # ------------------------------------------------------------------ input
    def take_raw(self, data: bytes) -> bytes | None:
        """For a batched consumer: if ``data`` is exactly the next packet of the stream, well framed, advance
        over it and return its message blocks (length-prefixed ITCH, as in a capture) undecoded.

        None means "not that simple" (a gap, an overlap, a heartbeat, another session, a partition filter,
        recovery in progress, bad framing): the caller then uses ``on_packet``, which handles every case.
        """
        expected = self.next_seq
        if self._state is not State.IN_SYNC or expected is None or self.partition is not None \
                or len(data) <= HEADER_SIZE:
            return None
        raw_session, seq, count = HEADER.unpack_from(data)
        if seq != expected or count in (HEARTBEAT_COUNT, END_OF_SESSION_COUNT) or raw_session != self._raw_session:
            return None
        if framing_error(data, count) is not None:  # framing must hold exactly, or the sequence would drift
            return None
        end = len(data)
        c = self.counters
        c["packets"] += 1
        c["bytes"] += end
        c["messages"] += count
        if seq < self._last_packet_seq:
            c["sequence_backwards"] += 1
        self._last_packet_seq = seq
        self.next_seq = seq + count
        if self.next_seq > self._known_end:
            self._known_end = self.next_seq
        return data[HEADER_SIZE:]

    def take_ready(self) -> list[bytes]:
        """Raw output: the blocks made applicable since the last call, in sequence order (empty unless raw)."""
        out, self._ready = self._ready, []
        return out

    def on_packet(self, data: bytes, now: float = 0.0) -> list[Message]:
        """Take one datagram; return the messages it makes applicable, in sequence order (raw: none, see
        ``take_ready``)."""
        c = self.counters
        c["packets"] += 1
        c["bytes"] += len(data)
        expected = self.next_seq
        if self._state is State.IN_SYNC and expected is not None and self.partition is None and not self.raw \
                and len(data) >= HEADER_SIZE:
            # The hot path: a packet that continues the stream, framed and decoded in one walk.
            raw_session, seq, count = HEADER.unpack_from(data)
            if seq <= expected < seq + count and count != END_OF_SESSION_COUNT and raw_session == self._raw_session:
                out = walk_packet(data, count, expected - seq, c)
                if out is not None:
                    if seq < self._last_packet_seq:
                        c["sequence_backwards"] += 1
                    if seq < expected:
                        c["duplicate_messages"] += expected - seq
                    self._last_packet_seq = seq
                    end = seq + count
                    self.next_seq = end
                    if end > self._known_end:
                        self._known_end = end
                    return out
                # malformed: the general path below counts it
        if len(data) < HEADER_SIZE:
            return self._malformed("truncated_header", f"packet of {len(data)} bytes is shorter than the header")
        raw_session, seq, count = HEADER.unpack_from(data)
        if seq == 0:
            # MoldUDP64 numbers messages from 1: a stream "at 0" would make message 1 look like a gap forever
            return self._malformed("zero_sequence", "MoldUDP64 sequence numbers start at 1")
        if count == HEARTBEAT_COUNT or count == END_OF_SESSION_COUNT:
            if len(data) != HEADER_SIZE:
                return self._malformed("count_mismatch", f"count {count:#x} packet carries extra bytes")
        else:
            error = framing_error(data, count)
            if error is not None:
                return self._malformed(error, f"{count} messages do not frame the packet's {len(data)} bytes")
        if raw_session != self._raw_session:
            try:
                name = raw_session.decode("ascii").rstrip(" ")
            except UnicodeDecodeError:
                return self._malformed("bad_session", "session name is not ASCII")
            if self.session is not None or not self.adopt_session:
                c["unknown_session"] += 1
                self.last_error = (f"packet from session {name!r}, expected {self.session!r}" if self.session
                                   else f"packet from session {name!r} before a snapshot named the session")
                return []
            self.session = name
            self._raw_session = raw_session
        if expected is not None and (seq > max(self._known_end, expected) + self.max_gap
                                     or seq + self.max_gap < expected):
            if not self._implausible(seq, seq if count in (HEARTBEAT_COUNT, END_OF_SESSION_COUNT) else seq + count,
                                     now):
                return []
            expected = self.next_seq
        if count == HEARTBEAT_COUNT or count == END_OF_SESSION_COUNT:
            if count == HEARTBEAT_COUNT:
                c["heartbeats"] += 1
            else:
                c["end_of_session"] += 1
                self.ended = True
            # A heartbeat carries the next sequence number: a higher one means we missed messages.
            if expected is None:
                self.next_seq = seq
            elif seq > self._known_end:
                self._beyond(max(self._known_end, expected), seq, now)
                self._known_end = seq
                if (self._state is State.IN_SYNC or self._state is State.STALE) and seq > expected:
                    self._open_gap(expected, seq, now)
            return []
        if expected is None:
            expected = self.next_seq = seq
        if seq < self._last_packet_seq:
            # reordered, re-sent, or a sequence that jumped back: its own counter, whatever happens next
            c["sequence_backwards"] += 1
        self._last_packet_seq = seq
        end = seq + count
        if self._state is State.REBUILDING:
            # the snapshot decides where the stream resumes: what the expected sequence says now (possibly
            # poisoned) must not drop what it will need; every packet held counts against the bounds
            self._hold(data[HEADER_SIZE:], seq, count, front=-1)
            return []
        if end <= expected:
            c["duplicate_packets"] += 1
            c["duplicate_messages"] += count
            return []
        if end > self._known_end:
            if seq > self._known_end >= expected:
                self._beyond(self._known_end, seq, now)
            self._known_end = end
        payload = data[HEADER_SIZE:]
        state = self._state
        if state is State.RECOVERING:
            self._hold(payload, seq, count)
            return self._drain(now) if seq <= expected else []
        if seq <= expected:  # in sync (or stale): it continues the stream
            skip = expected - seq
            if skip:
                c["duplicate_messages"] += skip
                payload = skip_messages(payload, skip)
            self.next_seq = end
            return self._emit([payload], count - skip)
        # a hole before it: hold it, ask for the hole
        self._hold(payload, seq, count)
        self._open_gap(expected, seq, now)
        return []

    def poll(self, now: float) -> list[Message]:
        """Let time pass: retry requests if nothing has arrived for a while, and give up on a hole that has
        had no answer for the recovery timeout."""
        if self._state is not State.RECOVERING:
            return []
        quiet_since = max(self._hole_since, self._last_progress)
        if now - quiet_since >= self.recovery_timeout:
            return self._give_up(now)
        if now - max(self._last_request, self._last_progress) >= self.retry_interval:
            self._requested_until = 0  # whatever was asked for and has not come is asked for again
            self._request(now)
        return []

    def take_requests(self) -> list[Request]:
        out, self._requests = self._requests, []
        return out

    def begin_rebuild(self) -> None:
        """A snapshot is being fetched: hold live messages (bounded) instead of applying them.

        Raises :class:`FeedSessionError` if a rebuild is already under way."""
        self._set_state(State.REBUILDING)
        self._requests.clear()
        self._ready.clear()  # superseded by the snapshot
        # so is what was held behind the holes: it was placed by a sequence state the snapshot replaces
        # (possibly poisoned by a forged packet); what arrives from now on is held for the snapshot's
        self._held.discard_from(-1)

    def rebuilt(self, next_seq: int, now: float = 0.0) -> list[Message]:
        """The books now hold a snapshot taken just before ``next_seq``: continue from there.

        Returns the held messages from ``next_seq`` on, in order; a hole among them is recovered as usual.
        (A caller that fetched the snapshot without ``begin_rebuild``, e.g. while stale, may call it too.)
        """
        self._begin_recovery(now)
        self.next_seq = next_seq
        self.needs_rebuild = False
        # Every piece of sequence state is the snapshot's from here: what was known, asked for or seen before
        # (possibly poisoned by a forged packet) must not outlive it.
        self._held.discard_from(next_seq + self.max_gap)
        self._known_end = max(next_seq, self._held.end() or 0)
        self._holes.clear()
        self._requested_until = 0
        self._last_request = -1.0
        self._last_packet_seq = 0
        self._jump = None
        out = self._drain(now, duplicates=False)
        if self._state is State.RECOVERING:
            self._request(now)
        return out

    def abort_rebuild(self, now: float = 0.0) -> list[Message]:
        """The snapshot could not be had: release what was held and stay stale.

        Raises :class:`FeedSessionError` unless a rebuild is under way (``begin_rebuild``)."""
        if self._state is not State.REBUILDING:
            raise FeedSessionError(self._state, State.RECOVERING)
        self._begin_recovery(now - self.recovery_timeout)  # held holes are already past their chance
        if self.next_seq is None:  # nothing sequenced yet (a session waiting for its first snapshot)
            self.needs_rebuild = True
            self._set_state(State.STALE)
            return []
        # held while rebuilding were packets on either side of the expected sequence (the snapshot would have
        # moved it): those it already had are dropped here, what continues it is released
        out = self._drain(now, recovering=False)
        return out + self.poll(now)

    # ------------------------------------------------------------------ recovery
    def _open_gap(self, expected: int, seq: int, now: float) -> None:
        self.counters["gaps"] += 1
        self.missing.append(Gap(expected, seq - expected))
        self._begin_recovery(now)
        self._last_request = -1.0
        self._holes.clear()
        self.next_seq = expected
        self._request(now)

    def _beyond(self, first: int, end: int, now: float) -> None:
        """Messages [first, end) are missing beyond what is known: while recovering, a new hole to ask for."""
        if self._state is not State.RECOVERING:
            return
        self.counters["gaps"] += 1
        self.missing.append(Gap(first, end - first))
        self._holes.append((first, end))
        self._request(now)

    def _hold(self, payload: bytes, seq: int, count: int, front: int | None = None) -> None:
        refused = self._held.hold(payload, seq, count, (self.next_seq or 0) if front is None else front)
        if refused is not None:
            self.counters[refused] += count

    def _drain(self, now: float, *, duplicates: bool = True, recovering: bool = True) -> list[Message]:
        """Release every held packet that continues the stream from ``next_seq``; while ``recovering``, count
        it as recovered and end the recovery when nothing is missing any more (a hole given up on is not)."""
        first = self.next_seq
        assert first is not None
        chunks, nxt, dup = self._held.release(first)
        if dup and duplicates:
            self.counters["duplicate_messages"] += dup
        self.next_seq = nxt
        released = nxt - first
        if recovering:
            self.counters["messages_recovered"] += released
            holes = self._holes
            while holes and holes[0][1] <= nxt:
                holes.popleft()
            if not self._held and nxt >= self._known_end:
                self._set_state(State.STALE if self.needs_rebuild else State.IN_SYNC)
                self.counters["recoveries"] += 1
                self.recovery_seconds.append(now - self._hole_since)
                self._holes.clear()
            elif released:
                self._last_progress = now
                self._request(now)  # the window slides on
        return self._emit(chunks, released) if chunks else []

    def _request(self, now: float) -> None:
        """Ask for what is missing beyond ``next_seq``, a window at a time (``recovery.plan_requests``)."""
        nxt = self.next_seq
        if nxt is None:
            return
        # the hole at the front ends at the first held packet (or at the end of what is known)
        front_end = self._held.first()
        requests, self._requested_until = plan_requests(
            self.session or "", nxt, self._requested_until,
            self._known_end if front_end is None else front_end, self._holes)
        if requests:
            self._requests += requests
            self.counters["requests_sent"] += len(requests)
            self._last_request = now

    def _give_up(self, now: float) -> list[Message]:
        """Skip the hole: from here on the books cannot be vouched for until rebuilt."""
        nxt = self.next_seq
        assert nxt is not None
        first = self._held.first()
        if first is None:
            first = max(self._known_end, nxt)
        self.counters["recovery_failures"] += 1
        self.counters["messages_missed"] += first - nxt
        self.needs_rebuild = True
        self.next_seq = first
        out = self._drain(now, recovering=False)
        if self._held or (self.next_seq or 0) < self._known_end:
            # another hole behind this one: keep recovering it, on a fresh clock
            self._begin_recovery(now)
            self._request(now)
        else:
            self._set_state(State.STALE)
        return out

    def _implausible(self, seq: int, end: int, now: float) -> bool:
        """A sequence too far from the stream to be believed: counted and ignored (False), unless the stream
        itself has moved there: the same far-away sequence, consistent, for a whole recovery timeout in which
        nothing plausible made progress. Then it is followed (True), the books flagged stale."""
        c = self.counters
        c["implausible_jump"] += 1
        self.last_error = f"implausible_jump: sequence {seq} is more than {self.max_gap} from {self.next_seq}"
        marker = (self.next_seq, self._known_end)
        jump = self._jump
        if jump is None or jump[2] != marker or abs(seq - jump[1]) > self.max_gap \
                or self._state is State.REBUILDING:
            self._jump = (now, end, marker)
            return False
        if now - jump[0] < self.recovery_timeout:
            self._jump = (jump[0], max(jump[1], end), marker)
            return False
        # the stream truly moved (a restarted session, a node started on a forged first packet): follow it
        self._jump = None
        c["resyncs"] += 1
        c["recovery_failures"] += 1
        self.needs_rebuild = True
        self._held.discard_from(-1)
        self._holes.clear()
        self._requests.clear()
        self._requested_until = 0
        self.next_seq = self._known_end = self._last_packet_seq = seq
        if self._state is State.IN_SYNC:
            self._set_state(State.RECOVERING)
        if self._state is State.RECOVERING:
            self._set_state(State.STALE)
        return True

    def _malformed(self, code: str, message: str) -> list[Message]:
        self.counters["malformed_packets"] += 1
        self.last_error = f"{code}: {message}"
        return []

    def _emit(self, chunks: list[bytes], count: int) -> list[Message]:
        """Give out in-sequence blocks: kept for ``take_ready`` (raw), or decoded."""
        if self.raw:
            self._ready += chunks
            self.counters["messages"] += count
            return []
        if len(chunks) == 1:
            return decode_blocks(chunks[0], self.counters, self.partition)
        out: list[Message] = []
        for chunk in chunks:
            out += decode_blocks(chunk, self.counters, self.partition)
        return out
