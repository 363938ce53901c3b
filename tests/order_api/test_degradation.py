"""Graceful degradation (the design: disable charts, keep trading), against real servers: the order API over HTTP
with its prices from Redis, an execution worker with its outbox relay, the FIX market maker, and a fan-out
node's orders relay (``trading_stack``).

- Redis down (a private server, stopped): orders are still placed, priced by the last quote this process held,
  within its age bound, and the portfolio valued by it; their work and updates wait in the outbox. Redis back
  (empty, as after a restart): the outbox drains, the streams and their group are made again, every order is
  routed and filled once, and the user's order updates resume.
- The market-data node down (its quotes frozen in Redis, its live mark ageing): trading goes on (limit orders,
  fills), the portfolio is still valued, and both say their prices are stale (``quote_stale``/``quote_age`` on
  the placed order, ``prices_stale``/``price_stale``/``price_age`` on the portfolio); a market order is refused
  ``quote_stale``.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from order_api.model import Rules
from order_api.quotes import RedisQuotes
from tests.conftest import PrivateRedis, eventually
from venue.marketmaker import MarketMaker, StaticQuoteProvider
from vocab.redisconn import open_redis

from .conftest import ScopedLedger
from .test_api import auth, order
from .test_execution import executions_per_order, market, statuses
from .test_quotes import STALE_SYM, publish_one_quote
from .trading_stack import stack

pytestmark = [pytest.mark.anyio, pytest.mark.ledger(max_size=20), pytest.mark.timeout(120)]

DOLLAR = 10_000
QTY = 3


def quote_at_the_market_maker(mm: MarketMaker) -> None:
    """The market maker quotes the test's symbol as the published one (100.0000 / 100.0200)."""
    assert isinstance(mm.quotes, StaticQuoteProvider)
    mm.quotes.set(STALE_SYM, 1_000_000, 1_000, 1_000_200, 1_000)


async def placed(http: httpx.AsyncClient, user: str, **kw: Any) -> uuid.UUID:
    r = await http.post("/v1/orders", json=order(symbol=STALE_SYM, qty=QTY, **kw), headers=auth(user))
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["order_id"])


async def unpublished(ledger: ScopedLedger, user: str) -> int:
    return int(await ledger.pool_for(user).fetchval(
        "SELECT count(*) FROM outbox WHERE user_id = $1 AND published_at IS NULL", user))


@pytest.mark.ledger(max_size=20, rules=Rules(max_quote_age=30.0))
async def test_with_redis_down_orders_are_placed_and_when_it_returns_they_execute_and_updates_resume(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    await publish_one_quote(private_redis.url)
    quotes_redis = open_redis(private_redis.url)
    async with market(ledger) as mm:
        quote_at_the_market_maker(mm)
        u = ledger.user("down")
        await ledger.deposit(u, 100_000 * DOLLAR)
        source = RedisQuotes(quotes_redis, max_age=0)
        try:
            async with stack(ledger, private_redis.url, mm, [u], source) as st:
                first = await placed(st.http, u)
                await eventually(lambda: all_filled(ledger, [(u, first)]), what="an order filled while Redis is up")

                private_redis.stop()
                during = [await placed(st.http, u), await placed(st.http, u, type="limit", limit_price="100.05")]
                assert source.served_held >= 2  # priced by the quote this process held
                answer = await st.http.get("/v1/portfolio", headers=auth(u))  # valued too, not refused 503
                assert answer.status_code == 200, answer.text
                (holding,) = answer.json()["holdings"]
                assert holding["price"] == "100.0000" and holding["price_stale"] is False  # within its age
                assert await unpublished(ledger, u) >= 2  # their work and updates wait in the outbox
                assert (await statuses(ledger, [(u, o) for o in during]))[0][0] == "accepted"
                await eventually(lambda: "orders_unavailable" in st.sinks[u].errors,
                                 what="the user's connection told its updates are paused")

                private_redis.start()  # empty: no streams, no group, no quotes
                ids = [(u, o) for o in during]
                await eventually(lambda: all_filled(ledger, ids), what="the outage's orders executed after it",
                                 state=lambda: statuses(ledger, ids))
                async def drained() -> bool:
                    return await unpublished(ledger, u) == 0
                await eventually(drained, what="the outbox drained")
                await eventually(lambda: st.sinks[u].ready.count(True) >= 2, what="the user's channel live again")

                await publish_one_quote(private_redis.url)  # the feed publishes again
                after = await placed(st.http, u)
                await eventually(lambda: any(x.order_id == str(after) and x.status == "filled"
                                             for x in st.sinks[u].updates),
                                 what="updates of a new order on the user's channel: they resumed")
        finally:
            await quotes_redis.aclose()
        everything = [(u, first), *ids, (u, after)]
        assert set((await executions_per_order(ledger, everything)).values()) == {QTY}  # filled once each
        assert mm.engine.counters["duplicates"] == 0
        assert await ledger.check() == []


async def all_filled(ledger: ScopedLedger, ids: list[tuple[str, uuid.UUID]]) -> bool:
    return {s for s, _, _ in await statuses(ledger, ids)} == {"filled"}


@pytest.mark.ledger(max_size=20, rules=Rules(max_quote_age=2.0))
async def test_with_the_market_data_node_down_trading_and_the_portfolio_go_on_and_say_prices_are_stale(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    quotes_redis = open_redis(private_redis.url)
    async with market(ledger) as mm:
        quote_at_the_market_maker(mm)
        u = ledger.user("md")
        await ledger.deposit(u, 100_000 * DOLLAR)
        try:
            async with stack(ledger, private_redis.url, mm, [u], RedisQuotes(quotes_redis, max_age=0)) as st:
                # the market-data node's last change, just now; then it is gone: the hash stays, its mark ages
                await publish_one_quote(private_redis.url)
                r = await st.http.post("/v1/orders", json=order(symbol=STALE_SYM, qty=QTY, type="limit",
                                                                limit_price="100.05"), headers=auth(u))
                assert r.status_code == 201, r.text
                assert r.json()["quote_stale"] is False and r.json()["quote_age"] < 2.0
                fresh = uuid.UUID(r.json()["order_id"])
                await eventually(lambda: all_filled(ledger, [(u, fresh)]), what="a fill on a fresh quote")

                async def portfolio() -> dict[str, Any]:
                    answer = await st.http.get("/v1/portfolio", headers=auth(u))
                    assert answer.status_code == 200, answer.text
                    body: dict[str, Any] = answer.json()
                    return body

                async def stale() -> bool:
                    return bool((await portfolio())["prices_stale"])
                await eventually(stale, what="the portfolio saying its prices are stale once the mark is old")
                (holding,) = (await portfolio())["holdings"]
                assert holding["symbol"] == STALE_SYM and holding["qty"] == str(QTY)
                assert holding["price"] == "100.0000" and holding["price_stale"] is True  # valued, and flagged
                assert holding["price_age"] > 2.0

                market_buy = await st.http.post("/v1/orders", json=order(symbol=STALE_SYM, qty=QTY), headers=auth(u))
                assert market_buy.status_code == 422 and market_buy.json()["error"]["code"] == "quote_stale"
                r = await st.http.post("/v1/orders", json=order(symbol=STALE_SYM, qty=QTY, type="limit",
                                                                limit_price="100.05"), headers=auth(u))
                assert r.status_code == 201, r.text  # trading goes on: the limit is the client's price
                assert r.json()["quote_stale"] is True and r.json()["quote_age"] > 2.0
                late = uuid.UUID(r.json()["order_id"])
                await eventually(lambda: all_filled(ledger, [(u, late)]), what="the limit order filled")
        finally:
            await quotes_redis.aclose()
        assert set((await executions_per_order(ledger, [(u, fresh), (u, late)])).values()) == {QTY}
        assert await ledger.check() == []
