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
changes nothing; one whose bar has left the history is ``breaks_expired`` for that interval; every other
break is exact, also when the bar's first prints have left the log (they are kept as a summary per symbol and
interval as they leave). A break costs O(log size) to find its print (match numbers ascend: bisection) and
O(1) to fix its bars (the print's neighbours in its symbol's chain), unless the print was at its bar's high
or low: then the bar's prints in the log are walked, in a compiled loop, until a live one at that price
turns up (O(1) expected when breaks fall at random on a bar's prints; ``bar_print_log`` says why).

Two input paths with the same semantics: per message (``add_print``, ``add_break``, ``close_until``: plain
Python, a few microseconds, each returning the bars it emitted) and per batch (``apply``: numpy columns,
vectorised by grouping prints into (symbol, bar) segments, returning a ``BarBatch``: the closed bars, then
the open bars it touched as columns). Closed bars that need no row of their own (the finals of a second's
end: every busy symbol's at once) are passed on as columns too (``FinalBars``; ``*_parts`` and
``close_until_columns`` return them so, ``rows_of`` turns them into ``Bar``s). For a feed whose times
never go back per symbol both leave the same history and open bars; the batch path sends one ``update``
per touched bar instead of one per print, and a bar revised by several late prints of one batch is revised
once (one version step, not several).

Modules: ``bar_types`` (the values: ``Bar``, its states, input columns, output blocks), ``bar_history`` (the
closed bars kept), ``bar_print_log`` (the prints kept to resolve breaks), ``bar_messages`` (the builder's
state and its per-message path, the clock), this one (``BarBuilder``: the per-batch path on that state);
``bar_feed`` feeds a builder from the books and ``bar_wire`` puts bars on the wire.
"""

from __future__ import annotations

import numba
import numpy as np

from .bar_messages import MessageBarBuilder
from .bar_print_log import warm_up as warm_up_print_log
from .bar_types import (
    BOOL,
    FINAL,
    I64,
    INTERVALS,
    MAX_LOCATES,
    MAX_NOTIONAL,
    MAX_PRICE,
    MAX_SIZE,
    UPDATE,
    Bar,
    BarBatch,
    Breaks,
    Emitted,
    Executions,
    OpenBars,
)

__all__ = ["BarBuilder", "warm_up"]


class BarBuilder(MessageBarBuilder):
    """1 s and 1 m bars for every locate, per message (``MessageBarBuilder``) or per batch (``apply``). See the
    module docstring."""

    def __init__(self, *, history_1s: int = 3_600, history_1m: int = 390, print_log: int = 1 << 20) -> None:
        super().__init__(history_1s=history_1s, history_1m=history_1m, print_log=print_log)
        warm_up()

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
    """Compile (or load from numba's disk cache) the print log's loops and the batch fold, once per process, so
    that a node's first batch or break does not pay for it on the ingest path."""
    global _warm
    if _warm:
        return
    warm_up_print_log()
    one = np.ones(3, np.int64)
    state = np.zeros((8, 2, 4), np.int64)  # as the builder passes it: one interval's view, not contiguous
    is_open = np.zeros((2, 4), np.bool_)
    rows = np.zeros((8, 2), np.int64)
    _fold(one[:2], one[:2], one[:2], one[:2], np.ones(2, np.bool_), state[:, 0], is_open[0], rows,
          one[:2].copy(), rows.copy(), one[:2].copy())
    _warm = True
