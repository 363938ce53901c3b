"""Quotes for pre-trade checks from the real Redis: the snapshot hashes, kept briefly, one read per symbol; their
age (the publisher's live mark, the time since this process read them) and quote_stale."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import httpx
import pytest
import redis.asyncio as aioredis

from ingest.messages import AddOrder, SystemEvent
from normalize import Books
from normalize.replicas.redis import RedisPublisher
from order_api.api import create_app
from order_api.model import Quote, Rules
from order_api.quotes import RedisQuotes
from tests.conftest import PrivateRedis, directory, eventually

from .conftest import ScopedLedger
from .test_api import KEY, auth, order

URL = "redis://127.0.0.1:6379/12"
pytestmark = pytest.mark.anyio  # the async tests; the plain ones run their own loop


async def hgetall_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


def test_quotes_are_read_kept_briefly_and_read_once_per_symbol() -> None:
    async def go() -> None:
        client = aioredis.from_url(URL)
        symbol = f"T{uuid.uuid4().hex[:6].upper()}"
        try:
            await client.hset(f"quote:{symbol}", mapping={"bid_price": "10.0000", "ask_price": "10.0200",
                                                          "last_price": "10.0100", "halted": "False",
                                                          "stale": "False"})
            quotes = RedisQuotes(client, max_age=0.2)
            before = await hgetall_calls(client)
            got = await asyncio.gather(*(quotes.quote(symbol) for _ in range(50)))
            # (market_open: whatever this shared database's market hash says)
            assert {dataclasses.replace(q, market_open=None, market_phase=None) for q in got if q} == \
                {Quote(bid=100_000, ask=100_200, last=100_100, halted=False, stale=False)}
            assert await hgetall_calls(client) - before == 2  # fifty orders, one read (the quote and the market)

            await client.hset(f"quote:{symbol}", "halted", "True")
            q = await quotes.quote(symbol)
            assert q is not None and not q.halted  # still within max_age

            async def halted() -> bool:
                q = await quotes.quote(symbol)
                return q is not None and q.halted
            await eventually(halted, what="the quote read again once older than max_age")

            assert await quotes.quote(f"{symbol}X") is None  # no hash: no quote
            fresh = RedisQuotes(client, max_age=0)
            before = await hgetall_calls(client)
            for _ in range(3):
                await fresh.quote(symbol)
            assert await hgetall_calls(client) - before == 6
        finally:
            await client.delete(f"quote:{symbol}")
            await client.aclose()
    asyncio.run(go())


# ---------------------------------------------------------------- staleness (a private Redis: it is stopped)

STALE_SYM = "STAL"


async def publish_one_quote(url: str) -> None:
    """What ingest does: books changed, the publisher writes the hash and its live mark."""
    books = Books()
    publisher = RedisPublisher(books, url)
    try:
        books.apply_batch([SystemEvent(0, 0, 4, "Q"), directory(1, STALE_SYM),
                           AddOrder(1, 0, 5, 1, "B", 500, STALE_SYM, 1_000_000),
                           AddOrder(1, 0, 6, 2, "S", 500, STALE_SYM, 1_000_200)])
        assert await publisher.publish_once() == 1
    finally:
        await publisher.close()


@pytest.mark.ledger(rules=Rules(max_quote_age=5.0))
async def test_a_frozen_feed_blocks_market_orders_with_quote_stale(ledger: ScopedLedger,
                                                                   private_redis: PrivateRedis) -> None:
    """The Why: when ingest died, its last quote stayed in Redis and pre-trade checks priced market orders from it
    for ever. The publisher's live mark ages with the feed: past 5 s a market order is quote_stale; a limit order
    (its price is the client's) still goes."""
    await publish_one_quote(private_redis.url)
    later = [0.0]  # seconds added to the wall clock: how long ago the feed stopped
    client = aioredis.from_url(private_redis.url)
    source = RedisQuotes(client, max_age=0, wall=lambda: time.time() + later[0])
    app = create_app(ledger, source, jwt_key=KEY, relay=False)
    u = ledger.user()
    await ledger.deposit(u, 100_000 * 10_000)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            r = await c.post("/v1/orders", json=order(symbol=STALE_SYM), headers=auth(u))
            assert r.status_code == 201, r.text
            later[0] = 6.0  # nothing published for 6 s: the feed is dead
            r = await c.post("/v1/orders", json=order(symbol=STALE_SYM), headers=auth(u))
            assert r.status_code == 422 and r.json()["error"]["code"] == "quote_stale", r.text
            r = await c.post("/v1/orders", json=order(symbol=STALE_SYM, type="limit", limit_price="100.01"),
                             headers=auth(u))
            assert r.status_code == 201, r.text
    finally:
        await client.aclose()
    assert await ledger.check() == []


@pytest.mark.ledger(rules=Rules(max_quote_age=5.0))
async def test_with_redis_down_the_last_quote_held_serves_within_its_age(ledger: ScopedLedger,
                                                                         private_redis: PrivateRedis) -> None:
    """Redis stopped: the quote this process read last still prices orders while it is younger than the limit
    (they were refused 503 before); past it, market orders are quote_stale; a symbol never read is 503."""
    await publish_one_quote(private_redis.url)
    now = [1000.0]
    client = aioredis.from_url(private_redis.url)
    source = RedisQuotes(client, max_age=0, clock=lambda: now[0])
    app = create_app(ledger, source, jwt_key=KEY, relay=False)
    u = ledger.user()
    await ledger.deposit(u, 100_000 * 10_000)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            assert (await c.post("/v1/orders", json=order(symbol=STALE_SYM), headers=auth(u))).status_code == 201
            private_redis.stop()
            now[0] += 2.0
            r = await c.post("/v1/orders", json=order(symbol=STALE_SYM), headers=auth(u))
            assert r.status_code == 201, r.text
            assert source.served_held == 1
            now[0] += 4.0  # 6 s since the last read
            r = await c.post("/v1/orders", json=order(symbol=STALE_SYM), headers=auth(u))
            assert r.status_code == 422 and r.json()["error"]["code"] == "quote_stale", r.text
            r = await c.post("/v1/orders", json=order(symbol="AAPL"), headers=auth(u))
            assert r.status_code == 503 and r.json()["error"]["code"] == "quotes_unavailable", r.text
    finally:
        await client.aclose()
    assert await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 2
    assert await ledger.check() == []
