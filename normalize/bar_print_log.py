"""The print log (pure): the last N prints with the bars each went into, to take a broken trade out of them.

A broken trade ('B') names the match number of an earlier print. ``PrintLog`` keeps the last ``capacity``
prints (81 bytes each, allocated up front) with their locate, price, shares, match number and the start of
the 1 s and 1 m bar each went into; ``find_match`` finds a print's slot (bisection while match numbers have
only ascended, as Nasdaq assigns them; a scan otherwise), and ``unprinted`` says what the print's bar looks
like without it. A print that has left the log cannot be found (the builder counts ``breaks_unknown``).

Each print is linked to its symbol's previous and next print in the log, so fixing a bar costs O(1) (the
print's live neighbours) unless the print was at the bar's high or low: then the bar's prints in the log are
walked until a live one at that price turns up (a tie: the extreme stands) or the bar ends. For breaks that
hit a bar's prints at random (the simulator's) that is O(1) expected: the walk happens with the chance the
print is at the extreme, r/n for r prints of n at it, and ends after about n/r prints. Only a run of breaks
aimed at a bar's successive extremes walks the bar each time.

A bar can reach past the log (its first prints left it, on a busy symbol's minute at a million messages a
second): the prints that leave the log are folded, as they leave, into a summary of the one bar per symbol
and interval that straddles the log's tail (its live prints' count, high, low and last price; its open is the
bar's open). Prints that left the log can no longer be broken, so the summary stays exact and a break in a
straddling bar is as exact as any other: never a walk of the bar to count its prints. The loops are
numba-compiled (cached on disk); ``warm_up`` compiles or loads them once per process. Who marks a print
broken (``alive``) is the caller's business.
"""

from __future__ import annotations

import numba
import numpy as np

from .bar_types import BOOL, I64, MAX_LOCATES, NO_BAR

__all__ = ["PrintLog", "warm_up"]

# rows of ``PrintLog._slots`` (per slot) and ``PrintLog._per_locate``, ``PrintLog._edge`` (per interval)
LOC, PRICE, SIZE, MATCH, START0, START1, PREV, NEXT, FIRST0, FIRST1 = range(10)
NEWEST, OLDEST, BAR_START0, BAR_START1, BAR_FIRST0, BAR_FIRST1 = range(6)
E_FIRST, E_LIVE, E_HIGH, E_LOW, E_CLOSE = range(5)


class PrintLog:
    """The last ``capacity`` prints with the bar each went into (per interval), to resolve broken trades.

    Each print is linked to its symbol's previous and next print in the log (global positions: print number
    ``p`` sits in slot ``p % capacity`` while ``p >= total - capacity``). A symbol's bar starts never go back
    in feed order (a late print joins the latest bar), so a bar's prints are one run of its symbol's chain,
    and the log's tail cuts at most one bar per symbol and interval: the prints of that bar which left the log
    are kept as a summary (``_edge``)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"print log capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.total = 0
        self._slots = np.zeros((10, capacity), np.int64)
        (self.locate, self.price, self.size, self.match, self.start0, self.start1, self.prev, self.next,
         self.first0, self.first1) = self._slots
        self.alive = np.zeros(capacity, np.bool_)
        # per locate: its newest and oldest print in the log (-1: none), and per interval the start of the latest
        # bar a print went into with that bar's first print's position
        self._per_locate = np.full((6, MAX_LOCATES), -1, np.int64)
        self._per_locate[BAR_START0:BAR_START1 + 1] = NO_BAR
        # per interval and locate: the bar the log's tail cuts (its first position) and its prints that left
        # the log: live count, high, low, last price
        self._edge = np.zeros((2, 5, MAX_LOCATES), np.int64)
        self._edge[:, E_FIRST] = -1
        self._views = tuple(r.data for r in self._slots) + (self.alive.data,)
        self._loc_views = tuple(r.data for r in self._per_locate)
        self._edge_views = tuple(tuple(r.data for r in self._edge[k]) for k in (0, 1))
        # whether match numbers have only ever gone up (then ``find_match`` bisects instead of scanning)
        self.ascending = True
        self.last_match = np.iinfo(np.int64).min

    def add(self, locate: int, price: int, size: int, match: int, start0: int, start1: int) -> None:
        """One print (the per-message path: plain Python on memoryviews, no numpy call)."""
        cap, pos = self.capacity, self.total
        i = pos % cap
        if pos >= cap:
            self._evict(i)
        lv, pv, sv, mv, s0, s1, prev, nxt, f0, f1, alive = self._views
        newest, oldest, bs0, bs1, bf0, bf1 = self._loc_views
        before = newest[locate]
        if before >= 0 and before >= pos - cap:  # still in the log (its slot may be this one: linked, then overwritten)
            nxt[before % cap] = pos
        if oldest[locate] < 0:
            oldest[locate] = pos
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

    def _evict(self, i: int) -> None:
        """The print in slot ``i`` leaves the log: folded into its bars' tail summaries (``_push_prints``'s
        eviction, per message)."""
        lv, pv, _, _, _, _, _, nxt, f0, f1, alive = self._views
        x = lv[i]
        self._loc_views[OLDEST][x] = nxt[i]
        live, p = alive[i], pv[i]
        for k, first in ((0, f0[i]), (1, f1[i])):
            ef, en, eh, el, ec = self._edge_views[k]
            if ef[x] != first:
                ef[x], en[x] = first, 0
            if live:
                if en[x] == 0:
                    eh[x] = el[x] = p
                elif p > eh[x]:
                    eh[x] = p
                elif p < el[x]:
                    el[x] = p
                ec[x] = p
                en[x] += 1

    def extend(self, *cols: I64) -> None:
        """Prints in feed order: locate, price, size, match, start0, start1."""
        n = int(cols[0].shape[0])
        if n == 0:
            return
        match = cols[3]
        if int(match[0]) <= self.last_match or bool((match[1:] <= match[:-1]).any()):
            self.ascending = False
        self.last_match = int(match[-1])
        _push_prints(self.total, self.capacity, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5],
                     self._slots, self.alive, self._per_locate, self._edge)
        self.total += n

    def find_match(self, match: int) -> int:
        """The slot of the newest print with this match number, or -1."""
        return int(_find_match(self.match, self.total, self.capacity, match, self.ascending))

    def unprinted(self, slot: int, k: int, o: int, h: int, lo: int, c: int) -> tuple[bool, int, int, int, int]:
        """The bar (interval ``k``, fields ``o h lo c`` with the print in ``slot``, which is no longer alive, and
        at least one other live print) without that print: (exact, open, high, low, close). ``exact`` is False
        only if the log lost track of the bar (a broken invariant: the fields are then ``o h lo c``)."""
        ok, o, h, lo, c = _unprinted(slot, k, self._slots, self.alive, self._per_locate, self._edge,
                                     self.total - self.capacity, self.capacity, o, h, lo, c)
        return bool(ok), o, h, lo, c


@numba.njit(cache=True, nogil=True)
def _find_match(col: I64, total: int, cap: int, match: int, ascending: bool) -> int:
    """``PrintLog.find_match``, compiled (one call per break: numpy's searchsorted on two slices cost ~7 us).
    Ascending match numbers lie in two sorted runs, ``[head, filled)`` older than ``[0, head)``: bisected;
    otherwise the log is scanned from the newest print back."""
    filled = min(total, cap)
    if ascending:
        head = total % cap if total > cap else filled
        for lo, hi in ((0, head), (head, filled)):
            a, b = lo, hi
            while a < b:
                mid = (a + b) >> 1
                if col[mid] < match:
                    a = mid + 1
                else:
                    b = mid
            if a < hi and col[a] == match:
                return a
        return -1
    for q in range(total - 1, total - 1 - filled, -1):
        j = q % cap
        if col[j] == match:
            return j
    return -1


@numba.njit(cache=True, nogil=True)
def _push_prints(base: int, cap: int, loc: I64, price: I64, size: I64, match: I64, start0: I64, start1: I64,
                 slots: I64, alive: BOOL, per_loc: I64, edge: I64) -> None:
    """``PrintLog.add`` for prints at positions ``base``, ``base + 1``, ... (compiled: a batch's prints in one
    loop). Each print first evicts the one whose slot it takes, folding it into its bars' tail summaries."""
    for i in range(loc.shape[0]):
        pos = base + i
        j = pos % cap
        if pos >= cap:
            y = slots[LOC, j]
            per_loc[OLDEST, y] = slots[NEXT, j]
            p = slots[PRICE, j]
            for k in range(2):
                first = slots[FIRST0 + k, j]
                if edge[k, E_FIRST, y] != first:
                    edge[k, E_FIRST, y] = first
                    edge[k, E_LIVE, y] = 0
                if alive[j]:
                    if edge[k, E_LIVE, y] == 0:
                        edge[k, E_HIGH, y] = p
                        edge[k, E_LOW, y] = p
                    elif p > edge[k, E_HIGH, y]:
                        edge[k, E_HIGH, y] = p
                    elif p < edge[k, E_LOW, y]:
                        edge[k, E_LOW, y] = p
                    edge[k, E_CLOSE, y] = p
                    edge[k, E_LIVE, y] += 1
        x = loc[i]
        before = per_loc[NEWEST, x]
        if before >= 0 and before >= pos - cap:
            slots[NEXT, before % cap] = pos
        if per_loc[OLDEST, x] < 0:
            per_loc[OLDEST, x] = pos
        for k in range(2):
            s = start0[i] if k == 0 else start1[i]
            if per_loc[BAR_START0 + k, x] != s:
                per_loc[BAR_START0 + k, x] = s
                per_loc[BAR_FIRST0 + k, x] = pos
            slots[FIRST0 + k, j] = per_loc[BAR_FIRST0 + k, x]
        slots[LOC, j] = x
        slots[PRICE, j] = price[i]
        slots[SIZE, j] = size[i]
        slots[MATCH, j] = match[i]
        slots[START0, j] = start0[i]
        slots[START1, j] = start1[i]
        slots[PREV, j] = before
        slots[NEXT, j] = -1
        alive[j] = True
        per_loc[NEWEST, x] = pos


@numba.njit(cache=True, nogil=True)
def _unprinted(slot: int, k: int, slots: I64, alive: BOOL, per_loc: I64, edge: I64, oldest: int, cap: int,
               o: int, h: int, lo: int, c: int) -> tuple[int, int, int, int, int]:
    """``PrintLog.unprinted``, compiled. The open (close) changes only if the print was the first (last) live
    one: its nearest live neighbours and the tail summary say; the high (low) only if the print was at it:
    then the bar's prints in the log are walked until a live one at that price is met."""
    starts = slots[START0 + k]
    price, prev, nxt = slots[PRICE], slots[PREV], slots[NEXT]
    start = starts[slot]
    p = price[slot]
    first = slots[FIRST0 + k, slot]
    x = slots[LOC, slot]
    en = eh = el = ec = 0
    if first >= oldest:
        head = first  # the bar's first print, in the log
    else:  # the bar straddles the log's tail: its prints that left are the summary
        if edge[k, E_FIRST, x] != first:
            return 0, o, h, lo, c
        en, eh, el, ec = edge[k, E_LIVE, x], edge[k, E_HIGH, x], edge[k, E_LOW, x], edge[k, E_CLOSE, x]
        head = per_loc[OLDEST, x]
        if head < 0 or starts[head % cap] != start:
            return 0, o, h, lo, c
    before = after = -1
    q = prev[slot]
    while q >= head:
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
    if before < 0 and en == 0:
        if after < 0:  # no other live print: the caller empties the bar
            return 1, 0, 0, 0, 0
        o = price[after]
    if after < 0:
        c = price[before] if before >= 0 else ec
    want_h = p >= h and not (en > 0 and eh >= h)
    want_l = p <= lo and not (en > 0 and el <= lo)
    if not (want_h or want_l):
        return 1, o, h, lo, c
    nh = eh if en > 0 else np.iinfo(np.int64).min
    nl = el if en > 0 else np.iinfo(np.int64).max
    q = head
    while q >= 0:
        j = q % cap
        if starts[j] != start:
            break
        if alive[j]:
            y = price[j]
            if y > nh:
                nh = y
            if y < nl:
                nl = y
            if (not want_h or nh >= h) and (not want_l or nl <= lo):
                break  # a live print at each extreme wanted: they stand
        q = nxt[j]
    if want_h:
        h = nh
    if want_l:
        lo = nl
    return 1, o, h, lo, c


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
    log.find_match(2)
    _warm = True
