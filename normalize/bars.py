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
prints (49 bytes each, allocated up front): a break whose print has left the log is ``breaks_unknown`` and
changes nothing; one whose bar's other prints have left it still fixes volume, trades and notional exactly
but keeps open/high/low/close (``breaks_approximate``); one whose bar has left the history is
``breaks_expired`` for that interval.

Two input paths with the same semantics: per message (``add_print``, ``add_break``, ``close_until``: plain
Python, a few microseconds, each returning the bars it emitted) and per batch (``apply``: numpy columns,
vectorised by grouping prints into (symbol, bar) segments, returning a ``BarBatch``: the closed bars, then
the open bars it touched as columns). For a feed whose times never go back per symbol both leave the same
history and open bars; the batch path sends one ``update`` per touched bar instead of one per print, and
a bar revised by several late prints of one batch is revised once (one version step, not several).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable
from fractions import Fraction
from functools import partial
from itertools import repeat
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ingest.batch import Columns

from .trades import TradePrints

__all__ = ["FINAL", "INTERVALS", "MINUTE", "REVISED", "SECOND", "UPDATE", "Bar", "BarBatch", "BarBuilder", "Breaks",
           "Executions", "OpenBars",
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

    def rows(self) -> list[Bar]:
        """As ``Bar``s, built with ``tuple.__new__`` (no constructor frame per row: a node converts every
        touched open bar of every batch)."""
        w, loc, *rest = (col.tolist() for col in self)
        n = len(loc)
        return list(map(_new_bar, zip(loc, w, *rest, repeat(0, n), repeat(UPDATE, n), strict=True)))


class BarBatch(NamedTuple):
    """What one ``apply`` emitted: send ``closed`` (final and revised bars, in order) then ``open`` (the open
    bars the batch touched, as they stand after it; each is newer than any closed bar of its symbol and
    interval, and none of them closed within the batch)."""

    closed: list[Bar]
    open: OpenBars

    def rows(self) -> list[Bar]:
        return self.closed + self.open.rows()

    @property
    def size(self) -> int:
        """Bars in the batch."""
        return len(self.closed) + int(self.open.locate.shape[0])


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
    """The last ``capacity`` prints with the bar each went into (per interval), to resolve broken trades."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"print log capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.total = 0
        self.locate, self.price, self.size, self.match, self.start0, self.start1 = (
            np.zeros(capacity, np.int64) for _ in range(6))
        self.alive = np.zeros(capacity, np.bool_)
        self._cols = (self.locate, self.price, self.size, self.match, self.start0, self.start1)
        self._views = tuple(c.data for c in self._cols) + (self.alive.data,)
        # whether match numbers have only ever gone up (then ``find_match`` bisects instead of scanning)
        self.ascending = True
        self.last_match = np.iinfo(np.int64).min

    def add(self, locate: int, price: int, size: int, match: int, start0: int, start1: int) -> None:
        i = self.total % self.capacity
        lv, pv, sv, mv, s0, s1, alive = self._views
        lv[i], pv[i], sv[i], mv[i], s0[i], s1[i], alive[i] = locate, price, size, match, start0, start1, True
        self.total += 1
        if match <= self.last_match:
            self.ascending = False
        self.last_match = match

    def extend(self, *cols: I64) -> None:
        n = int(cols[0].shape[0])
        cap = self.capacity
        match = cols[3]
        if n and (int(match[0]) <= self.last_match or bool((match[1:] <= match[:-1]).any())):
            self.ascending = False
        if n:
            self.last_match = int(match[-1])
        if n > cap:  # only the newest fit
            cols = tuple(c[n - cap:] for c in cols)
            self.total += n - cap
            n = cap
        pos = (self.total + np.arange(n)) % cap
        for dst, src in zip(self._cols, cols, strict=True):
            dst[pos] = src
        self.alive[pos] = True
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

    def of_locate(self, locate: int) -> I64:
        """Slots of one symbol's prints (broken or not), oldest first: one pass over the log per break."""
        filled = min(self.total, self.capacity)
        idx = np.flatnonzero(self.locate[:filled] == locate)
        return idx[np.argsort((idx - self.total) % self.capacity, kind="stable")]

    def bar_prints(self, slots: I64, k: int, start: int) -> I64:
        """The live prints among ``slots`` of the bar starting at ``start`` (interval ``k``), oldest first."""
        starts = self.start0 if k == 0 else self.start1
        live: I64 = slots[(starts[slots] == start) & self.alive[slots]]
        return live


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
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.now = NONE  # the builder's clock: the latest time seen
        n = MAX_LOCATES
        # the latest bar per interval and locate (open or closed): start (NONE: none yet) and its fields
        self._start = np.full((2, n), NONE, np.int64)
        self._open = np.zeros((2, n), np.bool_)
        self._o, self._h, self._l, self._c, self._v, self._n, self._t = (np.zeros((2, n), np.int64)
                                                                         for _ in range(7))
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
        out: list[Bar] = []
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
                    out.append(Bar(locate, width, s, o[locate], h[locate], lo[locate], price, v[locate], t[locate],
                                   n[locate], 0, UPDATE))
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
                out.append(Bar(locate, width, s, price, price, price, price, size, 1, value, 0, UPDATE))
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
        out: list[Bar] = []
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
            slots = log.of_locate(locate)
            for k, start in ((0, int(log.start0[slot])), (1, int(log.start1[slot]))):
                out.extend(self._unprint(k, locate, start, price, size, log.bar_prints(slots, k, start)))
        if self.now >= self._next_close:
            out += self._close_due()
        return out

    def _unprint(self, k: int, loc: int, start: int, price: int, size: int, rest: I64) -> list[Bar]:
        """Take one print (``price`` x ``size``) out of the bar at ``start``; ``rest``: the bar's other live
        prints still in the log."""
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
        if rest.size == t:  # every other print of the bar is still in the log: recompute exactly
            ps = self._log.price[rest]
            o, h, lo, c = (int(ps[0]), int(ps.max()), int(ps.min()), int(ps[-1])) if t else (0, 0, 0, 0)
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
        if now_ns > self.now:
            self.now = now_ns
        return self._close_due() if self.now >= self._next_close else []

    def _close_due(self) -> list[Bar]:
        out: list[Bar] = []
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

    def _emit(self, k: int, locs: I64, state: str) -> list[Bar]:
        """State-array bars of ``locs`` as Bar objects (finals are pushed to the history)."""
        cols = [self._start[k, locs], self._o[k, locs], self._h[k, locs], self._l[k, locs], self._c[k, locs],
                self._v[k, locs], self._t[k, locs], self._n[k, locs]]
        return self._rows(k, locs, cols, state)

    def _rows(self, k: int, locs: I64, cols: list[I64], state: str) -> list[Bar]:
        """Bars from columns (start, open, high, low, close, volume, trades, notional); finals are pushed to
        the history. Built with ``tuple.__new__``: no per-row constructor frame (thousands a second)."""
        n = int(locs.shape[0])
        rows = zip(locs.tolist(), repeat(INTERVALS[k], n), *(c.tolist() for c in cols), repeat(0, n),
                   repeat(state, n), strict=True)
        bars: list[Bar] = list(map(_new_bar, rows))
        if state == FINAL:
            self._history[k].push_columns(locs.tolist(), cols)
        return bars

    # ------------------------------------------------------------------ per batch
    def apply(self, ex: Executions, breaks: Breaks | None = None, now_ns: int | None = None) -> BarBatch:
        """A batch: the prints (in feed order), then the breaks, then the clock to ``now_ns`` (if later).

        Vectorised: prints are grouped into (locate, bar) segments with numpy; Python touches one segment
        per closed bar (to keep its history) and nothing per print. Open bars come back as columns."""
        closed: list[Bar] = []
        touched = [ex.locate]
        if int(ex.locate.shape[0]):
            closed += self._apply_prints(ex)
        if breaks is not None and int(breaks.locate.shape[0]):
            touched.append(breaks.locate)
            for loc, t, m in zip(breaks.locate.tolist(), breaks.time.tolist(), breaks.match.tolist(), strict=True):
                closed += self.add_break(loc, t, m)
        if now_ns is not None:
            closed += self.close_until(now_ns)
        closed = [b for b in closed if b.state != UPDATE]  # from the per-message calls: ``open`` says it
        locs = np.unique(np.concatenate(touched)) if len(touched) > 1 else np.unique(ex.locate)
        locs = locs[(locs > 0) & (locs < MAX_LOCATES)]
        parts = []
        for k, width in enumerate(INTERVALS):
            sel = locs[self._open[k, locs]]
            parts.append((np.full(sel.shape[0], width, np.int64), sel, self._start[k, sel], self._o[k, sel],
                          self._h[k, sel], self._l[k, sel], self._c[k, sel], self._v[k, sel], self._t[k, sel],
                          self._n[k, sel]))
        return BarBatch(closed, OpenBars(*(np.concatenate(cols) for cols in zip(*parts, strict=True))))

    def _apply_prints(self, ex: Executions) -> list[Bar]:
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
        out: list[Bar] = []
        for k, width in enumerate(INTERVALS):
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

    def _fallback(self, loc: I64, t: I64, p: I64, s: I64, m: I64) -> list[Bar]:
        self.counters["batch_fallbacks"] += 1
        out: list[Bar] = []
        for row in zip(loc.tolist(), t.tolist(), p.tolist(), s.tolist(), m.tolist(), strict=True):
            out += self.add_print(*row)
        return out

    def _apply_interval(self, k: int, width: int, loc: I64, b: I64, p: I64, s: I64, value: I64,
                        new_loc: BOOL) -> list[Bar]:
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
        out: list[Bar] = []
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
