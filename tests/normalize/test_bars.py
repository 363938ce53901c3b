"""Bars against a reference built here from the same generated messages, and the builder's guarantees."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import itch
from ingest import messages as im
from ingest.batch import decode_buffer
from normalize import Books
from normalize.bar_types import (
    FINAL,
    INTERVALS,
    MINUTE,
    REVISED,
    SECOND,
    UPDATE,
    Bar,
    Breaks,
    Executions,
    breaks_from_columns,
    breaks_from_ring,
    from_prints,
)
from normalize.bars import BarBuilder
from normalize.kernel import KernelBooks
from vocab.framing import frame_all

from .bar_reference import T0, Key, built_bars, ohlcv, reference_bars, session

PACKETS = session()
ALL = [m for p in PACKETS for m in p]
END = ALL[-1].timestamp + 2 * MINUTE
LOCATES = range(1, 13)


def test_the_session_has_every_kind_of_print() -> None:
    kinds = {type(m) for m in ALL}
    assert {im.OrderExecuted, im.OrderExecutedWithPrice, im.Trade, im.CrossTrade, im.BrokenTrade} <= kinds
    assert any(isinstance(m, im.OrderExecutedWithPrice) and m.printable == "N" for m in ALL)


def test_per_packet_books_and_per_message_builder_match_the_reference() -> None:
    books, builder = Books(), BarBuilder()
    cursor = bcursor = 0
    emitted: list[Bar] = []
    for packet in PACKETS:
        books.apply_batch(packet)
        prints, cursor, lost = books.trades_since(cursor)
        breaks, bcursor, blost = books.breaks_since(bcursor)
        assert lost == blost == 0
        for row in zip(*from_prints(prints), strict=True):
            emitted += builder.add_print(*(int(x) for x in row))
        for loc, t, match in zip(*breaks_from_ring(breaks), strict=True):
            emitted += builder.add_break(int(loc), int(t), int(match))
    emitted += builder.close_until(END)
    want = reference_bars(ALL)
    assert built_bars(builder, LOCATES) == want
    assert builder.counters["breaks"] >= 5
    assert any(b.state == REVISED and b.interval_ns == SECOND for b in emitted)
    assert_never_back_in_time(emitted)
    # everything closed: no open bar left, and the stream's finals are the history
    finals = {(b.locate, b.interval_ns, b.start_ns) for b in emitted if b.state == FINAL}
    assert finals >= set(want)


def test_kernel_batches_and_the_vectorised_builder_match_the_reference() -> None:
    books, builder = KernelBooks(), BarBuilder()
    cursor = 0
    emitted: list[Bar] = []
    for i in range(0, len(PACKETS), 7):  # several packets a batch, as a capture is read
        chunk = PACKETS[i:i + 7]
        data = frame_all(itch.encode(m) for p in chunk for m in p)
        buf, cols, _ = decode_buffer(data)
        books.apply_columns(cols, buf)
        prints, cursor, _ = books.trades_since(cursor)
        emitted += builder.apply(from_prints(prints), breaks_from_columns(cols)).rows()
    emitted += builder.close_until(END)
    assert built_bars(builder, LOCATES) == reference_bars(ALL)
    assert_never_back_in_time(emitted)
    # the kernel keeps the breaks as Books does
    assert books.breaks_total == sum(isinstance(m, im.BrokenTrade) for m in ALL)


def test_history_meets_the_stream_without_gap_or_overlap() -> None:
    builder = BarBuilder()
    feed = iter(ALL)
    books = Books()
    cursor = 0

    def run(n: int) -> list[Bar]:
        nonlocal cursor
        books.apply_batch(list(itertools.islice(feed, n)))
        prints, cursor, _ = books.trades_since(cursor)
        return builder.apply(from_prints(prints)).rows()

    run(len(ALL) // 2)
    loc = int(np.bincount([m.locate for m in ALL if isinstance(m, im.OrderExecuted)]).argmax())
    hist = builder.history(loc, SECOND, 50)
    assert hist[-1].state == UPDATE and all(b.state != UPDATE for b in hist[:-1])
    later = [b for b in run(len(ALL)) + builder.close_until(END) if b.locate == loc and b.interval_ns == SECOND]
    # the first streamed bar is the history's open bar (or the one after it); none older unless revised
    first = next(b for b in later if b.state != REVISED)
    assert first.start_ns >= hist[-1].start_ns
    merged = {b.start_ns: b for b in hist}
    for b in later:
        merged[b.start_ns] = b
    assert [ohlcv(b) for _, b in sorted(merged.items()) if b.trades] == \
        [ohlcv(b) for b in builder.history(loc, SECOND, 10_000) if b.trades]


# ---------------------------------------------------------------------------------------------- scenarios
def test_a_broken_trade_revises_the_closed_bar_that_held_it() -> None:
    b = BarBuilder()
    t = T0
    b.add_print(5, t + 100, 1_000_000, 100, 1)
    b.add_print(5, t + 200, 1_010_000, 50, 2)  # the high, to be broken
    b.add_print(5, t + 300, 990_000, 10, 3)
    out = b.add_print(5, t + SECOND + 1, 1_000_500, 20, 4)  # closes the first second
    assert [(x.state, x.start_ns) for x in out if x.interval_ns == SECOND] == [(FINAL, t), (UPDATE, t + SECOND)]
    closed = out[0]
    assert ohlcv(closed) == (1_000_000, 1_010_000, 990_000, 990_000, 160, 3,
                             100 * 1_000_000 + 50 * 1_010_000 + 10 * 990_000)
    assert closed.vwap_price() == round((100 * 1_000_000 + 50 * 1_010_000 + 10 * 990_000) / 160)
    out = b.add_break(5, t + SECOND + 5, 2)
    second = [x for x in out if x.interval_ns == SECOND]
    minute = [x for x in out if x.interval_ns == MINUTE]
    assert [(x.state, x.start_ns, x.version) for x in second] == [(REVISED, t, 1)]
    assert ohlcv(second[0]) == (1_000_000, 1_000_000, 990_000, 990_000, 110, 2, 100 * 1_000_000 + 10 * 990_000)
    assert [(x.state, x.version) for x in minute] == [(UPDATE, 0)]  # the minute is still open
    assert ohlcv(minute[0]) == (1_000_000, 1_000_500, 990_000, 1_000_500, 130, 3,
                                100 * 1_000_000 + 10 * 990_000 + 20 * 1_000_500)
    assert b.history(5, SECOND, 10)[0] == second[0]
    # a second break of the same print, a foreign locate and an unknown match change nothing
    assert b.add_break(5, t + SECOND + 6, 2) == []
    assert b.add_break(6, t + SECOND + 6, 3) == []
    assert b.add_break(5, t + SECOND + 6, 99) == []
    assert (b.counters["breaks_repeated"], b.counters["breaks_wrong_locate"], b.counters["breaks_unknown"]) == (1, 1, 1)
    # breaking it again after another revision bumps the version again
    assert b.add_break(5, t + SECOND + 7, 3)[0].version == 2


def test_a_break_in_a_bar_reaching_past_the_print_log_is_exact() -> None:
    for batched in (False, True):
        b = BarBuilder(print_log=2)
        rows = [(1, T0 + i, 1_000_000 + i, 10, i + 1) for i in range(4)]
        if batched:
            b.apply(Executions(*(np.array(c, np.int64) for c in zip(*rows, strict=True))))
        else:
            for row in rows:
                b.add_print(*row)
        b.close_until(T0 + SECOND)
        assert b.add_break(1, T0 + SECOND, 1) == []  # gone from the log: unknown
        out = b.add_break(1, T0 + SECOND, 4)  # its bar's high and close; the bar's first two left the log
        assert [ohlcv(x) for x in out] == [(1_000_000, 1_000_002, 1_000_000, 1_000_002, 30, 3,
                                            10 * (3_000_003))] * 2
        out = b.add_break(1, T0 + SECOND, 3)  # the last live print in the log: the close is a summary's
        assert ohlcv(out[0])[:4] == (1_000_000, 1_000_001, 1_000_000, 1_000_001)
        assert b.counters["breaks_approximate"] == 0 and b.counters["breaks_unknown"] == 1


def test_quiet_symbols_close_with_the_feed_clock_and_close_until() -> None:
    b = BarBuilder()
    b.add_print(1, T0 + 10, 1_000_000, 1, 1)
    out = b.add_print(2, T0 + SECOND + 10, 2_000_000, 1, 2)  # another symbol's print moves the clock
    assert (1, SECOND, T0, FINAL) in [(x.locate, x.interval_ns, x.start_ns, x.state) for x in out]
    assert b.close_until(T0 + SECOND) == []  # never back
    out = b.close_until(T0 + MINUTE)
    assert {(x.locate, x.interval_ns, x.state) for x in out} == {(2, SECOND, FINAL), (1, MINUTE, FINAL),
                                                                 (2, MINUTE, FINAL)}
    assert b.open_bar(1, MINUTE) is None and b.history(1, MINUTE, 5)[-1].state == FINAL


def test_a_late_print_goes_into_the_latest_bar_and_revises_it() -> None:
    b = BarBuilder()
    b.add_print(1, T0 + 5 * SECOND, 1_000_000, 10, 1)
    b.close_until(T0 + 6 * SECOND)
    out = b.add_print(1, T0 + 2 * SECOND, 1_100_000, 5, 2)  # stamped before the closed bar
    sec = [x for x in out if x.interval_ns == SECOND]
    assert [(x.state, x.start_ns, x.version, x.volume, x.high) for x in sec] == \
        [(REVISED, T0 + 5 * SECOND, 1, 15, 1_100_000)]
    assert b.counters["late_prints"] == 1


def test_bad_prints_are_counted_and_change_nothing() -> None:
    b = BarBuilder()
    assert b.add_print(0, T0, 1_000_000, 1, 1) == []
    assert b.add_print(70_000, T0, 1_000_000, 1, 1) == []
    assert b.add_print(1, T0, 0, 1, 1) == []
    assert b.add_print(1, T0, 1_000_000, 0, 1) == []
    assert b.add_print(1, T0, 1 << 40, 1, 1) == []
    ex = Executions(*(np.array(c, np.int64) for c in ([0, 1], [T0, T0], [5, -1], [1, 1], [1, 2])))
    assert b.apply(ex).rows() == []
    assert b.counters["bad_prints"] == 7 and b.counters["prints"] == 0
    assert b.history(1, SECOND, 5) == []


# ---------------------------------------------------------------------------------------------- properties
def assert_never_back_in_time(bars: Sequence[Bar]) -> None:
    newest: dict[tuple[int, int], int] = {}
    sent: set[Key] = set()
    for b in bars:
        k = (b.locate, b.interval_ns)
        if b.state == REVISED:
            assert (b.locate, b.interval_ns, b.start_ns) in sent, b
        else:
            assert b.start_ns >= newest.get(k, -1), b
            newest[k] = b.start_ns
            sent.add((b.locate, b.interval_ns, b.start_ns))


Event = tuple[str, int, int, int, int]  # ('p', locate, dt, price, size) or ('b', locate, dt, pick, 0)

events = st.lists(st.one_of(
    st.tuples(st.just("p"), st.integers(1, 3), st.integers(-SECOND, 3 * SECOND) | st.just(MINUTE),
              st.integers(1, 9).map(lambda p: p * 10_000), st.integers(1, 500)),
    st.tuples(st.just("b"), st.integers(1, 3), st.integers(0, SECOND), st.integers(0, 99), st.just(0)),
    st.tuples(st.just("c"), st.just(0), st.integers(0, 2 * MINUTE), st.just(0), st.just(0)),
), max_size=60)


def run_events(es: Sequence[Event], builder: BarBuilder) -> Iterator[tuple[list[Bar], int, int | None]]:
    """Drive the builder print by print; yields (emitted, size, broken size) per event."""
    t = T0
    matches: list[tuple[int, int, int]] = []  # (locate, match, size)
    for kind, loc, dt, a, size in es:
        t = max(T0, t + dt)
        if kind == "p":
            match = len(matches) + 1
            matches.append((loc, match, size))
            yield builder.add_print(loc, t, a, size, match), size, None
        elif kind == "b" and matches:
            ploc, match, psize = matches[a % len(matches)]
            yield builder.add_break(ploc, t, match), 0, psize
        elif kind == "c":
            yield builder.close_until(t), 0, None


@settings(max_examples=150)
@given(events)
def test_never_back_in_time_and_volume_is_printed_minus_broken(es: list[Event]) -> None:
    builder = BarBuilder()
    emitted: list[Bar] = []
    for out, _, _ in run_events(es, builder):
        emitted += out
    assert_never_back_in_time(emitted)
    assert builder.counters["breaks_approximate"] == 0
    # volume = printable sizes - broken sizes, per symbol, in every interval
    want: dict[int, int] = defaultdict(int)
    t = T0
    matches: list[tuple[int, int]] = []
    broken: set[int] = set()
    for kind, loc, dt, a, size in es:
        t = max(T0, t + dt)
        if kind == "p":
            matches.append((loc, size))
            want[loc] += size
        elif kind == "b" and matches:
            i = a % len(matches)
            if i not in broken:
                broken.add(i)
                want[matches[i][0]] -= matches[i][1]
    for loc in (1, 2, 3):
        for width in INTERVALS:
            assert sum(b.volume for b in builder.history(loc, width, 10_000)) == want[loc]


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(0, SECOND // 2), st.integers(1, 9),
                          st.integers(1, 300)), max_size=80),
       st.lists(st.integers(1, 12), min_size=1, max_size=6), st.lists(st.integers(0, 80), max_size=4))
def test_batches_leave_the_same_bars_as_messages(rows: list[tuple[int, int, int, int]], cuts: list[int],
                                                 breaks: list[int]) -> None:
    """The vectorised path against the per-message one (times never going back, as ITCH's)."""
    t = T0
    cols: list[list[int]] = [[], [], [], [], []]
    for i, (loc, dt, p, s) in enumerate(rows):
        t += dt
        for c, v in zip(cols, (loc, t, p * 10_000, s, i + 1), strict=True):
            c.append(v)
    one, many = BarBuilder(), BarBuilder()
    for row in zip(*cols, strict=True):
        one.add_print(*row)
    arrays = [np.array(c, np.int64) for c in cols]
    bounds = sorted({0, len(rows), *(sum(cuts[:i + 1]) % (len(rows) + 1) for i in range(len(cuts)))})
    for lo, hi in itertools.pairwise(bounds):
        many.apply(Executions(*(a[lo:hi] for a in arrays)))
    picks = [b % len(rows) for b in breaks] if rows else []
    for i in picks:
        one.add_break(cols[0][i], t, i + 1)
    many.apply(Executions(*(a[:0] for a in arrays)),
               Breaks(np.array([cols[0][i] for i in picks], np.int64), np.full(len(picks), t, np.int64),
                      np.array([i + 1 for i in picks], np.int64)))
    for b in (one, many):
        b.close_until(t + MINUTE)
    for loc, width in itertools.product(range(1, 5), INTERVALS):
        assert [ohlcv(b) + (b.start_ns,) for b in one.history(loc, width, 10_000)] == \
            [ohlcv(b) + (b.start_ns,) for b in many.history(loc, width, 10_000)]
    assert one.counters == many.counters


def test_a_late_batch_revises_like_late_messages() -> None:
    one, many = BarBuilder(), BarBuilder()
    for b in (one, many):
        b.add_print(1, T0 + 5 * SECOND, 1_000_000, 10, 1)
        b.close_until(T0 + 6 * SECOND)
    late = [(1, T0 + 5 * SECOND + 9, 1_200_000, 3, 2), (1, T0 + 5 * SECOND + 9, 900_000, 4, 3),
            (1, T0 + 7 * SECOND, 1_000_000, 1, 4)]
    for row in late:
        one.add_print(*row)
    out = many.apply(Executions(*(np.array(c, np.int64) for c in zip(*late, strict=True)))).rows()
    assert [(x.state, x.start_ns, x.version, x.volume) for x in out if x.interval_ns == SECOND] == \
        [(REVISED, T0 + 5 * SECOND, 1, 17), (UPDATE, T0 + 7 * SECOND, 0, 1)]
    assert one.counters == many.counters and many.counters["late_prints"] == 2
    # the same bars; a batch revises once where messages revise once each
    assert [ohlcv(b) for b in one.history(1, SECOND, 9)] == [ohlcv(b) for b in many.history(1, SECOND, 9)]
    assert one.history(1, SECOND, 9)[0].version == 2


def test_breaks_are_found_whatever_the_order_of_match_numbers() -> None:
    """Ascending match numbers (Nasdaq's) are bisected, others scanned; a wrapped log forgets the oldest."""
    for matches in ([10, 20, 30, 40, 50], [50, 10, 40, 20, 30]):
        for log, forgotten in ((100, 0), (3, 2)):
            for batched in (False, True):
                b = BarBuilder(print_log=log)
                sizes = [1, 2, 4, 8, 16]
                rows = [(1, T0 + i, 1_000_000, size, m) for i, (size, m) in enumerate(zip(sizes, matches, strict=True))]
                if batched:
                    b.apply(Executions(*(np.array(c, np.int64) for c in zip(*rows, strict=True))))
                else:
                    for row in rows:
                        b.add_print(*row)
                for m in (30, 10, 50, 20, 40, 99):
                    b.add_break(1, T0 + 10, m)
                kept = sum(sizes[:forgotten])  # the oldest prints left the log: their breaks are unknown
                assert b.history(1, SECOND, 1)[0].volume == kept, (matches, log, batched)
                assert b.counters["breaks"] == 5 - forgotten and b.counters["breaks_unknown"] == 1 + forgotten


def test_vwap_is_exact_and_rounds_half_even() -> None:
    bar = Bar(1, SECOND, T0, 1_000_000, 1_000_100, 1_000_000, 1_000_100, 3, 2, 1_000_000 + 2 * 1_000_100, 0, FINAL)
    assert bar.vwap == Fraction(3_000_200, 3)
    assert bar.vwap_price() == 1_000_067  # 100.0066666... at 4 decimals
    assert bar.vwap_price(2) == 10_001  # 100.01
    assert bar.vwap_price(6) == 100_006_667
    assert Bar(1, SECOND, T0, 5, 5, 5, 5, 2, 1, 5, 0, FINAL).vwap_price(0) == 0  # 0.00025 -> 0, never a float
    assert bar._replace(volume=0).vwap is None


@settings(max_examples=100)
@given(events)
def test_batches_never_go_back_in_time_either(es: list[Event]) -> None:
    """The same random events through ``apply``: prints gathered into batches, flushed by each break/close."""
    builder = BarBuilder()
    emitted: list[Bar] = []
    pending: list[tuple[int, int, int, int, int]] = []
    printed: list[tuple[int, int]] = []  # (locate, size) by match - 1
    broken: set[int] = set()
    want: dict[int, int] = defaultdict(int)

    def flush(breaks: Breaks | None = None, now: int | None = None) -> None:
        cols = [np.array(c, np.int64) for c in zip(*pending, strict=True)] if pending else [_empty()] * 5
        emitted.extend(builder.apply(Executions(*cols), breaks, now).rows())
        pending.clear()

    t = T0
    for kind, loc, dt, a, size in es:
        t = max(T0, t + dt)
        if kind == "p":
            printed.append((loc, size))
            pending.append((loc, t, a, size, len(printed)))
            want[loc] += size
        elif kind == "b" and printed:
            i = a % len(printed)
            flush(Breaks(*(np.array([v], np.int64) for v in (printed[i][0], t, i + 1))))
            if i not in broken:
                broken.add(i)
                want[printed[i][0]] -= printed[i][1]
        elif kind == "c":
            flush(now=t)
    flush()
    assert_never_back_in_time(emitted)
    for loc in (1, 2, 3):
        for width in INTERVALS:
            assert sum(b.volume for b in builder.history(loc, width, 10_000)) == want[loc]


def _empty() -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    return np.zeros(0, np.int64)


def test_history_is_bounded_and_a_break_beyond_it_is_counted() -> None:
    for batched in (False, True):
        b = BarBuilder(history_1s=3, history_1m=2)
        rows = [(1, T0 + i * SECOND, 1_000_000 + i, 10 + i, i + 1) for i in range(6)]
        if batched:
            b.apply(Executions(*(np.array(c, np.int64) for c in zip(*rows, strict=True))))
        else:
            for row in rows:
                b.add_print(*row)
        b.close_until(T0 + 6 * SECOND)
        hist = b.history(1, SECOND, 10)
        assert [(x.start_ns, x.volume, x.state) for x in hist] == \
            [(T0 + i * SECOND, 10 + i, FINAL) for i in (3, 4, 5)]
        assert b.history(1, SECOND, 2) == hist[1:]
        assert b.bars_kept == 3 + 0  # the minute is still open
        out = b.add_break(1, T0 + 6 * SECOND, 1)  # its second has left the history, its minute has not
        assert b.counters["breaks_expired"] == 1
        assert [(x.interval_ns, x.state, x.volume) for x in out] == [(MINUTE, UPDATE, sum(range(11, 16)))]
        out = b.add_break(1, T0 + 6 * SECOND, 5)  # still kept: revised, and the history says so
        assert [(x.interval_ns, x.state, x.version, x.volume) for x in out][0] == (SECOND, REVISED, 1, 0)
        assert b.history(1, SECOND, 3)[1] == out[0]


def test_an_unknown_interval_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bar interval"):
        BarBuilder().history(1, 5 * SECOND, 10)
