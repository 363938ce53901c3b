"""The print log (pure): the last N prints with the bars each went into, to take a broken trade out of them.

A broken trade ('B') names the match number of an earlier print. ``PrintLog`` keeps the last ``capacity``
prints (81 bytes each, allocated up front) with their locate, price, shares, match number and the start of
the 1 s and 1 m bar each went into; ``find_match`` finds a print's slot (bisection while match numbers have
only ascended, as Nasdaq assigns them; a scan otherwise), and ``unprinted`` says what the print's bar looks
like without it. A print that has left the log cannot be found (the builder counts ``breaks_unknown``); a
bar whose other prints have left it is answered with their count only (the builder then keeps
open/high/low/close: ``breaks_approximate``).

Each print is linked to its symbol's previous and next print in the log, so fixing a bar costs O(1) (the
print's live neighbours) unless the print was at the bar's high or low or the bar reaches past the log: then
O(the bar's prints), in a compiled loop. The loops are numba-compiled (cached on disk); ``warm_up`` compiles
or loads them once per process. Who marks a print broken (``alive``) is the caller's business.
"""

from __future__ import annotations

import numba
import numpy as np

from .bar_types import BOOL, I64, MAX_LOCATES, NO_BAR

__all__ = ["PrintLog", "warm_up"]


class PrintLog:
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
        self.bar_start = np.full((2, MAX_LOCATES), NO_BAR, np.int64)
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
    """``PrintLog.add``'s links for prints at positions ``base``, ``base + 1``, ... (compiled: a batch's
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
    """``PrintLog.unprinted``, compiled. A bar's prints are one run of its symbol's chain. If all are still
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



_warm = False


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the log's loops, once per process, so that a node's first
    batch or break does not pay for it on the ingest path."""
    global _warm
    if _warm:
        return
    log = PrintLog(2)
    one = np.ones(3, np.int64)
    log.extend(one, one, one, np.arange(3, dtype=np.int64), one, one)
    log.alive[0] = False
    log.unprinted(0, 0, 1, 1, 1, 1)
    _warm = True
