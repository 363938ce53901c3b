"""Quotes for pre-trade checks from the real Redis: the snapshot hashes, kept briefly, one read per symbol."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from order_api.model import Quote
from order_api.quotes import RedisQuotes
from tests.conftest import eventually

URL = "redis://127.0.0.1:6379/12"


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
            assert set(got) == {Quote(bid=100_000, ask=100_200, last=100_100, halted=False, stale=False)}
            assert await hgetall_calls(client) - before == 1  # fifty orders, one read

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
            assert await hgetall_calls(client) - before == 3
        finally:
            await client.delete(f"quote:{symbol}")
            await client.aclose()
    asyncio.run(go())
