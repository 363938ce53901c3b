"""Builders for the market-maker tests: the quote table, an engine over it, a running ``MarketMaker``, and
helpers that run the engine's schedule with time passed in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from order_api.fix import ExecType, ExecutionReport
from venue.marketmaker import BookQuote, Faults, MarketMaker, MatchingEngine, StaticQuoteProvider

AAPL = BookQuote(1892500, 300, 1892600, 100)  # 189.25 x 300 / 189.26 x 100
MSFT = BookQuote(4000000, 50, 4001000, 50)
QUOTES = {"AAPL": AAPL, "MSFT": MSFT}


def engine(faults: Faults | None = None, **kw: Any) -> tuple[MatchingEngine, StaticQuoteProvider]:
    q = StaticQuoteProvider(QUOTES)
    return MatchingEngine(q, faults, id_prefix="t", **kw), q


def trades(reports: list[Any]) -> list[ExecutionReport]:
    return [r for r in reports if isinstance(r, ExecutionReport) and r.exec_type is ExecType.TRADE]


def drain(e: MatchingEngine, start: float = 0.0) -> list[ExecutionReport]:
    """Run the engine's schedule until nothing is due (time jumps to each wake-up)."""
    out: list[ExecutionReport] = []
    now = start
    while (wake := e.next_wakeup()) is not None and now < start + 100:
        now = max(now, wake)
        out += [r for _, r in e.step(now) if isinstance(r, ExecutionReport)]
    return out



def drain_once(e: MatchingEngine) -> list[Any]:
    wake = e.next_wakeup()
    return [] if wake is None else e.step(wake)



@contextlib.asynccontextmanager
async def market(**kw: Any) -> AsyncIterator[tuple[MarketMaker, StaticQuoteProvider]]:
    q = StaticQuoteProvider(QUOTES)
    mm = MarketMaker(q, host="127.0.0.1", port=0, seed=1, **kw)
    await mm.start()
    try:
        yield mm, q
    finally:
        await mm.stop()

