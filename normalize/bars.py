"""Live bars (pure): printable executions in, 1-second and 1-minute OHLCV bars out, per symbol (locate).

What counts, as ITCH 5.0 defines it (the same rules ``Books._print`` applies; ``from_prints`` turns its trade
ring into builder input): 'E' Order Executed at the order's price; 'C' Order Executed With Price only when
Printable is 'Y' (a non-printable execution is part of a later bulk print: counting it would count those
shares twice); 'P' Trade (non-cross); 'Q' Cross Trade, the bulk print of an opening/closing/halt cross at its
cross price and shares (zero shares: no cross happened, no print). 'B' Broken Trade names the match number of
an earlier execution: that print is taken out of the bar that held it.

Each emitted ``Bar`` has a ``state``: ``update`` while its interval is open, ``final`` when it closes,
``revised`` when a closed bar changes later (a broken trade, or a late print), with ``version`` one higher
than the last one sent for that bar (update and final bars carry version 0). A bar whose every print was
broken is sent with volume and trades 0 (and prices 0): the interval had no trade after all.

Time: the builder's clock is the latest event time it has seen (prints, breaks) or been given
(``close_until``, ``now_ns``); a bar closes when that clock reaches its end, for every symbol at once, so a
quiet symbol's bar closes with the feed's clock. Times are int64 ns on any clock whose second and minute
boundaries are the epoch's (ns since the Unix epoch, or ITCH ns since an Eastern midnight).

Guarantee: for a symbol and interval, no bar is emitted whose start is older than a bar already emitted,
except as ``revised`` of that exact bar. A print older than the symbol's latest bar start (a feed whose
clock went backwards, or ``close_until`` ahead of the feed) is put in that latest bar (revising it if it has
closed) and counted as ``late_prints``: volume is never lost and time never goes back.

Prices stay ITCH ``Price (4)`` integers; ``notional`` is the exact integer sum of price x shares, so
``vwap = notional / volume`` exactly (``Bar.vwap``). Bad prints (locate out of range, price not in
1..2**32-1, shares not in 1..2**30-1, a bar notional reaching 2**62) are counted and change nothing.

History: per symbol and interval the last ``history_1s``/``history_1m`` closed bars (72 bytes each);
``history`` returns them plus the open bar, so a server that sends a history and then streams this builder's
later emissions leaves no gap and no overlap (the open bar's later updates replace it; a revised bar
replaces the one with its start). Breaks are resolved through a bounded log of the last ``print_log``
prints (81 bytes each, allocated up front): a break whose print has left the log is ``breaks_unknown`` and
changes nothing; one whose bar's other prints have left it still fixes volume, trades and notional exactly
but keeps open/high/low/close (``breaks_approximate``); one whose bar has left the history is
``breaks_expired`` for that interval. A break costs O(log size) to find its print (match numbers ascend:
bisection) and O(1) to fix its bars (the print's neighbours in its symbol's chain), unless the print was at
its bar's high or low or the bar reaches past the log: then O(the bar's prints), in a compiled loop.

Two input paths with the same semantics: per message (``add_print``, ``add_break``, ``close_until``: plain
Python, a few microseconds, each returning the bars it emitted) and per batch (``apply``: numpy columns,
vectorised by grouping prints into (symbol, bar) segments, returning a ``BarBatch``: the closed bars, then
the open bars it touched as columns). Closed bars that need no row of their own (the finals of a second's
end: every busy symbol's at once) are passed on as columns too (``FinalBars``; ``*_parts`` and
``close_until_columns`` return them so, ``rows_of`` turns them into ``Bar``s). For a feed whose times
never go back per symbol both leave the same history and open bars; the batch path sends one ``update``
per touched bar instead of one per print, and a bar revised by several late prints of one batch is revised
once (one version step, not several).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from functools import partial
from itertools import repeat
from typing import NamedTuple

import numba
import numpy as np
import numpy.typing as npt

from ingest.batch import Columns

from .trades import TradePrints

__all__ = ["FINAL", "INTERVALS", "MINUTE", "REVISED", "SECOND", "UPDATE", "Bar", "BarBatch", "BarBuilder", "Breaks",
           "Emitted", "Executions", "FinalBars", "OpenBars", "count_of", "rows_of",
           "breaks_from_columns", "breaks_from_ring", "from_prints"]

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

MAX_LOCATES = 65_536
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
INTERVALS = (SECOND, MINUTE)
UPDATE, FINAL, REVISED = "update", "final", "revised"
NONE = np.iinfo(np.int64).min  # no bar yet
MAX_NOTIONAL = 1 << 62
MAX_PRICE = 1 << 32  # ITCH Price (4) is four bytes
MAX_SIZE = 1 << 30  # per print; with MAX_PRICE the product stays below 2**62

COUNTER_NAMES = (
    "prints",                # prints taken into bars
    "bad_prints",            # dropped: locate, price or shares out of range, or a bar notional that would overflow
    "late_prints",           # older than the symbol's latest bar: put in that bar
    "breaks",                # broken trades applied
    "breaks_unknown",        # match number not in the print log (never seen, or older than the log)
    "breaks_repeated",       # a match number already broken
    "breaks_wrong_locate",   # the break's locate is not the print's: changes nothing
    "breaks_expired",        # the print's bar has left the history (per interval)
    "breaks_approximate",    # the bar's other prints have left the log: volume exact, open/high/low/close kept
    "batch_fallbacks",       # batches applied print by print (times going back within a symbol)
)


class Bar(NamedTuple):
    locate: int
    interval_ns: int
    start_ns: int  # the interval is [start_ns, start_ns + interval_ns)
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int
    notional: int  # sum of price x shares (price in ITCH Price (4) units)
    version: int
    state: str

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.interval_ns

    @property
    def vwap(self) -> Fraction | None:
        """The exact volume-weighted average price in Price (4) units (None for a bar without volume)."""
        return Fraction(self.notional, self.volume) if self.volume else None

    def vwap_price(self, decimals: int = 4) -> int | None:
        """VWAP rounded half-even to ``decimals`` decimal places of a dollar, as an integer (4: Price (4))."""
        v = self.vwap
        return None if v is None else round(v * Fraction(10) ** (decimals - 4))


class Executions(NamedTuple):
    """Printable executions in feed order (builder input): one int64 column each."""

    locate: I64
    time: I64
    price: I64
    size: I64
    match: I64


class Breaks(NamedTuple):
    """Broken trades in feed order: the break's locate, time and the match number it voids."""

    locate: I64
    time: I64
    match: I64


class OpenBars(NamedTuple):
    """Open bars as columns (state ``update``, version 0), one row per (interval, locate)."""

    interval_ns: I64
    locate: I64
    start_ns: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    trades: I64
    notional: I64

    @property
    def state(self) -> str:
        return UPDATE

    @property
    def size(self) -> int:
        """Bars (rows) in the block."""
        return int(self.locate.shape[0])

    def rows(self, which: I64 | slice | None = None) -> list[Bar]:
        """As ``Bar``s (all, or the rows ``which`` picks), built with ``tuple.__new__`` (no constructor frame
        per row: most blocks are never turned into rows at all, see ``normalize.bar_feed.BarLog``)."""
        w, loc, *rest = (col.tolist() if which is None else col[which].tolist() for col in self)
        n = len(loc)
        return list(map(_new_bar, zip(loc, w, *rest, repeat(0, n), repeat(self.state, n), strict=True)))


class FinalBars(OpenBars):
    """Bars that closed untouched by a break or a late print, as columns: state ``final``, version 0."""

    __slots__ = ()

    @property
    def state(self) -> str:
        return FINAL


Emitted = Bar | OpenBars  # one bar, or a block of them as columns (``OpenBars``, ``FinalBars``)


def rows_of(parts: Iterable[Emitted]) -> list[Bar]:
    """Emitted parts as ``Bar``s, in order."""
    out: list[Bar] = []
    for part in parts:
        if isinstance(part, Bar):
            out.append(part)
        else:
            out += part.rows()
    return out


def count_of(parts: Sequence[Emitted]) -> int:
    n = len(parts)
    for part in parts:
        if type(part) is not Bar:
            n += part.size - 1  # type: ignore[union-attr]  # a block (OpenBars or FinalBars)
    return n


class BarBatch(NamedTuple):
    """What one ``apply`` emitted: send ``closed`` (final and revised bars, in order; blocks of finals as
    columns) then ``open`` (the open bars the batch touched, as they stand after it; each is newer than any
    closed bar of its symbol and interval, and none of them closed within the batch)."""

    closed: list[Emitted]
    open: OpenBars

    def rows(self) -> list[Bar]:
        return rows_of(self.closed) + self.open.rows()

    @property
    def size(self) -> int:
        """Bars in the batch."""
        return count_of(self.closed) + self.open.size


def from_prints(prints: TradePrints, time_offset: int = 0) -> Executions:
    """The book's trade prints (``Books.trades_since``) as builder input; ``time_offset`` is added to every
    time (e.g. ``vocab.clock.eastern_midnight_ns(session date)`` to turn ITCH stamps into epoch ns)."""
    t = prints.exchange_time + time_offset if time_offset else prints.exchange_time
    return Executions(prints.locate, t, prints.price, prints.size, prints.match_number)


def breaks_from_ring(breaks: TradePrints, time_offset: int = 0) -> Breaks:
    """The book's broken-trade ring (``Books.breaks_since``) as builder input."""
    t = breaks.exchange_time + time_offset if time_offset else breaks.exchange_time
    return Breaks(breaks.locate, t, breaks.match_number)


def breaks_from_columns(cols: Columns, time_offset: int = 0) -> Breaks:
    """The broken-trade ('B') messages of a decoded batch (``ingest.batch``), in order."""
    idx = np.flatnonzero(cols.kind == ord("B"))
    return Breaks(cols.locate[idx], cols.timestamp[idx] + time_offset, cols.match[idx])


_new_bar: Callable[[Iterable[object]], Bar] = partial(tuple.__new__, Bar)


class _PrintLog:
    """The last ``capacity`` prints with the bar each went into (per interval), to resolve broken trades.

    Each print is linked to its symbol's previous and next print in the log (global positions: print number
    ``p`` sits in slot ``p % capacity`` while ``p >= total - capacity``). A symbol's bar starts never go back
    in feed order (a late print joins the latest bar), so a bar's prints are one run of its symbol's chain:
    a break walks that run from the broken print, O(prints in the bar), never the whole log."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"print log capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.total = 0
        (self.locate, self.price, self.size, self.match, self.start0, self.start1, self.prev, self.next,
         self.first0, self.first1) = (np.zeros(capacity, np.int64) for _ in range(10))
        self.alive = np.zeros(capacity, np.bool_)
        self.newest = np.full(MAX_LOCATES, -1, np.int64)  # per locate, the position of its newest print
        # per interval and locate: the start of the latest bar a print went into, and its first print's position
        self.bar_start = np.full((2, MAX_LOCATES), NONE, np.int64)
        self.bar_first = np.full((2, MAX_LOCATES), -1, np.int64)
        self._cols = (self.locate, self.price, self.size, self.match, self.start0, self.start1)
        self._views = tuple(c.data for c in self._cols) + (self.alive.data, self.prev.data, self.next.data,
                                                           self.newest.data, self.first0.data, self.first1.data,
                                                           self.bar_start[0].data, self.bar_start[1].data,
                                                           self.bar_first[0].data, self.bar_first[1].data)
        # whether match numbers have only ever gone up (then ``find_match`` bisects instead of scanning)
        self.ascending = True
        self.last_match = np.iinfo(np.int64).min

    def add(self, locate: int, price: int, size: int, match: int, start0: int, start1: int) -> None:
        cap, pos = self.capacity, self.total
        i = pos % cap
        lv, pv, sv, mv, s0, s1, alive, prev, nxt, newest, f0, f1, bs0, bs1, bf0, bf1 = self._views
        before = newest[locate]
        if before >= 0 and before >= pos - cap:  # still in the log (its slot may be this one: linked, then overwritten)
            nxt[before % cap] = pos
        if bs0[locate] != start0:
            bs0[locate], bf0[locate] = start0, pos
        if bs1[locate] != start1:
            bs1[locate], bf1[locate] = start1, pos
        lv[i], pv[i], sv[i], mv[i], s0[i], s1[i], alive[i] = locate, price, size, match, start0, start1, True
        prev[i], nxt[i], newest[locate], f0[i], f1[i] = before, -1, pos, bf0[locate], bf1[locate]
        self.total += 1
        if match <= self.last_match:
            self.ascending = False
        self.last_match = match

    def extend(self, *cols: I64) -> None:
        """Prints in feed order: locate, price, size, match, start0, start1."""
        n = int(cols[0].shape[0])
        if n == 0:
            return
        cap = self.capacity
        match = cols[3]
        if int(match[0]) <= self.last_match or bool((match[1:] <= match[:-1]).any()):
            self.ascending = False
        self.last_match = int(match[-1])
        # every print is linked (a bar's first print may be one that does not fit), then only the newest kept
        _link(self.total, cap, cols[0], cols[4], cols[5], self.prev, self.next, self.first0, self.first1,
              self.newest, self.bar_start, self.bar_first)
        if n > cap:
            cols = tuple(c[n - cap:] for c in cols)
            self.total += n - cap
            n = cap
        slots = (self.total + np.arange(n)) % cap
        for dst, src in zip(self._cols, cols, strict=True):
            dst[slots] = src
        self.alive[slots] = True
        self.total += n

    def find_match(self, match: int) -> int:
        """The slot of the newest print with this match number, or -1."""
        filled = min(self.total, self.capacity)
        col = self.match
        if self.ascending:
            head = self.total % self.capacity if self.total > self.capacity else filled
            # two ascending runs: [head, filled) is older than [0, head)
            for lo, hi in ((0, head), (head, filled)):
                i = lo + int(np.searchsorted(col[lo:hi], match))
                if i < hi and int(col[i]) == match:
                    return i
            return -1
        hits = np.flatnonzero(col[:filled] == match)
        if hits.size == 0:
            return -1
        return int(hits[np.argmin((self.total - 1 - hits) % self.capacity)])  # the newest

    def unprinted(self, slot: int, k: int, o: int, h: int, lo: int, c: int) -> tuple[int, int, int, int, int]:
        """The bar (interval ``k``, fields ``o h lo c`` with the print in ``slot``) without that print, which
        is no longer alive: (n, open, high, low, close) over its live prints still in the log, where n is -1
        if every print of the bar is still in the log (n is then its trades)."""
        first = self.first0 if k == 0 else self.first1
        return _unprinted(slot, self.start0 if k == 0 else self.start1, int(first[slot]), self.prev, self.next,
                          self.alive, self.price, self.total - self.capacity, self.capacity, o, h, lo, c)


@numba.njit(cache=True, nogil=True)
def _link(base: int, cap: int, loc: I64, start0: I64, start1: I64, prev: I64, nxt: I64, first0: I64,
          first1: I64, newest: I64, bar_start: I64, bar_first: I64) -> None:
    """``_PrintLog.add``'s links for prints at positions ``base``, ``base + 1``, ... (compiled: a batch's
    prints in one loop, not forty numpy calls)."""
    for i in range(loc.shape[0]):
        pos = base + i
        x = loc[i]
        before = newest[x]
        if before >= 0 and before >= pos - cap:
            nxt[before % cap] = pos
        j = pos % cap
        prev[j] = before
        nxt[j] = -1
        newest[x] = pos
        if bar_start[0, x] != start0[i]:
            bar_start[0, x] = start0[i]
            bar_first[0, x] = pos
        if bar_start[1, x] != start1[i]:
            bar_start[1, x] = start1[i]
            bar_first[1, x] = pos
        first0[j] = bar_first[0, x]
        first1[j] = bar_first[1, x]


@numba.njit(cache=True, nogil=True)
def _unprinted(slot: int, starts: I64, first: int, prev: I64, nxt: I64, alive: BOOL, price: I64, oldest: int,
               cap: int, o: int, h: int, lo: int, c: int) -> tuple[int, int, int, int, int]:
    """``_PrintLog.unprinted``, compiled. A bar's prints are one run of its symbol's chain. If all are still
    in the log, the open (close) changes only if the print was the first (last) live one: the nearest live
    neighbours say; the high (low) only if the print was at it: then the run is walked. Otherwise the run's
    part still in the log is walked and counted (the caller compares the count with the bar's trades)."""
    start = starts[slot]
    p = price[slot]
    if first >= oldest:
        before = after = -1
        q = prev[slot]
        while q >= first:
            j = q % cap
            if alive[j]:
                before = j
                break
            q = prev[j]
        q = nxt[slot]
        while q >= 0:
            j = q % cap
            if starts[j] != start:
                break
            if alive[j]:
                after = j
                break
            q = nxt[j]
        if before < 0 and after < 0:
            return -1, 0, 0, 0, 0
        if before < 0:
            o = price[after]
        if after < 0:
            c = price[before]
        if p < h and p > lo:
            return -1, o, h, lo, c
        j = first % cap
    else:
        j = slot
        q = prev[slot]
        while q >= 0 and q >= oldest:
            i = q % cap
            if starts[i] != start:
                break
            j = i
            q = prev[i]
    n = 0
    while True:
        if alive[j]:
            x = price[j]
            if n == 0:
                o = h = lo = x
            elif x > h:
                h = x
            elif x < lo:
                lo = x
            c = x
            n += 1
        q = nxt[j]
        if q < 0:
            break
        j = q % cap
        if starts[j] != start:
            break
    return (-1 if first >= oldest else n), o, h, lo, c


@numba.njit(cache=True, nogil=True)
def _fold(loc: I64, b: I64, p: I64, s: I64, new_loc: BOOL, state: I64, is_open: BOOL, closing: I64,
          closing_loc: I64, done: I64, done_loc: I64) -> tuple[int, int, int]:
    """``BarBuilder._apply_interval`` for a batch without late prints, compiled: one pass over the prints
    sorted by (locate, feed order), one (locate, bar) segment at a time. ``state``: the builder's fields of
    one interval (field, locate), updated in place; ``closing``/``done`` (field, row) receive the open bars
    the batch closes (their fields before it) and the segments that closed within it, in segment order.
    Returns (closing rows, done rows, the earliest start of an open bar written, or the int64 maximum)."""
    n = loc.shape[0]
    nc = nd = 0
    min_live = np.iinfo(np.int64).max
    i = 0
    while i < n:
        x = loc[i]
        st = b[i]
        go = gh = gl = gc = p[i]
        gv = s[i]
        gn = p[i] * s[i]
        gt = 1
        j = i + 1
        while j < n and not new_loc[j] and b[j] == st:
            q = p[j]
            if q > gh:
                gh = q
            if q < gl:
                gl = q
            gc = q
            gv += s[j]
            gn += q * s[j]
            gt += 1
            j += 1
        if new_loc[i]:
            latest = state[0, x]
            if is_open[x]:
                if latest < st:  # the symbol's open bar ends before this segment: it closes
                    for f in range(8):
                        closing[f, nc] = state[f, x]
                    closing_loc[nc] = x
                    nc += 1
                elif latest == st:  # the segment continues the open bar
                    if state[6, x] > 0:
                        go = state[1, x]
                        gh = max(state[2, x], gh)
                        gl = min(state[3, x], gl)
                    gv += state[5, x]
                    gt += state[6, x]
                    gn += state[7, x]
        if j < n and not new_loc[j]:  # not the symbol's last segment: closed within the batch
            done[0, nd], done[1, nd], done[2, nd], done[3, nd] = st, go, gh, gl
            done[4, nd], done[5, nd], done[6, nd], done[7, nd] = gc, gv, gt, gn
            done_loc[nd] = x
            nd += 1
        else:  # the symbol's open bar
            state[0, x], state[1, x], state[2, x], state[3, x] = st, go, gh, gl
            state[4, x], state[5, x], state[6, x], state[7, x] = gc, gv, gt, gn
            is_open[x] = True
            if st < min_live:
                min_live = st
        i = j
    return nc, nd, min_live


_warm = False


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the print log's loops, once per process, so that a node's
    first batch or break does not pay for it on the ingest path."""
    global _warm
    if _warm:
        return
    log = _PrintLog(2)
    one = np.ones(3, np.int64)
    log.extend(one, one, one, np.arange(3, dtype=np.int64), one, one)
    log.alive[0] = False
    log.unprinted(0, 0, 1, 1, 1, 1)
    state = np.zeros((8, 2, 4), np.int64)  # as the builder passes it: one interval's view, not contiguous
    is_open = np.zeros((2, 4), np.bool_)
    rows = np.zeros((8, 2), np.int64)
    _fold(one[:2], one[:2], one[:2], one[:2], np.ones(2, np.bool_), state[:, 0], is_open[0], rows,
          one[:2].copy(), rows.copy(), one[:2].copy())
    _warm = True


def _interval(interval_ns: int) -> int:
    if interval_ns not in INTERVALS:
        raise ValueError(f"bar interval must be one of {INTERVALS} ns, not {interval_ns}")
    return INTERVALS.index(interval_ns)


_RECORD = struct.Struct("<9q")  # a closed bar in the history: start, open, high, low, close, volume, trades,
# notional, version (its state: final at version 0, revised after)


class _History:
    """Closed bars of one interval per locate, newest last, at most ``limit`` each, as packed 72-byte records
    (a Bar tuple costs ~670 bytes: an hour of 1 s bars for 1,000 busy symbols would take 2.4 GB, not 0.4)."""

    def __init__(self, interval_ns: int, limit: int) -> None:
        self.interval_ns, self.limit = interval_ns, limit
        self._by_locate: dict[int, deque[bytes]] = {}

    def _bar(self, loc: int, rec: bytes) -> Bar:
        st, o, h, lo, c, v, t, n, version = _RECORD.unpack(rec)
        return Bar(loc, self.interval_ns, st, o, h, lo, c, v, t, n, version, REVISED if version else FINAL)

    def _deque(self, loc: int) -> deque[bytes]:
        d = self._by_locate.get(loc)
        if d is None:
            d = self._by_locate[loc] = deque(maxlen=self.limit)
        return d

    def push(self, b: Bar) -> None:
        self._deque(b.locate).append(_RECORD.pack(b.start_ns, b.open, b.high, b.low, b.close, b.volume, b.trades,
                                                  b.notional, b.version))

    def push_columns(self, locs: list[int], cols: list[I64]) -> None:
        """Closed bars from columns (start, open, high, low, close, volume, trades, notional), version 0."""
        packed = np.column_stack([*cols, np.zeros(len(locs), np.int64)]).astype("<i8").tobytes()
        size = _RECORD.size
        for i, loc in enumerate(locs):
            self._deque(loc).append(packed[i * size:(i + 1) * size])

    def bars(self, loc: int, limit: int) -> list[Bar]:
        d = self._by_locate.get(loc)
        if not d or limit <= 0:
            return []
        recs = list(d)[-limit:]
        return [self._bar(loc, r) for r in recs]

    def find(self, loc: int, start: int) -> tuple[int, Bar] | None:
        """(index, bar) of the closed bar starting at ``start``, newest first (a break is usually recent)."""
        d = self._by_locate.get(loc)
        if d:
            for i in range(len(d) - 1, -1, -1):
                if int.from_bytes(d[i][:8], "little", signed=True) == start:
                    return i, self._bar(loc, d[i])
        return None

    def replace(self, index: int, b: Bar) -> None:
        self._by_locate[b.locate][index] = _RECORD.pack(b.start_ns, b.open, b.high, b.low, b.close, b.volume,
                                                        b.trades, b.notional, b.version)

    def bars_kept(self) -> int:
        return sum(len(d) for d in self._by_locate.values())


class BarBuilder:
    """1 s and 1 m bars for every locate. See the module docstring."""

    def __init__(self, *, history_1s: int = 3_600, history_1m: int = 390, print_log: int = 1 << 20) -> None:
        if history_1s <= 0 or history_1m <= 0:
            raise ValueError("bar history must keep at least one bar per interval")
        warm_up()
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.now = NONE  # the builder's clock: the latest time seen
        n = MAX_LOCATES
        # the latest bar per interval and locate (open or closed): start (NONE: none yet) and its fields
        # one array (field, interval, locate), fields in ``OpenBars`` order: a batch gathers its touched bars
        # with one fancy index, not eight
        self._state = np.zeros((8, 2, n), np.int64)
        self._state[0] = NONE
        self._start, self._o, self._h, self._l, self._c, self._v, self._t, self._n = self._state
        self._open = np.zeros((2, n), np.bool_)
        self._history = (_History(SECOND, history_1s), _History(MINUTE, history_1m))
        self._log = _PrintLog(print_log)
        self._next_close = np.iinfo(np.int64).max  # the earliest end of an open bar (a lower bound)
        # per interval, the same memory as memoryviews: single elements as plain ints, for the per-message path
        self._mv = tuple((self._start[k].data, self._open[k].data, self._o[k].data, self._h[k].data,
                          self._l[k].data, self._c[k].data, self._v[k].data, self._n[k].data, self._t[k].data)
                         for k in (0, 1))

    # ------------------------------------------------------------------ reading
    def history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        """Up to ``limit`` newest bars, oldest first: closed bars (state ``final``/``revised``) then, if one is
        open, the open bar (state ``update``). Streaming this builder's later emissions after it is gapless."""
        k = _interval(interval_ns)
        if limit <= 0 or not 0 <= locate < MAX_LOCATES:
            return []
        live = [self._bar(k, locate, UPDATE)] if self._open[k, locate] else []
        return self._history[k].bars(locate, limit - len(live)) + live

    @property
    def bars_kept(self) -> int:
        """Closed bars held in the history, both intervals (a gauge)."""
        return self._history[0].bars_kept() + self._history[1].bars_kept()

    def open_bar(self, locate: int, interval_ns: int) -> Bar | None:
        k = _interval(interval_ns)
        return self._bar(k, locate, UPDATE) if self._open[k, locate] else None

    def _bar(self, k: int, loc: int, state: str, version: int = 0) -> Bar:
        st, _, o, h, lo, c, v, n, t = self._mv[k]
        return Bar(loc, INTERVALS[k], st[loc], o[loc], h[loc], lo[loc], c[loc], v[loc], t[loc], n[loc], version,
                   state)

    # ------------------------------------------------------------------ per message
    def add_print(self, locate: int, time: int, price: int, size: int, match: int) -> list[Bar]:
        """One printable execution; returns the bars it emitted, in order."""
        return rows_of(self.add_print_parts(locate, time, price, size, match))

    def add_print_parts(self, locate: int, time: int, price: int, size: int, match: int) -> list[Emitted]:
        """``add_print``; the bars a second's end closes come as one block of columns (``FinalBars``)."""
        out: list[Emitted] = []
        if not (0 < locate < MAX_LOCATES and 0 < price < MAX_PRICE and 0 < size < MAX_SIZE):
            self.counters["bad_prints"] += 1
            return out
        value = price * size
        mv0, mv1 = self._mv
        if mv0[7][locate] + value >= MAX_NOTIONAL or mv1[7][locate] + value >= MAX_NOTIONAL:
            self.counters["bad_prints"] += 1
            return out
        late = False
        starts = [0, 0]
        for k, width in enumerate(INTERVALS):
            st, op, o, h, lo, c, v, n, t = mv0 if k == 0 else mv1
            s = time - time % width
            latest = st[locate]
            if s < latest:
                s = latest
                late = True
            starts[k] = s
            if s == latest:
                if op[locate]:
                    if t[locate]:
                        if price > h[locate]:
                            h[locate] = price
                        elif price < lo[locate]:
                            lo[locate] = price
                    else:  # emptied by breaks: this print opens it again
                        o[locate] = h[locate] = lo[locate] = price
                    c[locate] = price
                    v[locate] += size
                    n[locate] += value
                    t[locate] += 1
                    out.append(_new_bar((locate, width, s, o[locate], h[locate], lo[locate], price, v[locate],
                                         t[locate], n[locate], 0, UPDATE)))
                else:
                    late = True
                    out.extend(self._revise_with(k, locate, [(price, size)]))
            else:
                if op[locate]:
                    out.append(self._close_one(k, locate))
                st[locate] = s
                op[locate] = True
                o[locate] = h[locate] = lo[locate] = c[locate] = price
                v[locate], n[locate], t[locate] = size, value, 1
                if s + width < self._next_close:
                    self._next_close = s + width
                out.append(_new_bar((locate, width, s, price, price, price, price, size, 1, value, 0, UPDATE)))
        self.counters["prints"] += 1
        if late:
            self.counters["late_prints"] += 1
        self._log.add(locate, price, size, match, starts[0], starts[1])
        if time > self.now:
            self.now = time
        if self.now >= self._next_close:
            out += self._close_due()
        return out

    def _revise_with(self, k: int, loc: int, prints: Iterable[tuple[int, int]]) -> list[Bar]:
        """Late prints into the symbol's latest bar, which has closed: it is revised."""
        found = self._history[k].find(loc, int(self._start[k, loc]))
        if found is None:  # cannot happen: a closed latest bar is always the newest in its history
            return []
        where, b = found
        o, h, lo, c, v, n, t = b.open, b.high, b.low, b.close, b.volume, b.notional, b.trades
        for p, s in prints:
            if t == 0:
                o = h = lo = p
            h, lo, c = max(h, p), min(lo, p), p
            v, n, t = v + s, n + p * s, t + 1
        nb = b._replace(open=o, high=h, low=lo, close=c, volume=v, notional=n, trades=t, version=b.version + 1,
                        state=REVISED)
        self._history[k].replace(where, nb)
        self._write(k, loc, nb)
        return [nb]

    def _write(self, k: int, loc: int, b: Bar) -> None:
        self._o[k, loc], self._h[k, loc], self._l[k, loc], self._c[k, loc] = b.open, b.high, b.low, b.close
        self._v[k, loc], self._n[k, loc], self._t[k, loc] = b.volume, b.notional, b.trades

    def _close_one(self, k: int, loc: int) -> Bar:
        b = self._bar(k, loc, FINAL)
        self._open[k, loc] = False
        self._push(k, loc, b)
        return b

    def _push(self, k: int, loc: int, b: Bar) -> None:
        self._history[k].push(b)

    def add_break(self, locate: int, time: int, match: int) -> list[Bar]:
        """A broken trade: the print with ``match`` leaves its bars (revised if closed, updated if open)."""
        return rows_of(self.add_break_parts(locate, time, match))

    def add_break_parts(self, locate: int, time: int, match: int) -> list[Emitted]:
        """``add_break``; the bars a second's end closes come as one block of columns (``FinalBars``)."""
        out: list[Emitted] = []
        if time > self.now:
            self.now = time
        log = self._log
        slot = log.find_match(match)
        if slot < 0:
            self.counters["breaks_unknown"] += 1
        elif int(log.locate[slot]) != locate:
            self.counters["breaks_wrong_locate"] += 1
        elif not log.alive[slot]:
            self.counters["breaks_repeated"] += 1
        else:
            log.alive[slot] = False
            self.counters["breaks"] += 1
            price, size = int(log.price[slot]), int(log.size[slot])
            for k, start in ((0, int(log.start0[slot])), (1, int(log.start1[slot]))):
                out.extend(self._unprint(k, locate, start, price, size, slot))
        if self.now >= self._next_close:
            out += self._close_due()
        return out

    def _unprint(self, k: int, loc: int, start: int, price: int, size: int, slot: int) -> list[Bar]:
        """Take one print (``price`` x ``size``, in the log's ``slot``) out of the bar at ``start``."""
        is_open = bool(self._open[k, loc]) and int(self._start[k, loc]) == start
        where = -1
        if is_open:
            old = self._bar(k, loc, UPDATE)
        else:
            found = self._history[k].find(loc, start)
            if found is None:
                self.counters["breaks_expired"] += 1
                return []
            where, old = found
        v, n, t = old.volume - size, old.notional - price * size, old.trades - 1
        live, o, h, lo, c = self._log.unprinted(slot, k, old.open, old.high, old.low, old.close)
        if live < 0 or live == t:  # every other live print of the bar is still in the log: exact
            if not t:
                o = h = lo = c = 0
        else:
            self.counters["breaks_approximate"] += 1
            o, h, lo, c = old.open, old.high, old.low, old.close
        if is_open:
            nb = old._replace(open=o, high=h, low=lo, close=c, volume=v, notional=n, trades=t)
            self._write(k, loc, nb)
            return [nb]
        nb = old._replace(open=o, high=h, low=lo, close=c, volume=v, notional=n, trades=t,
                          version=old.version + 1, state=REVISED)
        self._history[k].replace(where, nb)
        if int(self._start[k, loc]) == start:  # the latest bar (closed): keep the state arrays in step
            self._write(k, loc, nb)
        return [nb]

    # ------------------------------------------------------------------ time
    def close_until(self, now_ns: int) -> list[Bar]:
        """Advance the clock to ``now_ns`` (never back) and close every bar that ends by then."""
        return rows_of(self.close_until_columns(now_ns))

    def close_until_columns(self, now_ns: int) -> list[Emitted]:
        """``close_until``, the closed bars as blocks of columns (``FinalBars``)."""
        if now_ns > self.now:
            self.now = now_ns
        return self._close_due() if self.now >= self._next_close else []

    def _close_due(self) -> list[Emitted]:
        out: list[Emitted] = []
        nxt = np.iinfo(np.int64).max
        for k, width in enumerate(INTERVALS):
            is_open = self._open[k]
            ends = self._start[k] + width
            due = np.flatnonzero(is_open & (ends <= self.now))
            if due.size:
                out += self._emit(k, due, FINAL)
                is_open[due] = False
            left = np.flatnonzero(is_open)
            if left.size:
                nxt = min(nxt, int(ends[left].min()))
        self._next_close = nxt
        return out

    def _emit(self, k: int, locs: I64, state: str) -> list[Emitted]:
        """State-array bars of ``locs`` (finals are pushed to the history)."""
        return self._rows(k, locs, list(self._state[:, k, locs]), state)

    def _rows(self, k: int, locs: I64, cols: list[I64], state: str) -> list[Emitted]:
        """Final bars from columns (start, open, high, low, close, volume, trades, notional), pushed to the
        history, and passed on as one block of columns: a second's end closes every busy symbol's bar at once,
        and most of them nobody watches."""
        assert state == FINAL
        self._history[k].push_columns(locs.tolist(), cols)
        st, o, h, lo, c, v, t, n = cols
        return [FinalBars(np.full(locs.shape[0], INTERVALS[k], np.int64), locs, st, o, h, lo, c, v, t, n)]

    # ------------------------------------------------------------------ per batch
    def apply(self, ex: Executions, breaks: Breaks | None = None, now_ns: int | None = None) -> BarBatch:
        """A batch: the prints (in feed order), then the breaks, then the clock to ``now_ns`` (if later).

        Vectorised: prints are grouped into (locate, bar) segments with numpy; Python touches one segment
        per closed bar (to keep its history) and nothing per print. Open bars come back as columns."""
        closed: list[Emitted] = []
        touched = [ex.locate]
        if int(ex.locate.shape[0]):
            closed += self._apply_prints(ex)
        if breaks is not None and int(breaks.locate.shape[0]):
            touched.append(breaks.locate)
            for loc, t, m in zip(breaks.locate.tolist(), breaks.time.tolist(), breaks.match.tolist(), strict=True):
                closed += self.add_break_parts(loc, t, m)
        if now_ns is not None:
            closed += self.close_until_columns(now_ns)
        # the per-message calls' updates: ``open`` says it
        closed = [b for b in closed if not isinstance(b, Bar) or b.state != UPDATE]
        locs = np.unique(np.concatenate(touched)) if len(touched) > 1 else np.unique(ex.locate)
        locs = locs[(locs > 0) & (locs < MAX_LOCATES)]
        sel0, sel1 = locs[self._open[0, locs]], locs[self._open[1, locs]]
        fields = np.concatenate((self._state[:, 0, sel0], self._state[:, 1, sel1]), axis=1)
        width = np.repeat(np.array(INTERVALS, np.int64), (sel0.shape[0], sel1.shape[0]))
        return BarBatch(closed, OpenBars(width, np.concatenate((sel0, sel1)), *fields))

    def _apply_prints(self, ex: Executions) -> list[Emitted]:
        loc, t, p, s, m = ex
        ok = (loc > 0) & (loc < MAX_LOCATES) & (p > 0) & (p < MAX_PRICE) & (s > 0) & (s < MAX_SIZE)
        if not ok.all():
            self.counters["bad_prints"] += int((~ok).sum())
            loc, t, p, s, m = loc[ok], t[ok], p[ok], s[ok], m[ok]
        n = int(loc.shape[0])
        if n == 0:
            return []
        feed = (loc, t, p, s, m)
        order = np.argsort(loc, kind="stable")
        loc, t, p, s, m = loc[order], t[order], p[order], s[order], m[order]
        value = p * s
        new_loc = np.empty(n, np.bool_)
        new_loc[0] = True
        np.not_equal(loc[1:], loc[:-1], out=new_loc[1:])
        starts: list[I64] = []
        late = np.zeros(n, np.bool_)
        for k, width in enumerate(INTERVALS):
            floor = t - t % width
            latest = self._start[k, loc]
            b = np.maximum(floor, latest)
            if n > 1 and bool(((b[1:] < b[:-1]) & ~new_loc[1:]).any()):
                return self._fallback(*feed)  # a symbol's times went back inside the batch
            # older than the symbol's latest bar, or into it after it closed (as ``add_print`` counts them)
            late |= (b == latest) & ((floor < latest) | ~self._open[k, loc])
            starts.append(b)
        # a bar's notional could overflow only on absurd input: checked in floating point, exactly by the
        # per-print path if it could
        seg_total = np.add.reduceat(value.astype(np.float64), np.flatnonzero(new_loc))
        if seg_total.max() + self._n[:, loc[new_loc]].max(initial=0) >= MAX_NOTIONAL / 2:
            return self._fallback(*feed)
        out: list[Emitted] = []
        compiled = not late.any()  # the compiled fold has no late prints to revise closed bars with
        for k, width in enumerate(INTERVALS):
            if compiled:
                out += self._fold_interval(k, width, loc, starts[k], p, s, new_loc)
            else:
                out += self._apply_interval(k, width, loc, starts[k], p, s, value, new_loc)
        # the log keeps feed order (match numbers ascending, as Nasdaq assigns them: breaks found by bisection)
        in_feed = [np.empty(n, np.int64), np.empty(n, np.int64)]
        in_feed[0][order], in_feed[1][order] = starts
        self._log.extend(feed[0], feed[2], feed[3], feed[4], *in_feed)
        self.counters["prints"] += n
        self.counters["late_prints"] += int(late.sum())
        tmax = int(t.max())
        if tmax > self.now:
            self.now = tmax
        if self.now >= self._next_close:
            out += self._close_due()
        return out

    def _fallback(self, loc: I64, t: I64, p: I64, s: I64, m: I64) -> list[Emitted]:
        self.counters["batch_fallbacks"] += 1
        out: list[Emitted] = []
        for row in zip(loc.tolist(), t.tolist(), p.tolist(), s.tolist(), m.tolist(), strict=True):
            out += self.add_print_parts(*row)
        return out

    def _fold_interval(self, k: int, width: int, loc: I64, b: I64, p: I64, s: I64, new_loc: BOOL) -> list[Emitted]:
        """``_apply_interval`` (same bars, same order) by the compiled ``_fold``, for a batch without late
        prints."""
        n = int(loc.shape[0])
        closing, done = np.empty((8, n), np.int64), np.empty((8, n), np.int64)
        closing_loc, done_loc = np.empty(n, np.int64), np.empty(n, np.int64)
        nc, nd, min_live = _fold(loc, b, p, s, new_loc, self._state[:, k], self._open[k], closing, closing_loc,
                                 done, done_loc)
        out: list[Emitted] = []
        if nc:
            out += self._rows(k, closing_loc[:nc], list(closing[:, :nc]), FINAL)
        if nd:
            out += self._rows(k, done_loc[:nd], list(done[:, :nd]), FINAL)
        if min_live + width < self._next_close:
            self._next_close = min_live + width
        return out

    def _apply_interval(self, k: int, width: int, loc: I64, b: I64, p: I64, s: I64, value: I64,
                        new_loc: BOOL) -> list[Emitted]:
        n = int(loc.shape[0])
        cut = np.empty(n, np.bool_)
        cut[0] = True
        np.logical_or(new_loc[1:], b[1:] != b[:-1], out=cut[1:])
        first = np.flatnonzero(cut)
        last = np.empty_like(first)
        last[:-1] = first[1:] - 1
        last[-1] = n - 1
        g_loc, g_start = loc[first], b[first]
        g_o, g_c = p[first], p[last]
        g_h, g_l = np.maximum.reduceat(p, first), np.minimum.reduceat(p, first)
        g_v, g_n = np.add.reduceat(s, first), np.add.reduceat(value, first)
        g_t = last - first + 1
        g_first = new_loc[first]  # the symbol's first segment in this batch
        g_last = np.empty(first.shape[0], np.bool_)
        g_last[:-1] = g_first[1:]
        g_last[-1] = True
        latest = self._start[k, g_loc]
        was_open = self._open[k, g_loc]
        same = g_first & (latest == g_start)
        out: list[Emitted] = []
        # the symbol's open bar ends before its first segment: it closes
        closing = np.flatnonzero(g_first & was_open & (latest < g_start))
        if closing.size:
            out += self._emit(k, g_loc[closing], FINAL)
        # the first segment continues the symbol's open bar: merge the open bar's fields in
        merge = np.flatnonzero(same & was_open)
        if merge.size:
            ml = g_loc[merge]
            had = self._t[k, ml] > 0
            g_o[merge] = np.where(had, self._o[k, ml], g_o[merge])
            g_h[merge] = np.where(had, np.maximum(self._h[k, ml], g_h[merge]), g_h[merge])
            g_l[merge] = np.where(had, np.minimum(self._l[k, ml], g_l[merge]), g_l[merge])
            g_v[merge] += self._v[k, ml]
            g_n[merge] += self._n[k, ml]
            g_t[merge] += self._t[k, ml]
        # the first segment lands in the symbol's latest bar, which has closed: late prints revise it
        late = np.flatnonzero(same & ~was_open)
        for j in late.tolist():
            lo, hi = int(first[j]), int(last[j]) + 1
            out += self._revise_with(k, int(g_loc[j]), zip(p[lo:hi].tolist(), s[lo:hi].tolist(), strict=True))
        keep = np.ones(first.shape[0], np.bool_)
        keep[late] = False
        # closed within the batch: every segment but the symbol's last
        done = np.flatnonzero(keep & ~g_last)
        if done.size:
            out += self._rows(k, g_loc[done], [g_start[done], g_o[done], g_h[done], g_l[done], g_c[done], g_v[done],
                                               g_t[done], g_n[done]], FINAL)
            # a symbol whose last segment is a late revision keeps its latest bar closed
        # the symbol's last segment is its open bar
        live = np.flatnonzero(keep & g_last)
        if live.size:
            ll = g_loc[live]
            self._start[k, ll] = g_start[live]
            self._open[k, ll] = True
            self._o[k, ll], self._h[k, ll], self._l[k, ll], self._c[k, ll] = (g_o[live], g_h[live], g_l[live],
                                                                          g_c[live])
            self._v[k, ll], self._n[k, ll], self._t[k, ll] = g_v[live], g_n[live], g_t[live]
            end = int(g_start[live].min()) + width
            if end < self._next_close:
                self._next_close = end
        return out
