"""The cheap paths of bars on a node, against the plain ones: bars after breaks fixed from the print log
against bars recomputed from the surviving prints, and the bar log's column blocks read for a few watched
symbols (or conflated, as the Redis publisher reads them) against every bar turned into a row."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import itch
from ingest.batch import decode_buffer
from normalize.bar_feed import BarFeed, BarLog
from normalize.bar_types import (
    I64,
    INTERVALS,
    MAX_LOCATES,
    MINUTE,
    SECOND,
    Bar,
    Emitted,
    Executions,
    FinalBars,
    OpenBars,
    breaks_from_columns,
    from_prints,
)
from normalize.bar_wire import conflate
from normalize.bars import BarBuilder
from normalize.kernel import KernelBooks
from vocab.framing import frame_all

from .bar_reference import T0, Key, Ohlcv, ohlcv, session

PACKETS = session()
END = PACKETS[-1][-1].timestamp + 120 * SECOND

# a print: (locate, ns after the last event, price in ticks, shares); an int n breaks the print n back from the
# newest (mostly still in the log)
PRINT = st.tuples(st.integers(1, 3), st.sampled_from([0, 0, 1, 2, SECOND // 3, SECOND, MINUTE, -SECOND]),
                  st.integers(1, 6) | st.integers(1, 10_000), st.integers(1, 50))


def surviving_bars(prints: list[tuple[int, int, int, int]], broken: set[int]) -> dict[Key, Ohlcv]:
    """Bars recomputed from scratch: every print not broken, grouped by the bar the builder's rule puts it in
    (its interval's start, or the symbol's latest bar if that is later: a late print joins it)."""
    latest: dict[tuple[int, int], int] = {}
    groups: dict[Key, list[tuple[int, int]]] = {}
    for i, (loc, t, price, size) in enumerate(prints):
        for width in INTERVALS:
            start = max(t - t % width, latest.get((loc, width), t - t % width))
            latest[loc, width] = start
            if i not in broken:
                groups.setdefault((loc, width, start), []).append((price, size))
    return {key: (ps[0][0], max(p for p, _ in ps), min(p for p, _ in ps), ps[-1][0], sum(s for _, s in ps),
                  len(ps), sum(p * s for p, s in ps)) for key, ps in groups.items()}


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12), st.lists(st.one_of(PRINT, PRINT, st.integers(0, 15)), max_size=80), st.booleans())
def test_breaks_leave_the_bars_recomputed_from_the_surviving_prints(
        capacity: int, events: list[tuple[int, int, int, int] | int], batched: bool) -> None:
    """Any prints and breaks, through either path and a small print log (bars reaching past it, ties at the
    extremes, late prints): every bar equals the one recomputed from the prints not broken, where a break
    counts if its print was still in the log; none is approximate."""
    builder = BarBuilder(print_log=capacity)
    prints: list[tuple[int, int, int, int]] = []  # locate, time, price, shares; match number = index + 1
    broken: set[int] = set()
    pending: list[tuple[int, int, int, int, int]] = []
    t = T0

    def flush() -> None:
        if pending:
            builder.apply(Executions(*(np.array(c, np.int64) for c in zip(*pending, strict=True))))
            pending.clear()

    for ev in events:
        if isinstance(ev, tuple):
            loc, dt, ticks, size = ev
            t = max(T0, t + dt)
            prints.append((loc, t, ticks * 100, size))
            row = (loc, t, ticks * 100, size, len(prints))
            if batched:
                pending.append(row)
            else:
                builder.add_print(*row)
            continue
        if ev >= len(prints):
            continue
        flush()
        i = len(prints) - 1 - ev
        if ev < capacity:  # still in the log: the break applies (once)
            broken.add(i)
        builder.add_break(prints[i][0], t, i + 1)
    flush()
    want = surviving_bars(prints, broken)
    got = {(loc, width, b.start_ns): ohlcv(b) for loc in (1, 2, 3) for width in INTERVALS
           for b in builder.history(loc, width, 100_000) if b.trades}
    assert got == want
    assert builder.counters["breaks_approximate"] == 0
    assert builder.counters["breaks"] == len(broken)


def feed_log() -> tuple[BarFeed, list[Bar]]:
    """The bar reference session through kernel batches and a node's ``BarFeed``: its log, and every bar."""
    books = KernelBooks()
    feed = BarFeed(books)
    for i in range(0, len(PACKETS), 7):
        data = frame_all(itch.encode(m) for p in PACKETS[i:i + 7] for m in p)
        buf, cols, _ = decode_buffer(data)
        books.apply_columns(cols, buf)
        feed.pump()
    feed.close_until(END)
    every, _, _ = feed.bars_since(0)
    return feed, every


def test_the_log_holds_column_blocks() -> None:
    feed, every = feed_log()
    blocks = [p for c in feed.log._chunks for p in c.parts if not isinstance(p, Bar)]
    assert any(type(p) is OpenBars for p in blocks) and any(isinstance(p, FinalBars) for p in blocks)
    assert len(every) == feed.bars_total == feed.counters["bars_emitted"]


def test_watched_reads_are_the_rows_of_the_watched_symbols_from_any_cursor() -> None:
    feed, every = feed_log()
    watched = np.zeros((2, MAX_LOCATES), np.bool_)
    watched[0, 3] = watched[1, 5] = watched[0, 7] = True
    for cursor in (0, 1, len(every) // 3, len(every) - 1, len(every)):
        got, total, lost = feed.bars_since_watched(cursor, watched)
        want = [(i, b) for i, b in enumerate(every)
                if i >= cursor and watched[INTERVALS.index(b.interval_ns), b.locate]]
        assert (got, total, lost) == (want, len(every), 0)
        assert feed.bars_since(cursor)[0] == every[cursor:]


def test_newest_updates_conflate_to_what_every_row_conflates_to() -> None:
    feed, every = feed_log()
    everything = np.ones((2, MAX_LOCATES), np.bool_)
    for cursor in (0, len(every) // 2):
        got, _, _ = feed.bars_since_watched(cursor, everything, newest_updates=True)
        assert len(got) < len(every) - cursor  # older updates never became rows

        def per_key(items: list[tuple[int, Bar]]) -> dict[tuple[int, int], list[tuple[int, Bar]]]:
            out: dict[tuple[int, int], list[tuple[int, Bar]]] = {}
            for item in items:
                out.setdefault((item[1].interval_ns, item[1].locate), []).append(item)
            return {k: conflate(v)[0] for k, v in out.items()}

        assert per_key(got) == per_key([(i, b) for i, b in enumerate(every) if i >= cursor])


def test_a_bounded_log_loses_whole_pumps_and_says_how_many() -> None:
    feed, every = feed_log()
    small = BarLog(5)
    for c in feed.log._chunks:
        small.extend(c.parts)
    got, total, lost = small.since(0)
    assert total == len(every) and lost == total - len(got) and got == every[lost:]
    hits, _, lost2 = small.since_watched(0, np.ones((2, MAX_LOCATES), np.bool_))
    assert lost2 == lost and [b for _, b in hits] == got and hits[0][0] == lost


def test_the_compiled_fold_emits_what_the_numpy_segments_emit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same batches through ``_fold_interval`` (compiled) and ``_apply_interval`` (numpy): the same bars,
    in the same order, and the same state after."""

    def run() -> tuple[list[Bar], BarBuilder]:
        books, builder = KernelBooks(), BarBuilder()
        cursor, emitted = 0, []
        for i in range(0, len(PACKETS), 5):
            data = frame_all(itch.encode(m) for p in PACKETS[i:i + 5] for m in p)
            buf, cols, _ = decode_buffer(data)
            books.apply_columns(cols, buf)
            prints, cursor, _ = books.trades_since(cursor)
            emitted += builder.apply(from_prints(prints), breaks_from_columns(cols)).rows()
        return emitted, builder

    folded, a = run()

    def numpy_segments(self: BarBuilder, k: int, width: int, loc: I64, b: I64, p: I64, s: I64,
                       new_loc: npt.NDArray[np.bool_]) -> list[Emitted]:
        return self._apply_interval(k, width, loc, b, p, s, p * s, new_loc)

    monkeypatch.setattr(BarBuilder, "_fold_interval", numpy_segments)
    segmented, b = run()
    assert folded == segmented and len(folded) > 300
    assert np.array_equal(a._state, b._state) and np.array_equal(a._open, b._open)
    assert a._next_close == b._next_close
    assert all(a.history(loc, w, 100) == b.history(loc, w, 100) for loc in range(1, 13) for w in INTERVALS)
