"""Bars straight from ITCH as the spec defines the prints, and simulated packets with breaks of real prints:
the reference every bars test (builder, fan-out, HTTP) compares with."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

from ingest import messages as im
from normalize.bar_types import INTERVALS, SECOND, Bar
from normalize.bars import BarBuilder
from venue.simulator import ExchangeSimulator

# OHLCV fields compared with the reference (everything but the state and version)
Key = tuple[int, int, int]  # (locate, interval, start)
Ohlcv = tuple[int, int, int, int, int, int, int]  # open, high, low, close, volume, trades, notional
T0 = (9 * 3600 + 30 * 60) * SECOND  # 09:30 as ITCH ns since midnight


def ohlcv(b: Bar) -> Ohlcv:
    return b.open, b.high, b.low, b.close, b.volume, b.trades, b.notional


# ---------------------------------------------------------------------------------------------- the reference
def reference_bars(msgs: Sequence[im.Message]) -> dict[Key, Ohlcv]:
    """Bars straight from ITCH, as the spec defines the prints: E at the order's price, C when printable,
    P, Q with shares; B removes the print with its match number (same locate, once)."""
    price_of: dict[int, int] = {}  # live order ref -> price
    prints: dict[int, tuple[int, int, int, int]] = {}  # match -> (locate, time, price, size), feed order
    order: list[int] = []
    broken: set[int] = set()

    def add(loc: int, t: int, p: int, s: int, match: int) -> None:
        prints[match] = (loc, t, p, s)
        order.append(match)

    for m in msgs:
        if isinstance(m, im.AddOrder):
            price_of[m.order_ref] = m.price
        elif isinstance(m, im.OrderReplace):
            price_of[m.new_order_ref] = m.price
        elif isinstance(m, im.OrderExecuted):
            add(m.locate, m.timestamp, price_of[m.order_ref], m.executed_shares, m.match_number)
        elif isinstance(m, im.OrderExecutedWithPrice) and m.printable == "Y":
            add(m.locate, m.timestamp, m.execution_price, m.executed_shares, m.match_number)
        elif isinstance(m, im.Trade):
            add(m.locate, m.timestamp, m.price, m.shares, m.match_number)
        elif isinstance(m, im.CrossTrade) and m.shares > 0:
            add(m.locate, m.timestamp, m.cross_price, m.shares, m.match_number)
        elif isinstance(m, im.BrokenTrade):
            hit = prints.get(m.match_number)
            if hit is not None and hit[0] == m.locate:
                broken.add(m.match_number)
    grouped: dict[Key, list[tuple[int, int]]] = defaultdict(list)
    for match in order:
        if match in broken:
            continue
        loc, t, p, s = prints[match]
        for width in INTERVALS:
            grouped[loc, width, t - t % width].append((p, s))
    out: dict[Key, Ohlcv] = {}
    for key, ps in grouped.items():
        prices = [p for p, _ in ps]
        out[key] = (prices[0], max(prices), min(prices), prices[-1], sum(s for _, s in ps), len(ps),
                    sum(p * s for p, s in ps))
    return out


def built_bars(builder: BarBuilder, locates: range) -> dict[Key, Ohlcv]:
    """Every bar in the builder's history (closed and open) that still has a print."""
    out: dict[Key, Ohlcv] = {}
    for loc, width in itertools.product(locates, INTERVALS):
        for b in builder.history(loc, width, 10_000):
            if b.trades:
                out[loc, width, b.start_ns] = ohlcv(b)
    return out


# ---------------------------------------------------------------------------------------------- the stream
class Clock:
    def __init__(self, start: int, step: int) -> None:
        self.now, self.step = start, step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def session(symbols: int = 12, packets: int = 120, per_packet: int = 40) -> list[list[im.Message]]:
    """Simulated packets, 0.25 s apart, plus breaks of prints some seconds back (their 1 s bars have closed:
    revisions) beside the simulator's own breaks of recent prints of the same symbol."""
    sim = ExchangeSimulator(symbols, seed=7, clock=Clock(T0, SECOND // 4))
    out = [sim.generate(per_packet) for _ in range(packets)]
    seen: list[tuple[int, int]] = []  # (locate, match) of E/P prints
    for i, packet in enumerate(out):
        for m in packet:
            if isinstance(m, (im.OrderExecuted, im.Trade)):
                seen.append((m.locate, m.match_number))
        if i % 10 == 9 and len(seen) > 30:
            loc, match = seen[-30]  # a print some seconds back: its 1 s bar has closed
            packet.append(im.BrokenTrade(loc, 0, packet[-1].timestamp, match))
    return out
