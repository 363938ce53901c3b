"""Test shards on the real PostgreSQL server: two databases, recreated once per test session."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg

from order_api.db import Ledger, migrate
from order_api.model import Quote, Rules
from order_api.quotes import StaticQuotes

SERVER = "postgresql://postgres@127.0.0.1:5432"
# TICKFAN_TEST_DB names the test shards, so two checkouts can run their suites side by side on one server.
_PREFIX = os.environ.get("TICKFAN_TEST_DB", "tickfan_test")
TEST_DSNS = (f"{SERVER}/{_PREFIX}_0", f"{SERVER}/{_PREFIX}_1")
_ready = False

QUOTES = {
    "AAPL": Quote(bid=1_899_900, ask=1_900_100, last=1_900_000, halted=False, stale=False),
    "MSFT": Quote(bid=4_100_000, ask=4_100_400, last=4_100_200, halted=False, stale=False),
    "HALT": Quote(bid=100_000, ask=101_000, last=100_500, halted=True, stale=False),
    "PENY": Quote(bid=4_321, ask=4_333, last=4_327, halted=False, stale=False),
}


def quotes() -> StaticQuotes:
    return StaticQuotes(QUOTES)


async def fresh_shards() -> None:
    """Drop and recreate the test databases (first call of the session only), then migrate them."""
    global _ready
    if _ready:
        return
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        for dsn in TEST_DSNS:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()
    await migrate(TEST_DSNS)
    _ready = True


async def open_ledger(*, rules: Rules | None = None, fee_bps: int = 0, max_size: int = 10) -> Ledger:
    await fresh_shards()
    return await Ledger.connect(TEST_DSNS, rules=rules, fee_bps=fee_bps, max_size=max_size)


def user(name: str = "u") -> str:
    """A user id unique to this test (tests share the test shards)."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]
