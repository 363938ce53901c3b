"""The feed session as a state machine under a hostile network, with time moving (hypothesis stateful).

Rules: the exchange's packets sent in order, lost, re-sent late (out of order, duplicates); heartbeats;
forged heartbeats far ahead or behind; packets of a foreign session; packets far beyond the hole (to fill
the held-bytes bound); time passing (retries, recovery timeouts, STALE); a rewinder answering some requests;
snapshot rebuilds begun, finished and aborted. Invariants after every step: the state is one of the table's,
the held bytes stay within the bound, the expected sequence never moves back (except where the session
says it followed a moved stream, flagged stale), and what is delivered is the exchange's own messages,
never twice, never out of order, never forged content.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ingest import itch, moldudp64
from ingest.messages import Message, OrderDelete
from ingest.session import TRANSITIONS, FeedSession, State

SESSION = "S1"
FORGED = 10**12  # forged packets carry order refs from here on: one delivered is a failure
MAX_GAP = 5_000
MAX_HELD = 6_000


def deletes(first_ref: int, n: int) -> list[bytes]:
    return [itch.encode(OrderDelete(1, 0, 5, first_ref + i)) for i in range(n)]


class FeedSessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = FeedSession(SESSION, recovery_timeout=1.0, retry_interval=0.2, max_gap=MAX_GAP,
                             max_held_bytes=MAX_HELD)
        self.now = 0.0
        self.next_gen = 1  # the exchange's next sequence number
        self.sent: dict[int, bytes] = {}  # every packet the exchange made, by first sequence
        self.last_delivered = 0  # the ref (= sequence) of the last message delivered
        self.last_expected = 0
        self.resyncs = 0

    # ------------------------------------------------------------------ delivery
    def feed(self, data: bytes) -> None:
        self.take(self.s.on_packet(data, self.now))

    def take(self, messages: list[Message]) -> None:
        if self.s.counters["resyncs"] != self.resyncs:  # followed a moved stream: the books are to be rebuilt
            self.resyncs = self.s.counters["resyncs"]
            assert self.s.needs_rebuild
            self.last_delivered = -1
            self.last_expected = 0
        for m in messages:
            ref = getattr(m, "order_ref")  # noqa: B009 (every message here is an OrderDelete)
            assert ref < FORGED, "forged content delivered"
            assert ref > self.last_delivered, f"{ref} delivered after {self.last_delivered}"
            self.last_delivered = ref

    def make(self, n: int) -> bytes:
        packet = moldudp64.encode_packet(SESSION, self.next_gen, deletes(self.next_gen, n))
        self.sent[self.next_gen] = packet
        self.next_gen += n
        return packet

    # ------------------------------------------------------------------ the exchange
    @initialize(n=st.integers(1, 4))
    def first_packet(self, n: int) -> None:
        """The session starts on a real packet (a forged first one is test_hostile_feed's resync case)."""
        self.feed(self.make(n))

    @rule(n=st.integers(1, 4))
    def send_next(self, n: int) -> None:
        self.feed(self.make(n))

    @rule(n=st.integers(1, 4))
    def lose_next(self, n: int) -> None:
        self.make(n)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.sent))
    def resend_any(self, data: st.DataObject) -> None:
        self.feed(self.sent[data.draw(st.sampled_from(sorted(self.sent)))])

    @rule()
    def heartbeat(self) -> None:
        self.feed(moldudp64.heartbeat(SESSION, self.next_gen))

    @rule(dt=st.sampled_from([0.05, 0.25, 0.6, 1.5]))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.take(self.s.poll(self.now))

    @rule(answer=st.booleans())
    def rewinder(self, answer: bool) -> None:
        for r in self.s.take_requests():
            assert r.session == SESSION and r.message_count > 0
            # never a forged range, unless the session followed a moved stream (resync: flagged stale)
            assert r.first_seq + r.message_count <= self.next_gen + MAX_GAP or self.s.counters["resyncs"], r
            if not answer:
                continue
            for first, packet in sorted(self.sent.items()):
                count = moldudp64.HEADER.unpack_from(packet)[2]
                if first < r.first_seq + r.message_count and first + count > r.first_seq:
                    self.feed(packet)

    # ------------------------------------------------------------------ the attacker
    @rule(where=st.sampled_from([(1 << 64) - 1, 1 << 63, MAX_GAP * 3, -1]))
    def forged_heartbeat(self, where: int) -> None:
        seq = self.next_gen + where if where in (MAX_GAP * 3,) else where
        if where == -1:
            seq = max(0, self.next_gen - MAX_GAP * 3)
        self.feed(moldudp64.heartbeat(SESSION, seq % (1 << 64)))

    @rule(n=st.integers(1, 3))
    def foreign_session(self, n: int) -> None:
        self.feed(moldudp64.encode_packet("EVIL", self.next_gen, deletes(FORGED, n)))

    @rule(size=st.sampled_from([500, 2_000, 4_000]), ahead=st.integers(2, 50))
    def big_packet_beyond_a_hole(self, size: int, ahead: int) -> None:
        """The exchange's own large packet arriving early, beyond messages lost on the way: held, and the
        held bytes it adds count against the bound (its second message, of an unknown type, is dropped)."""
        first = self.next_gen + ahead
        packet = moldudp64.encode_packet(SESSION, first, deletes(first, 1) + [b"?" * size])
        self.sent[first] = packet
        self.next_gen = first + 2
        self.feed(packet)

    # ------------------------------------------------------------------ snapshots
    @rule()
    @precondition(lambda self: self.s.state is not State.REBUILDING)
    def begin_rebuild(self) -> None:
        self.s.begin_rebuild()

    @rule()
    @precondition(lambda self: self.s.state is State.REBUILDING)
    def rebuilt(self) -> None:
        # the snapshot holds everything the exchange has made so far
        self.last_delivered = self.next_gen - 1
        self.last_expected = 0
        self.take(self.s.rebuilt(self.next_gen, self.now))
        assert not self.s.needs_rebuild or self.s.state is not State.IN_SYNC

    @rule()
    @precondition(lambda self: self.s.state is State.REBUILDING)
    def rebuild_fails(self) -> None:
        self.take(self.s.abort_rebuild(self.now))

    # ------------------------------------------------------------------ invariants
    @invariant()
    def state_is_in_the_table(self) -> None:
        assert self.s.state in TRANSITIONS

    @invariant()
    def held_data_is_bounded(self) -> None:
        assert self.s.held_bytes <= MAX_HELD

    @invariant()
    def expected_sequence_never_moves_back(self) -> None:
        nxt = self.s.next_seq or 0
        if self.s.state is not State.REBUILDING:
            assert nxt >= self.last_expected or self.s.counters["resyncs"] != self.resyncs
            self.last_expected = nxt

    @invariant()
    def stale_until_rebuilt_after_a_skipped_hole(self) -> None:
        if self.s.state is State.STALE:
            assert self.s.needs_rebuild


FeedSessionMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=50, deadline=None)
test_feed_session_machine = FeedSessionMachine.TestCase
