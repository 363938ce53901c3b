"""The cheap paths of bars on a node, against the plain ones: a break fixed from its print's neighbours in the
print log against a scan of the whole log, and the bar log's column blocks read for a few watched symbols (or
conflated, as the Redis publisher reads them) against every bar turned into a row."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import itch
from ingest.batch import decode_buffer
from normalize.bar_feed import BarFeed, BarLog
from normalize.bar_print_log import PrintLog
from normalize.bar_types import (
    I64,
    INTERVALS,
    MAX_LOCATES,
    SECOND,
    Bar,
    Emitted,
    FinalBars,
    OpenBars,
    breaks_from_columns,
    from_prints,
)
from normalize.bar_wire import conflate
from normalize.bars import BarBuilder
from normalize.kernel import KernelBooks
from vocab.framing import frame_all

from .bar_reference import session

PACKETS = session()
END = PACKETS[-1][-1].timestamp + 120 * SECOND

# a print: (locate, seconds after the symbol's last print, price); an int breaks the print with that index
PRINT = st.tuples(st.integers(1, 2), st.sampled_from([0, 0, 0, 1, 2]), st.integers(1, 4))


@settings(max_examples=200)
@given(st.integers(1, 12), st.lists(st.one_of(PRINT, PRINT, st.integers(0, 25)), max_size=60), st.booleans())
def test_a_break_from_its_neighbours_equals_a_scan_of_the_log(capacity: int, events: list[tuple[int, int, int] | int],
                                                               batched: bool) -> None:
    log = PrintLog(capacity)
    prints: list[tuple[int, int, int]] = []  # every print ever: locate, start, price
    alive: list[bool] = []
    second = dict.fromkeys(range(1, 4), 0)
    pending: list[tuple[int, int, int]] = []

    def flush() -> None:
        if not pending:
            return
        cols = [np.array(c, np.int64) for c in zip(*pending, strict=True)]
        loc, start, price = cols
        match = np.arange(len(prints) - len(pending), len(prints), dtype=np.int64)
        log.extend(loc, price, price, match, start, start // 60 * 60)
        pending.clear()

    for ev in events:
        if isinstance(ev, tuple):
            loc, later, price = ev
            second[loc] += later  # a symbol's bar starts never go back
            prints.append((loc, second[loc], price))
            alive.append(True)
            if batched:
                pending.append(prints[-1])
            else:
                log.add(loc, price, price, len(prints) - 1, second[loc], second[loc] // 60 * 60)
            continue
        flush()
        if ev >= len(prints) or not alive[ev]:
            continue
        slot = log.find_match(ev)
        if slot < 0:  # left the log
            continue
        bar = [i for i, p in enumerate(prints) if p[:2] == prints[ev][:2] and alive[i]]
        ps = [prints[i][2] for i in bar]
        before = (ps[0], max(ps), min(ps), ps[-1])
        alive[ev] = False
        log.alive[slot] = False
        n, o, h, lo, c = log.unprinted(slot, 0, *before)
        oldest = len(prints) - capacity
        rest = [prints[i][2] for i in bar if i != ev and i >= oldest]
        everything_in_log = min(i for i, p in enumerate(prints) if p[:2] == prints[ev][:2]) >= oldest
        if everything_in_log:
            assert n == -1
        else:
            assert n == len(rest)
        if rest and (everything_in_log or n):
            assert (o, h, lo, c) == (rest[0], max(rest), min(rest), rest[-1])


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
