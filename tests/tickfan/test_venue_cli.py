"""``tickfan venue EVENT`` against the real control endpoints: a simulator's (--control) and a market maker's
(--http), each a ``session_route`` on a side server, as the commands serve them."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from ingest.messages import SystemEvent
from order_api.fix import NewOrder
from tickfan import venue_cli
from tickfan.httpserver import SideServer
from venue.marketmaker import MarketMaker, StaticQuoteProvider
from venue.schedule import SYSTEM_EVENTS
from venue.simulator import ExchangeSimulator

pytestmark = pytest.mark.anyio


async def test_venue_events_reach_the_feed_and_the_market_maker() -> None:
    sim = ExchangeSimulator(5, seed=1, opening_phase="pre_market")
    sim.generate(100)  # the opening (O, S: pre-market) and some trading
    quotes = StaticQuoteProvider()
    quotes.set("AAPL", 1_000_000, 100, 1_000_200, 100)
    mm = MarketMaker(quotes, port=0)
    mm.engine.new_order("C", NewOrder("o1", "AAPL", "buy", 5, tif="opg"), 0.0)

    def feed_event(event: str) -> dict[str, object]:
        sim.session_event(event)
        return {"system_event": SYSTEM_EVENTS[event]}

    servers = [SideServer("127.0.0.1", 0, [venue_cli.session_route(feed_event)]),
               SideServer("127.0.0.1", 0, [venue_cli.session_route(lambda e: {"reports": mm.session_event(e)})])]
    for s in servers:
        await s.start()
    try:
        urls = [f"http://127.0.0.1:{s.port}" for s in servers]
        args = argparse.Namespace(event="open", feed_control=[urls[0]], mm_control=[urls[1]], timeout=5.0)
        assert await asyncio.to_thread(venue_cli.main, args) == 0
        assert [m.event_code for m in sim.generate(10) if isinstance(m, SystemEvent)] == ["Q"]
        assert mm.engine.orders["o1"].cum_qty == 5  # filled in the opening cross
        bad = argparse.Namespace(event="open", feed_control=[], mm_control=[], timeout=5.0)
        assert await asyncio.to_thread(venue_cli.main, bad) == 2
        down = argparse.Namespace(event="close", feed_control=["http://127.0.0.1:9"], mm_control=[], timeout=2.0)
        assert await asyncio.to_thread(venue_cli.main, down) == 1
    finally:
        for s in servers:
            await s.close()
