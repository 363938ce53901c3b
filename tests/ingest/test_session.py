"""Feed session: sequencing, duplicates, gaps and bad input, each with its own counter."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import itch, moldudp64
from ingest.messages import OrderDelete
from ingest.session import TRANSITIONS, FeedSession, FeedSessionError, Gap, Request, State


def deletes(first_ref: int, n: int) -> list[bytes]:
    return [itch.encode(OrderDelete(1, 0, 5, first_ref + i)) for i in range(n)]


def packet(seq: int, n: int, session: str = "S1") -> bytes:
    return moldudp64.encode_packet(session, seq, deletes(seq, n))


def refs(msgs: Sequence[object]) -> list[int]:
    return [m.order_ref for m in msgs]  # type: ignore[attr-defined]


def test_in_order_packets_flow_through() -> None:
    s = FeedSession()
    assert refs(s.on_packet(packet(1, 3))) == [1, 2, 3]
    assert refs(s.on_packet(packet(4, 2))) == [4, 5]
    assert s.next_seq == 6 and s.session == "S1"
    assert s.counters["messages"] == 5 and s.counters["gaps"] == 0


def test_duplicates_and_overlaps_give_only_new_messages() -> None:
    s = FeedSession()
    s.on_packet(packet(1, 3))
    assert s.on_packet(packet(1, 3)) == []
    assert s.counters["duplicate_packets"] == 1 and s.counters["duplicate_messages"] == 3
    assert refs(s.on_packet(packet(2, 4))) == [4, 5]
    assert s.counters["duplicate_messages"] == 5


def test_gap_is_requested_held_and_filled_in_order() -> None:
    s = FeedSession()
    s.on_packet(packet(1, 2), now=0.0)
    assert s.on_packet(packet(10, 1), now=0.0) == []  # held: 3..9 are missing
    assert s.state is State.RECOVERING
    assert s.counters["gaps"] == 1 and list(s.missing) == [Gap(3, 7)]
    assert s.take_requests() == [Request("S1", 3, 7)]
    assert s.on_packet(packet(11, 1), now=0.01) == []  # still held behind the hole
    assert refs(s.on_packet(packet(3, 4), now=0.02)) == [3, 4, 5, 6]  # partly filled
    assert s.take_requests() == []  # the answer may still be on its way: no duplicate request yet
    assert s.poll(0.25) == [] and s.take_requests() == [Request("S1", 7, 3)]  # retried, for the rest only
    assert refs(s.on_packet(packet(7, 3), now=0.3)) == [7, 8, 9, 10, 11]
    assert s.state is State.IN_SYNC and s.next_seq == 12
    assert s.counters["recoveries"] == 1 and s.counters["messages_missed"] == 0


def test_requests_are_retried_then_the_hole_is_skipped_and_the_session_is_stale() -> None:
    s = FeedSession(recovery_timeout=1.0, retry_interval=0.2)
    s.on_packet(packet(1, 2), now=0.0)
    s.on_packet(packet(10, 2), now=0.0)
    s.take_requests()
    assert s.poll(0.1) == [] and s.take_requests() == []
    assert s.poll(0.25) == [] and s.take_requests() == [Request("S1", 3, 7)]
    assert refs(s.poll(1.0)) == [10, 11]
    assert s.state is State.STALE and s.needs_rebuild
    assert s.counters["recovery_failures"] == 1 and s.counters["messages_missed"] == 7
    assert refs(s.on_packet(packet(12, 1), now=1.1)) == [12]  # flows again, still stale
    s.rebuilt(13)
    assert s.state is State.IN_SYNC and not s.needs_rebuild


def test_a_heartbeat_past_the_expected_sequence_opens_a_gap() -> None:
    s = FeedSession()
    s.on_packet(packet(1, 2))
    s.on_packet(moldudp64.heartbeat("S1", 6))
    assert s.state is State.RECOVERING and s.take_requests() == [Request("S1", 3, 3)]
    assert refs(s.on_packet(packet(3, 3))) == [3, 4, 5]
    assert s.state is State.IN_SYNC


def test_two_lines_first_copy_wins() -> None:
    s = FeedSession()
    out: list[int] = []
    # line A loses packet 2; line B loses packet 3; together nothing is missing
    a = [packet(1, 2), packet(5, 2), packet(7, 1)]
    b = [packet(1, 2), packet(3, 2), packet(7, 1)]
    for pa, pb in zip(a, b, strict=True):
        out += refs(s.on_packet(pa)) + refs(s.on_packet(pb))
    assert out == [1, 2, 3, 4, 5, 6, 7]
    assert s.state is State.IN_SYNC and s.counters["messages_missed"] == 0


def test_other_sessions_and_malformed_packets_change_nothing() -> None:
    s = FeedSession("S1")
    assert s.on_packet(packet(1, 2, session="OTHER")) == []
    assert s.on_packet(b"garbage") == []
    assert s.next_seq is None
    assert s.counters["unknown_session"] == 1 and s.counters["malformed_packets"] == 1
    assert refs(s.on_packet(packet(1, 2))) == [1, 2]


def test_a_bad_message_inside_a_good_packet_is_skipped_but_sequenced() -> None:
    good = deletes(1, 2)
    raw = moldudp64.encode_packet("S1", 1, [good[0], b"Z" + b"\0" * 10, good[1][:-1], good[1]])
    s = FeedSession()
    assert refs(s.on_packet(raw)) == [1, 2]
    assert s.counters["unknown_message_types"] == 1 and s.counters["truncated_messages"] == 1
    assert s.next_seq == 5


def test_end_of_session() -> None:
    s = FeedSession()
    s.on_packet(packet(1, 1))
    s.on_packet(moldudp64.end_of_session("S1", 2))
    assert s.ended and s.counters["end_of_session"] == 1 and s.counters["gaps"] == 0


def test_rebuild_holds_live_messages_and_resumes_from_the_snapshot_point() -> None:
    s = FeedSession(recovery_timeout=0.5)
    s.on_packet(packet(1, 2), now=0.0)
    s.on_packet(packet(10, 1), now=0.0)
    s.poll(1.0)  # give up on 3..9
    assert s.state is State.STALE and s.needs_rebuild
    s.begin_rebuild()
    assert s.on_packet(packet(11, 3), now=1.1) == []  # held while the snapshot is fetched
    assert s.state is State.REBUILDING and s.poll(5.0) == []
    assert refs(s.rebuilt(12, now=1.2)) == [12, 13]  # 11 is inside the snapshot
    assert s.state is State.IN_SYNC and not s.needs_rebuild and s.next_seq == 14


def test_a_failed_rebuild_releases_what_was_held() -> None:
    s = FeedSession(recovery_timeout=0.5)
    s.on_packet(packet(1, 2), now=0.0)
    s.on_packet(packet(10, 1), now=0.0)
    s.poll(1.0)
    s.begin_rebuild()
    s.on_packet(packet(11, 2), now=1.1)
    assert refs(s.abort_rebuild(now=1.2)) == [11, 12]
    assert s.needs_rebuild and s.state is State.STALE


def test_a_sequence_that_jumps_back_is_counted_and_changes_nothing() -> None:
    s = FeedSession()
    s.on_packet(packet(1, 5))
    s.on_packet(packet(6, 5))
    assert s.on_packet(packet(2, 3)) == []  # back in time: already applied
    assert s.counters["sequence_backwards"] == 1 and s.counters["duplicate_packets"] == 1
    assert s.next_seq == 11 and s.state is State.IN_SYNC


def test_in_sync_a_broken_packet_is_dropped_whole_and_the_next_copy_applies() -> None:
    s = FeedSession()
    s.on_packet(packet(1, 2))
    good = packet(3, 3)
    for broken in (good[:-1], good + b"\x00", good[:25], good[:20] + b"\x00\x13" + good[22:-1]):
        assert s.on_packet(broken) == []
    assert s.counters["malformed_packets"] == 4 and s.next_seq == 3 and s.counters["messages"] == 2
    assert refs(s.on_packet(good)) == [3, 4, 5]


def test_in_sync_bad_messages_inside_a_packet_are_counted_and_sequenced() -> None:
    s = FeedSession("S1")
    s.on_packet(packet(1, 1))
    good = deletes(2, 2)
    raw = moldudp64.encode_packet("S1", 2, [good[0], b"", b"Z" + b"\0" * 10, good[1][:-1], good[1] + b"\0", good[1]])
    assert refs(s.on_packet(raw)) == [2, 3]
    assert s.counters["unknown_message_types"] == 1 and s.counters["truncated_messages"] == 3
    assert s.next_seq == 8 and s.counters["messages"] == 3
    assert s.on_packet(packet(8, 1, session="OTHER")) == [] and s.counters["unknown_session"] == 1
    assert refs(s.on_packet(packet(8, 1))) == [8]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=25), st.data())
def test_any_delivery_order_yields_each_message_once_in_sequence(sizes: list[int], data: st.DataObject) -> None:
    """After the first packet (a session starts where it joins), packets arrive dropped, duplicated, reordered
    and broken; once every packet has come (the rewinder's answers, in order), the session has given out
    every message exactly once, in sequence."""
    packets, seq = [], 1
    for n in sizes:
        packets.append(packet(seq, n))
        seq += n
    total = seq - 1
    # a rewinder packs its answers its own way: re-sent ranges need not match the original packets
    resent = st.integers(1, total).flatmap(lambda a: st.integers(1, total - a + 1).map(lambda n: packet(a, n)))
    noise = data.draw(st.lists(st.sampled_from(packets + [b"junk", packets[-1][:-3]]) | resent, max_size=40))
    s = FeedSession(recovery_timeout=1e9)
    out: list[int] = []
    for p in [packets[0], *noise, *packets]:
        out += refs(s.on_packet(p))
    assert out == list(range(1, total + 1))
    assert s.state is State.IN_SYNC and s.counters["messages"] == total and s.counters["messages_missed"] == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 200), st.binary(min_size=1, max_size=4))
def test_no_input_crashes_the_session(junk: bytes, at: int, patch: bytes) -> None:
    """Random datagrams, and good packets with bytes overwritten, are counted; nothing raises."""
    s = FeedSession()
    s.on_packet(packet(1, 2))
    good = packet(3, 4)
    at %= len(good)
    mangled = good[:at] + patch + good[at + len(patch):]
    for data in (junk, mangled, b"S1        " + junk, good):
        s.on_packet(data)
    assert s.counters["packets"] == 5 and s.session == "S1" and s.next_seq is not None
    if s.state is State.IN_SYNC:  # and still working: the next packet in sequence is applied
        nxt = s.next_seq
        assert refs(s.on_packet(packet(nxt, 1))) == [nxt]


def test_the_transition_table_covers_every_state_and_rebuilding_only_ends_one_way() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[State.REBUILDING] == {State.RECOVERING}
    assert all(state not in targets for state, targets in TRANSITIONS.items())  # no silent self-moves


def test_an_illegal_move_raises_a_typed_error_and_changes_nothing() -> None:
    s = FeedSession()
    s.on_packet(packet(1, 2))
    with pytest.raises(FeedSessionError) as e:
        s.abort_rebuild()  # no rebuild under way
    assert e.value.old is State.IN_SYNC and s.state is State.IN_SYNC
    s.begin_rebuild()
    with pytest.raises(FeedSessionError):
        s.begin_rebuild()  # one snapshot at a time
    assert s.state is State.REBUILDING
    with pytest.raises(AttributeError):
        s.state = State.IN_SYNC  # type: ignore[misc,unused-ignore]  # read only: moves go through the table
    assert refs(s.rebuilt(3)) == [] and s.state is State.IN_SYNC


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 4), st.floats(0, 0.5)), min_size=1, max_size=30),
       st.sampled_from([None, "begin", "rebuilt", "abort"]))
def test_every_move_the_session_makes_is_in_the_table(arrivals: list[tuple[int, int, float]],
                                                        rebuild: str | None) -> None:
    """Any arrival order, any timing, a rebuild or not: the session never makes a move its table lacks (the
    check is in ``_set_state``, which raises)."""
    s = FeedSession(recovery_timeout=0.3, retry_interval=0.1)
    now = 0.0
    for i, (seq, n, dt) in enumerate(arrivals):
        now += dt
        s.on_packet(packet(seq, n), now)
        s.poll(now)
        if rebuild is not None and i == len(arrivals) // 2 and s.state is not State.REBUILDING:
            s.begin_rebuild()
    if s.state is State.REBUILDING:
        if rebuild == "abort":
            s.abort_rebuild(now)
        else:
            s.rebuilt(s.next_seq or 1, now)
    for _ in range(len(arrivals) + 1):  # time passes: each poll gives up on one more hole, at most
        now += 1.0
        s.poll(now)
    assert s.state is not State.REBUILDING and (s.state is not State.RECOVERING or s.held_messages == 0)
