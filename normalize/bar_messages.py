"""The bar builder's state and its per-message path (pure): one print, one break, one clock step at a time.

``MessageBarBuilder`` holds, per interval (1 s, 1 m) and locate, the latest bar (open or closed) in one
int64 array, the closed bars in a ``BarHistory`` and the recent prints in a ``PrintLog``. ``add_print``,
``add_break`` and ``close_until`` (plain Python, a few microseconds each) return the bars they emitted, in
order; their ``*_parts``/``*_columns`` forms pass the finals of a second's end on as one ``FinalBars`` block.

The clock (``now``) is the latest event time seen or given and never goes back; a bar closes when it
reaches the bar's end, for every locate at once (``_next_close`` is a lower bound on the earliest end, so a
step that closes nothing costs one comparison). A print older than its symbol's latest bar goes into that
bar (revising it if closed: ``late_prints``); a broken trade is taken out of its 1 s and 1 m bars (updated
if open, revised if closed). Bad input is counted in ``counters`` (``COUNTER_NAMES``) and changes nothing.
The full rules are ``normalize.bars``'s docstring; ``normalize.bars.BarBuilder`` adds the vectorised batch
path on this same state.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .bar_history import BarHistory
from .bar_print_log import PrintLog, warm_up
from .bar_types import (
    FINAL,
    I64,
    INTERVALS,
    MAX_LOCATES,
    MAX_NOTIONAL,
    MAX_PRICE,
    MAX_SIZE,
    MINUTE,
    NO_BAR,
    REVISED,
    SECOND,
    UPDATE,
    Bar,
    Emitted,
    FinalBars,
    interval_index,
    new_bar,
    rows_of,
)

__all__ = ["COUNTER_NAMES", "MessageBarBuilder"]

COUNTER_NAMES = (
    "prints",                # prints taken into bars
    "bad_prints",            # dropped: locate, price or shares out of range, or a bar notional that would overflow
    "late_prints",           # older than the symbol's latest bar: put in that bar
    "breaks",                # broken trades applied
    "breaks_unknown",        # match number not in the print log (never seen, or older than the log)
    "breaks_repeated",       # a match number already broken
    "breaks_wrong_locate",   # the break's locate is not the print's: changes nothing
    "breaks_expired",        # the print's bar has left the history (per interval)
    "breaks_approximate",    # the log lost track of the print's bar (never, by construction): open/high/low/close kept
    "batch_fallbacks",       # batches applied print by print (times going back within a symbol)
)


class MessageBarBuilder:
    """1 s and 1 m bars for every locate, one message at a time (``normalize.bars.BarBuilder`` adds batches).
    The rules are ``normalize.bars``'s module docstring."""

    def __init__(self, *, history_1s: int = 3_600, history_1m: int = 390, print_log: int = 1 << 20) -> None:
        if history_1s <= 0 or history_1m <= 0:
            raise ValueError("bar history must keep at least one bar per interval")
        warm_up()  # the print log's compiled loops, before the first break needs them
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.now = NO_BAR  # the builder's clock: the latest time seen
        n = MAX_LOCATES
        # the latest bar per interval and locate (open or closed): start (NO_BAR: none yet) and its fields
        # one array (field, interval, locate), fields in ``OpenBars`` order: a batch gathers its touched bars
        # with one fancy index, not eight
        self._state = np.zeros((8, 2, n), np.int64)
        self._state[0] = NO_BAR
        self._start, self._o, self._h, self._l, self._c, self._v, self._t, self._n = self._state
        self._open = np.zeros((2, n), np.bool_)
        self._history = (BarHistory(SECOND, history_1s), BarHistory(MINUTE, history_1m))
        self._log = PrintLog(print_log)
        self._next_close = np.iinfo(np.int64).max  # the earliest end of an open bar (a lower bound)
        # per interval, the same memory as memoryviews: single elements as plain ints, for the per-message path
        self._mv = tuple((self._start[k].data, self._open[k].data, self._o[k].data, self._h[k].data,
                          self._l[k].data, self._c[k].data, self._v[k].data, self._n[k].data, self._t[k].data)
                         for k in (0, 1))

    # ------------------------------------------------------------------ reading
    def history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        """Up to ``limit`` newest bars, oldest first: closed bars (state ``final``/``revised``) then, if one is
        open, the open bar (state ``update``). Streaming this builder's later emissions after it is gapless."""
        k = interval_index(interval_ns)
        if limit <= 0 or not 0 <= locate < MAX_LOCATES:
            return []
        live = [self._bar(k, locate, UPDATE)] if self._open[k, locate] else []
        return self._history[k].bars(locate, limit - len(live)) + live

    @property
    def bars_kept(self) -> int:
        """Closed bars held in the history, both intervals (a gauge)."""
        return self._history[0].bars_kept() + self._history[1].bars_kept()

    def open_bar(self, locate: int, interval_ns: int) -> Bar | None:
        k = interval_index(interval_ns)
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
                    out.append(new_bar((locate, width, s, o[locate], h[locate], lo[locate], price, v[locate],
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
                out.append(new_bar((locate, width, s, price, price, price, price, size, 1, value, 0, UPDATE)))
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
        """Take one print (``price`` x ``size``, in the log's ``slot``) out of the bar at ``start``. (Fields
        through the memoryviews, one ``Bar`` made: a busy open breaks thousands of trades a second.)"""
        st, op, vo, vh, vl, vc, vv, vn, vt = self._mv[k]
        latest = st[loc] == start
        is_open = latest and op[loc]
        where = -1
        if is_open:
            o, h, lo, c, v, n, t, version = vo[loc], vh[loc], vl[loc], vc[loc], vv[loc], vn[loc], vt[loc], 0
        else:
            found = self._history[k].find(loc, start)
            if found is None:
                self.counters["breaks_expired"] += 1
                return []
            where, old = found
            o, h, lo, c, v, n, t = old.open, old.high, old.low, old.close, old.volume, old.notional, old.trades
            version = old.version + 1
        v, n, t = v - size, n - price * size, t - 1
        if not t:
            o = h = lo = c = 0
        else:
            exact, o, h, lo, c = self._log.unprinted(slot, k, o, h, lo, c)
            if not exact:
                self.counters["breaks_approximate"] += 1
        nb = Bar(loc, INTERVALS[k], start, o, h, lo, c, v, t, n, version, UPDATE if is_open else REVISED)
        if not is_open:
            self._history[k].replace(where, nb)
        if latest:  # the latest bar (open, or closed): keep the state arrays in step
            vo[loc], vh[loc], vl[loc], vc[loc], vv[loc], vn[loc], vt[loc] = o, h, lo, c, v, n, t
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
