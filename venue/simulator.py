"""The exchange's message generator (pure): a simulated trading day of ITCH 5.0 messages, as bytes.

``ExchangeSimulator`` (pure) writes a trading day's worth of ITCH 5.0 messages: system events, a stock
directory for every symbol, trading actions, an opening book, then an endless mix of adds (with and without
MPID), executions (with and without price), cancels, deletes, replaces, trades, crosses, broken trades and
the odd halt, and, as configured (``venue.status``), LULD pauses and the other trading status events. Activity
per symbol follows a Zipf-like law, so a handful of names (TSLA, NVDA, AAPL, ...)
are hot; prices random-walk on penny ticks with realistic spreads. Every execute, cancel, delete and
replace refers to an order that is live at that moment, and the simulated book never crosses.

Timestamps are ITCH's own, as Nasdaq stamps them: nanoseconds since midnight US Eastern of the session's
date (``session_date``, default today in New York; ``vocab.clock.itch_now``), so a node converting with the
same date reads Unix epoch times within the wire's latency of its own clock.

No sockets, no clock reads beyond the injectable ``clock`` that stamps messages: ``venue.feed.serve`` paces
the stream onto UDP, ``venue.rewinder`` keeps it for re-requests, ``venue.glimpse_server`` sends
``ExchangeSimulator.snapshot`` to a rebuilding consumer.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from functools import partial

import numpy as np

from ingest import itch
from ingest.messages import (
    AddOrder,
    Message,
    StockDirectory,
    SystemEvent,
    TradingAction,
)
from vocab.clock import itch_now, today_eastern

from .schedule import OPENING, SYSTEM_EVENTS
from .status import StatusConfig, StatusScript

HOT_TICKERS = (
    "TSLA", "NVDA", "AAPL", "AMD", "AMZN", "MSFT", "META", "SPY", "QQQ", "GOOGL", "NFLX", "PLTR", "INTC",
    "SOFI", "F", "BAC", "NIO", "GME", "AMC", "COIN", "MARA", "UBER", "DIS", "BABA", "T", "PFE", "XOM",
    "JPM", "WMT", "KO",
)
# A plausible price for the hot names, in dollars; the rest get a log-normal draw.
HOT_PRICES = (250, 120, 190, 160, 180, 420, 500, 560, 480, 170, 650, 25, 30, 8, 12, 40, 5, 25, 4, 200,
              20, 70, 110, 80, 17, 28, 115, 200, 80, 60)
TICK = 100  # one cent in ITCH Price(4) units
MPIDS = ("GSCO", "MSCO", "CDRG", "VIRT", "JPMS", "UBSS")
MAX_LIVE_ORDERS = 48  # per symbol; keeps the simulated book (and the handler's) bounded
MIN_SIDE = 3  # orders a side keeps before anything else happens to the symbol
LOCATE_BATCH = 8192
ORDER_BATCH = 4096
HALT_EVENTS = 50_000  # a halt lasts this many events: a few seconds at demo rates


def fixed_universe(symbols: int) -> list[str]:
    """Tickers by locate - 1: the hot names first, then unique synthetic 3-5 letter names."""
    names = list(HOT_TICKERS[:symbols])
    seen = set(names)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    i = 0
    while len(names) < symbols:
        n, chars = i, []
        for _ in range(3 + i % 3):
            n, r = divmod(n * 7 + 11, 26)
            chars.append(letters[r])
        i += 1
        name = "".join(chars)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


class ExchangeSimulator:
    def __init__(self, symbols: int = 10_000, *, seed: int = 1, zipf: float = 1.1,
                 session_date: dt.date | None = None, clock: Callable[[], int] | None = None,
                 status: StatusConfig | None = None, opening_phase: str = "open") -> None:
        """``clock``: the ITCH stamp of each message (default: now, counted from ``session_date``'s Eastern
        midnight). ``status``: which trading status events to emit and how often (``venue.status``; none by
        default). ``opening_phase``: where the day is when the feed starts (``venue.schedule.OPENING``: "open",
        the demo's, unless a calendar says otherwise); ``session_event`` moves it on."""
        if opening_phase not in OPENING:
            raise ValueError(f"opening phase must be one of {', '.join(OPENING)}")
        self.opening_phase = opening_phase
        if not 1 <= symbols <= 65_535:
            raise ValueError("symbols must be between 1 and 65535 (ITCH locates are 16-bit)")
        self.tickers = fixed_universe(symbols)
        self.session_date = session_date if session_date is not None else today_eastern()
        self.clock: Callable[[], int] = clock if clock is not None else partial(itch_now, self.session_date)
        rng = np.random.default_rng(seed)
        self._rng = rng
        # Python's Mersenne Twister: one C call per draw, far cheaper than numpy scalars per message
        self.rand = random.Random(seed).random
        n = symbols
        ranks = np.arange(1, n + 1, dtype=np.float64)
        weights = 1.0 / ranks**zipf
        self._cdf = np.cumsum(weights / weights.sum())
        self._locates: list[int] = []  # drawn in batches; the next one is self._locates[self._li]
        self._li = 0
        self._draws = 0  # locates drawn so far: the simulator's clock for halts
        self._order_draws: list[tuple[int, int]] = []
        prices = np.exp(rng.normal(np.log(30.0), 1.0, n)).clip(1.0, 900.0)
        prices[: len(HOT_PRICES)] = HOT_PRICES[:n]
        # mid in cents; half-spread in ticks: 1 cent for the liquid head, wider down the tail
        self.mid = [int(p * 100) * TICK for p in prices]
        self.half_spread = [max(1, min(10, int(1 + r / 400))) * TICK for r in range(n)]
        # live orders: ref -> [locate, side, price, shares]; per locate the list of its live refs (FIFO)
        self.orders: dict[int, list[int]] = {}
        self.by_locate: list[list[int]] = [[] for _ in range(n + 1)]
        # the same refs split by side, at 2 * locate + side: the touch is found without a side test
        self.by_side: list[list[int]] = [[] for _ in range(2 * n + 2)]
        self.best_bid = [0] * (n + 1)
        self.best_ask = [0] * (n + 1)
        self.halted: dict[int, int] = {}  # locate -> value of ``_draws`` from which trading resumes
        self.next_ref = 1
        self.next_match = 1
        # the last prints' (locate, match number): a broken trade ('B') voids one of them, of its own symbol,
        # as Nasdaq's do (a break names a match number of an execution in the same stock)
        self.recent_matches: list[tuple[int, int]] = []
        self.generated = 0
        self._opening: list[Message] | None = None
        self._stock8 = [b""] + [t.encode().ljust(8) for t in self.tickers]
        self.status = StatusScript(status or StatusConfig(), self)

    def close_market(self) -> None:
        """End market hours (S 'M') with the next messages: orders are refused from then on."""
        self.status.close_market()

    def session_event(self, event: str) -> None:
        """A session event of the venue's day (``venue.schedule``) as its system event, with the next messages."""
        if event not in SYSTEM_EVENTS:
            raise ValueError(f"unknown session event {event!r} ({', '.join(SYSTEM_EVENTS)})")
        self.status.system(SYSTEM_EVENTS[event])

    # ---------------------------------------------------------------- the opening
    def opening(self) -> list[Message]:
        """System events, directory, trading actions and a two-sided opening book for every symbol."""
        ts = self.clock()
        codes = OPENING[self.opening_phase]
        out: list[Message] = [SystemEvent(0, 0, ts, c) for c in codes if c in "OS"]
        for locate, name in enumerate(self.tickers, start=1):
            etp = "Y" if name in ("SPY", "QQQ") else "N"
            out.append(StockDirectory(locate, 0, ts, name, "Q", "N", 100, "N", "E" if etp == "Y" else "C",
                                      "Z", "P", "N", "N", "1", etp, 0, "N"))
            out.append(TradingAction(locate, 0, ts, name, "T", " ", ""))
        out += [SystemEvent(0, 0, ts, c) for c in codes if c in "QM"]
        self.status.system_event = codes[-1]
        for locate in range(1, len(self.tickers) + 1):
            for level in range(3):
                for side in (0, 1):
                    ref, shares, price = self._add(locate, side, level)
                    out.append(AddOrder(locate, 0, ts, ref, "BS"[side], shares, self.tickers[locate - 1], price))
        return out

    def snapshot(self) -> list[bytes]:
        """The whole current state as ITCH bytes (directory, trading actions and the other status, live orders)
        for a rebuild."""
        ts = self.clock()
        out: list[bytes] = []
        paused = self.status.paused[0] if self.status.paused is not None else None
        for locate, name in enumerate(self.tickers, start=1):
            out.append(itch.encode(StockDirectory(locate, 0, ts, name, "Q", "N", 100, "N", "C", "Z", "P", "N",
                                                  "N", "1", "N", 0, "N")))
            state, reason = ("P", "LUDP") if locate == paused else ("H", "T1") if locate in self.halted else ("T", "")
            out.append(itch.encode(TradingAction(locate, 0, ts, name, state, " ", reason)))
        out += [itch.encode(m) for m in self.status.snapshot(ts)]
        for ref, (locate, side, price, shares) in self.orders.items():
            out.append(itch.encode(AddOrder(locate, 0, ts, ref, "BS"[side], shares, self.tickers[locate - 1], price)))
        return out

    # ---------------------------------------------------------------- book keeping
    def _draw_locates(self) -> list[int]:
        """The next batch of active symbols, Zipf-distributed (one numpy call per 8,192 events)."""
        draws = np.searchsorted(self._cdf, self._rng.random(LOCATE_BATCH), side="right") + 1
        self._draws += LOCATE_BATCH
        locates: list[int] = np.minimum(draws, len(self.tickers)).tolist()
        return locates

    def _draw_orders(self) -> list[tuple[int, int]]:
        """A batch of new orders' (distance from the touch in price units, shares), drawn by numpy.

        Depth is exponential (mean 1.5 ticks, half the orders at the touch); sizes are mostly round lots.
        """
        rng, n = self._rng, ORDER_BATCH
        offsets = (rng.exponential(1.5, n).astype(np.int64) * TICK).tolist()
        shares = np.where(rng.random(n) < 0.8, 100 * rng.integers(1, 10, n), rng.integers(1, 100, n)).tolist()
        return list(zip(offsets, shares, strict=True))

    def _add(self, locate: int, side: int, depth: int | None = None) -> tuple[int, int, int]:
        """Book a new order near the touch without crossing; returns (order ref, shares, price)."""
        draws = self._order_draws
        if not draws:
            draws = self._order_draws = self._draw_orders()
        off, shares = draws.pop()
        if depth is not None:
            off = depth * TICK
        if side == 0:
            price = self.mid[locate - 1] - self.half_spread[locate - 1] - off
            ask = self.best_ask[locate]
            if ask and price >= ask:
                price = ask - TICK
            if price < TICK:
                price = TICK
            if price > self.best_bid[locate]:
                self.best_bid[locate] = price
        else:
            price = self.mid[locate - 1] + self.half_spread[locate - 1] + off
            bid = self.best_bid[locate]
            if bid and price <= bid:
                price = bid + TICK
            best = self.best_ask[locate]
            if not best or price < best:
                self.best_ask[locate] = price
        ref = self.next_ref
        self.next_ref = ref + 1
        self.orders[ref] = [locate, side, price, shares]
        self.by_locate[locate].append(ref)
        self.by_side[2 * locate + side].append(ref)
        return ref, shares, price

    def _remove(self, ref: int) -> None:
        locate, side, price, _ = self.orders.pop(ref)
        self.by_locate[locate].remove(ref)
        same_side = self.by_side[2 * locate + side]
        same_side.remove(ref)
        orders = self.orders
        if side == 0:
            if price == self.best_bid[locate]:
                self.best_bid[locate] = max([orders[x][2] for x in same_side], default=0)
        elif price == self.best_ask[locate]:
            self.best_ask[locate] = min([orders[x][2] for x in same_side], default=0)

    def _best_order(self, locate: int) -> int | None:
        """A live order at the best price of a random side (executions happen at the top)."""
        side = 0 if self.rand() < 0.5 else 1
        best = self.best_bid[locate] if side == 0 else self.best_ask[locate]
        orders = self.orders
        for ref in self.by_side[2 * locate + side]:
            if orders[ref][2] == best:
                return ref
        return None

    def _match(self, locate: int) -> int:
        m = self.next_match
        self.next_match += 1
        if len(self.recent_matches) < 256:
            self.recent_matches.append((locate, m))
        else:
            self.recent_matches[m % 256] = (locate, m)
        return m

    # ---------------------------------------------------------------- the stream
    def generate(self, n: int) -> list[Message]:
        """The next ``n`` messages as NamedTuples (tests and tools; the feed itself uses ``generate_encoded``)."""
        return [itch.decode(b) for b in self.generate_encoded(n)]

    def generate_encoded(self, n: int) -> list[bytes]:
        """The next ``n`` messages as ITCH bytes, packed straight from the simulator's state.

        Packing directly (no message objects, no generic encoder), random numbers drawn by numpy in
        batches, is what lets one core generate some 150,000-190,000 messages a second.
        """
        if self._opening is None:
            self._opening = self.opening()
        out: list[bytes] = []
        ts = self.clock()
        if self._opening:
            # stamped as they go out, like everything else: the opening at a low rate takes seconds
            out.extend(itch.encode(m._replace(timestamp=ts)) for m in self._opening[:n])
            del self._opening[:n]
        if not self._opening:
            due = self.status.due(ts)
            if due:
                room = n - len(out)
                out.extend(itch.encode(m) for m in due[:room])
                self.status.requeue(due[room:])
        hi, lo = (ts >> 32) & 0xFFFF, ts & 0xFFFFFFFF
        event = self._event
        append = out.append
        locates, li = self._locates, self._li
        k = len(out)
        while k < n:
            if li >= len(locates):
                locates, li = self._draw_locates(), 0
                if self.halted:  # halts are checked once a batch: no per-message cost
                    resumed = self._resume(hi, lo, n - k)
                    out += resumed
                    k += len(resumed)
                    continue
            msg = event(locates[li], hi, lo)
            li += 1
            if msg is not None:
                append(msg)
                k += 1
        self._locates, self._li = locates, li
        self.generated += k
        return out

    def _resume(self, hi: int, lo: int, room: int) -> list[bytes]:
        """Trading resumes ('T') for halts that are over, at most ``room`` of them (the rest wait)."""
        out: list[bytes] = []
        for locate, resume_at in list(self.halted.items()):
            if resume_at <= self._draws and len(out) < room:
                del self.halted[locate]
                out.append(_PH(b"H", locate, 0, hi, lo, self._stock8[locate], b"T", b" ", b"    "))
        return out

    def _event(self, locate: int, hi: int, lo: int) -> bytes | None:
        r = self.rand
        halted_now = self.halted
        # the price walk: a tick up or down now and then
        u = r()
        if u < 0.08:
            mid = self.mid[locate - 1] + (TICK if u < 0.04 else -TICK)
            self.mid[locate - 1] = mid if mid > 10 * TICK else 10 * TICK
        live = self.by_locate[locate]
        halted = locate in halted_now
        if not halted and len(live) < MAX_LIVE_ORDERS:
            # a real book is never one-sided for long: a thin side is replenished first
            by_side = self.by_side
            thin = 0 if len(by_side[2 * locate]) < MIN_SIDE else 1 if len(by_side[2 * locate + 1]) < MIN_SIDE else -1
            if thin >= 0:
                ref, shares, price = self._add(locate, thin)
                return _PA(b"A", locate, 0, hi, lo, ref, _SIDE[thin], shares, self._stock8[locate], price)
        if halted:
            # a halted book keeps its resting orders (no trading, the odd cancel): it is not drained
            if not live or r() > 0.1:
                return None
            ref = live[int(r() * len(live))]
            o = self.orders[ref]
            if o[3] <= 1:
                return None
            cut = 1 + int(r() * (o[3] - 1))
            o[3] -= cut
            return _PX(b"X", locate, 0, hi, lo, ref, cut)
        x = r()
        if x < 0.40 and len(live) < MAX_LIVE_ORDERS:
            side = 0 if r() < 0.5 else 1
            ref, shares, price = self._add(locate, side)
            if r() < 0.12:
                return _PF(b"F", locate, 0, hi, lo, ref, _SIDE[side], shares, self._stock8[locate], price,
                           _MPID[int(r() * len(_MPID))])
            return _PA(b"A", locate, 0, hi, lo, ref, _SIDE[side], shares, self._stock8[locate], price)
        if not live:
            side = 0 if r() < 0.5 else 1
            ref, shares, price = self._add(locate, side)
            return _PA(b"A", locate, 0, hi, lo, ref, _SIDE[side], shares, self._stock8[locate], price)
        if x < 0.62 or (x < 0.5 and len(live) >= MAX_LIVE_ORDERS):
            ref = live[int(r() * min(len(live), 8))]  # the oldest go first
            self._remove(ref)
            return _PD(b"D", locate, 0, hi, lo, ref)
        if x < 0.72:
            ref = live[int(r() * len(live))]
            o = self.orders[ref]
            if o[3] <= 1:
                self._remove(ref)
                return _PD(b"D", locate, 0, hi, lo, ref)
            cut = 1 + int(r() * (o[3] - 1))
            o[3] -= cut
            return _PX(b"X", locate, 0, hi, lo, ref, cut)
        if x < 0.80:
            ref = live[int(r() * len(live))]
            side = self.orders[ref][1]
            self._remove(ref)
            new_ref, shares, price = self._add(locate, side)
            return _PU(b"U", locate, 0, hi, lo, ref, new_ref, shares, price)
        if x < 0.92:
            best_ref = self._best_order(locate)
            if best_ref is None:
                return None
            o = self.orders[best_ref]
            shares = min(o[3], 100 * (1 + int(r() * 3)))
            o[3] -= shares
            price = o[2]
            if o[3] <= 0:
                self._remove(best_ref)
            match = self._match(locate)
            if r() < 0.15:
                return _PC(b"C", locate, 0, hi, lo, best_ref, shares, match, b"Y" if r() < 0.9 else b"N", price)
            return _PE(b"E", locate, 0, hi, lo, best_ref, shares, match)
        if x < 0.985:
            bid, ask = self.best_bid[locate], self.best_ask[locate]
            price = (bid + ask) // 2 // TICK * TICK if bid and ask else self.mid[locate - 1]
            return _PP(b"P", locate, 0, hi, lo, 0, b"B" if r() < 0.5 else b"S", 1 + int(r() * 500),
                       self._stock8[locate], price, self._match(locate))
        if x < 0.993:
            return _PQ(b"Q", locate, 0, hi, lo, 100 * (1 + int(r() * 50)), self._stock8[locate],
                       self.mid[locate - 1], self._match(locate), b"I")
        if x < 0.996 and self.recent_matches:
            # a recent print is broken, once: the break carries that print's locate and match number
            recent = self.recent_matches
            i = int(r() * len(recent))
            broken_locate, broken_match = recent[i]
            recent[i] = recent[-1]
            recent.pop()
            return _PB(b"B", broken_locate, 0, hi, lo, broken_match)
        if x < 0.9965 and len(halted_now) < 4:
            # the halted name is drawn uniformly, not by activity: halts are news about one company, and a hot
            # name halted on every few thousand of its own messages would be halted half the session
            victim = 1 + int(r() * len(self.mid))
            if victim in halted_now:
                return None
            halted_now[victim] = self._draws + HALT_EVENTS
            return _PH(b"H", victim, 0, hi, lo, self._stock8[victim], b"H", b" ", b"T1  ")  # news pending
        return None


_PA, _PF, _PD, _PX, _PU, _PE, _PC, _PP, _PQ, _PB, _PH = (
    itch.STRUCTS[t].pack for t in (b"A", b"F", b"D", b"X", b"U", b"E", b"C", b"P", b"Q", b"B", b"H"))
_SIDE = (b"B", b"S")
_MPID = tuple(m.encode() for m in MPIDS)
