"""``KernelBooks`` (batched bytes -> numba kernel) ends in exactly the state ``Books`` reaches from the same
messages decoded one by one: published arrays, versions, counters, live orders, levels, trade prints, names.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.itch import decode, encode
from ingest.messages import (
    AddOrder,
    Message,
)
from normalize import Books
from normalize.kernel import KernelBooks
from normalize.row import FIELD_NAMES
from venue.simulator import ExchangeSimulator

from .strategies import directory, messages

PUBLISHED = FIELD_NAMES  # the whole row, trading status included


def capture(raw: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in raw)


def assert_same(ref: Books, fast: KernelBooks, locates: range) -> None:
    for name in PUBLISHED:
        a, b = getattr(ref, name), getattr(fast, name)
        assert np.array_equal(a, b), (name, np.flatnonzero(a != b)[:10])
    assert ref.counters == fast.counters
    assert ref.market.tolist() == fast.market.tolist()
    assert ref.live_orders() == fast.live_orders() and ref.order_count == fast.order_count
    for ref_no in list(ref.live_orders())[:50] + [0, 2**64 - 1]:
        assert ref.order(ref_no) == fast.order(ref_no)
    for loc in locates:
        for side in (0, 1):
            assert ref.levels(loc, side, 1_000) == fast.levels(loc, side, 1_000), (loc, side)
    assert ref.trades_total == fast.trades_total
    for cursor in (0, max(0, ref.trades_total - 3)):
        a, b = ref.trades_since(cursor), fast.trades_since(cursor)
        assert a[1:] == b[1:] and all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    assert (ref.symbol_of, ref.locate_of, ref.high_locate, ref.system_event) == \
        (fast.symbol_of, fast.locate_of, fast.high_locate, fast.system_event)


def test_simulator_stream_over_several_seeds_and_batch_splits() -> None:
    for seed in (1, 2, 3):
        raw = ExchangeSimulator(200, seed=seed).generate_encoded(20_000)
        ref = Books(trade_capacity=1_000)
        ref.apply_batch([decode(m) for m in raw])
        # tiny tables, so the kernel grows them (mid-batch) many times
        fast = KernelBooks(trade_capacity=1_000, order_capacity=16, level_capacity=16)
        cuts = sorted({0, len(raw), *np.random.default_rng(seed).integers(0, len(raw), 5).tolist()})
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            fast.apply_bytes(capture(raw[lo:hi]))
        assert_same(ref, fast, range(202))
        assert fast.trades_total > 1_000  # the ring wrapped


def test_partial_message_at_the_end_is_left_for_the_next_buffer() -> None:
    raw = ExchangeSimulator(20, seed=4).generate_encoded(2_000)
    data = capture(raw)
    fast, ref = KernelBooks(), Books()
    ref.apply_batch([decode(m) for m in raw])
    used = fast.apply_bytes(data[:1_001])
    assert used <= 1_001
    fast.apply_bytes(data[used:])
    assert_same(ref, fast, range(22))


NAMED = (1, 2)
message = messages((0, 1, 2, 3), attribution=True, more=True)  # 3 has no directory entry; 0 is no stock


@settings(max_examples=300, deadline=None)
@given(st.lists(message, max_size=80), st.lists(st.integers(0, 80), max_size=4))
def test_any_message_sequence_ends_in_the_same_books(msgs: list[Message], cuts: list[int]) -> None:
    raw = [encode(directory(loc)) for loc in NAMED] + [encode(m) for m in msgs]
    ref = Books(trade_capacity=8)
    ref.apply_batch([decode(m) for m in raw])
    fast = KernelBooks(trade_capacity=8, order_capacity=4, level_capacity=2)
    bounds = sorted({0, len(raw), *(min(c, len(raw)) for c in cuts)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        fast.apply_bytes(capture(raw[lo:hi]))
    assert_same(ref, fast, range(5))


def test_namedtuple_sink_and_rebuild_match_books() -> None:
    sim = ExchangeSimulator(30, seed=5)
    msgs = [decode(m) for m in sim.generate_encoded(3_000)]
    ref, fast = Books(), KernelBooks()
    for chunk in (msgs[:1_000], msgs[1_000:]):
        ref.apply_batch(chunk)
        fast.apply_batch(chunk)
    assert_same(ref, fast, range(32))
    fast.apply(AddOrder(70_000, 0, 1, 5, "B", 1, "X", 1, None))  # no ITCH encoding: counted, not applied
    assert fast.counters["unknown_message"] == 1 and fast.counters["messages"] == ref.counters["messages"] + 1
    snapshot = [decode(m) for m in ExchangeSimulator(30, seed=6).generate_encoded(500)]
    ref.set_stale_all(True)
    fast.set_stale_all(True)
    ref.rebuild(snapshot)
    fast.rebuild(snapshot)
    ref.counters["unknown_message"] = 1
    ref.counters["messages"] += 1
    assert_same(ref, fast, range(32))


def test_types_the_books_do_not_use_are_counted_and_skipped() -> None:
    raw = ExchangeSimulator(20, seed=8).generate_encoded(1_000)
    noii = b"I" + bytes(49)  # Net Order Imbalance: a real ITCH type this decoder does not know
    short_add = b"A" + bytes(20)
    fast, ref = KernelBooks(), Books()
    fast.apply_bytes(capture(raw[:500] + [noii, short_add] + raw[500:]))
    ref.apply_batch([decode(m) for m in raw])
    assert fast.frame_counters == {"unknown_types": 1, "bad_lengths": 1}
    assert_same(ref, fast, range(22))
