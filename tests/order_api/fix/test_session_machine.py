"""The FIX session as a state machine under hypothesis: two sessions (initiator, acceptor) joined by byte queues,
with time moving, messages in both directions, partial deliveries, garbage, sequence gaps, ResendRequests,
TestRequests (from the timers) and Logout, checking the session's promises after every step:

- nothing raises (every call made is legal in the state it is made in);
- a session ends at most once, with exactly one Closed event, and stays closed; after a clean start, every
  message sent took one sequence number;
- garbage never advances the receiver's sequence number: it ends the session (with a Logout) or changes nothing;
- while nothing hostile was injected, each side receives exactly the other side's application messages, in order
  (a prefix of them: some may still be on the wire);
- ``next_deadline()`` is honest: ticking before it does nothing.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from order_api.fix import Closed, FixMessage, FixSession, LoggedOn, NewOrder, Received, Role, encode
from order_api.fix.session import Event

HB = 5
T0 = 1704164645.678


class SessionPair(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.now = 0.0
        self.side = {
            "init": FixSession(Role.INITIATOR, "TF-m", "MM1", heartbeat_interval=HB, clock=lambda: T0),
            "acc": FixSession(Role.ACCEPTOR, "MM1", clock=lambda: T0),
        }
        self.wire: dict[str, bytearray] = {"init": bytearray(), "acc": bytearray()}  # bytes on their way TO a side
        self.sent: dict[str, list[str]] = {"init": [], "acc": []}  # app messages a side sent (ClOrdIDs)
        self.got: dict[str, list[str]] = {"init": [], "acc": []}
        self.closed_events = {"init": 0, "acc": 0}
        self.hostile = {"init": False, "acc": False}  # something hostile was sent TO that side
        self.counter = 0
        for name in ("acc", "init"):
            self.side[name].start(self.now)
            self._collect()

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def other(name: str) -> str:
        return "acc" if name == "init" else "init"

    def _collect(self) -> None:
        for name, s in self.side.items():
            self.wire[self.other(name)] += s.data_to_send()

    def _events(self, name: str, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, Closed):
                self.closed_events[name] += 1
            elif isinstance(e, Received):
                self.got[name].append(NewOrder.from_fix(e.message).cl_ord_id)
            else:
                assert isinstance(e, LoggedOn) or e.__class__.__name__ == "RejectReceived"

    # ------------------------------------------------------------------ rules

    @rule(dt=st.floats(0.0, 2.5 * HB))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        for name, s in self.side.items():
            self._events(name, s.tick(self.now))
        self._collect()

    @rule(to=st.sampled_from(["init", "acc"]), n=st.integers(1, 400) | st.none())
    def deliver(self, to: str, n: int | None) -> None:
        data = bytes(self.wire[to] if n is None else self.wire[to][:n])
        del self.wire[to][:len(data)]
        s = self.side[to]
        if data and not s.closed:
            self._events(to, s.receive_data(data, self.now))
        self._collect()

    @rule(frm=st.sampled_from(["init", "acc"]))
    def send_application_message(self, frm: str) -> None:
        s = self.side[frm]
        if not s.active:
            return
        self.counter += 1
        cl = f"{frm}-{self.counter}"
        s.send(NewOrder(cl, "AAPL", "buy", self.counter).to_fix(0.0), self.now)
        self.sent[frm].append(cl)
        self._collect()

    @rule(to=st.sampled_from(["init", "acc"]), garbage=st.binary(min_size=1, max_size=60).filter(
        lambda b: b"\x01" not in b))
    def garbage(self, to: str, garbage: bytes) -> None:
        s = self.side[to]
        self.hostile[to] = True
        if s.closed:
            return
        before = s.next_in_seq
        self._events(to, s.receive_data(garbage, self.now))
        assert s.closed or s.next_in_seq == before
        self._collect()

    @rule(to=st.sampled_from(["init", "acc"]), msg_type=st.sampled_from(["0", "2", "4", "A", "D"]),
          skew=st.integers(-2, 3), digits=st.sampled_from(["", "²", "¹"]))
    def raw_message(self, to: str, msg_type: str, skew: int, digits: str) -> None:
        """A message forged in the peer's name: a sequence gap, a too-low number, a ResendRequest, a second Logon,
        a sequence number with non-ASCII digits in it (which used to raise inside the session)."""
        s = self.side[to]
        self.hostile[to] = True
        if not s.active:
            return
        peer = "TF-m" if to == "acc" else "MM1"
        fields = [(35, msg_type), (49, peer), (56, s.sender_comp_id), (34, str(max(s.next_in_seq + skew, 1)) + digits),
                  (52, "20240102-03:04:05.678")]
        if msg_type == "D":
            fields += [(11, "forged"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "1")]
        elif msg_type == "2":
            fields += [(7, "1"), (16, "0")]
        self._events(to, s.receive_data(encode(FixMessage(fields)), self.now))
        self._collect()

    @precondition(lambda self: self.side["init"].active)
    @rule()
    def initiator_logs_out(self) -> None:
        self._events("init", self.side["init"].logout("done", self.now))
        self._collect()

    @rule(name=st.sampled_from(["init", "acc"]))
    def connection_lost(self, name: str) -> None:
        self._events(name, self.side[name].connection_lost(self.now))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def ends_at_most_once(self) -> None:
        for name, s in self.side.items():
            assert self.closed_events[name] <= 1
            assert (self.closed_events[name] == 1) == s.closed
            if s.closed:
                assert s.next_deadline() is None and s.close_reason

    @invariant()
    def every_message_took_one_sequence_number(self) -> None:
        for s in self.side.values():
            assert s.next_out_seq == s.counters["messages_out"] + 1

    @invariant()
    def clean_sides_receive_the_others_messages_in_order(self) -> None:
        for name in ("init", "acc"):
            if not self.hostile[name]:
                sent = self.sent[self.other(name)]
                assert self.got[name] == sent[:len(self.got[name])]

    @invariant()
    def the_deadline_is_honest(self) -> None:
        for name, s in self.side.items():
            deadline = s.next_deadline()
            if deadline is not None and self.now < deadline:
                assert s.tick(self.now) == [] and s.data_to_send() == b"", name


SessionPair.TestCase.settings = settings(max_examples=50, stateful_step_count=30)
TestSessionPair = SessionPair.TestCase
