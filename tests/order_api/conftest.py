"""What the order_api tests share: the test shards on the real PostgreSQL, a ``ledger`` per test with its own users,
and a private Redis for tests that stop and restart it.

- ``ledger`` (fixture, async tests): a :class:`ScopedLedger` on the test shards, closed after the test. Users
  come from ``ledger.user(name)``; ``await ledger.check()`` checks every invariant for those users only, so a
  test is judged by its own work while other tests' orders sit in the same shards. Pool size, fee and rules come
  from ``@pytest.mark.ledger(max_size=20, fee_bps=1, rules=...)``.
- ``private_redis`` (fixture, from tests/conftest.py): a private redis-server, stopped and removed after the test.

The shards are named by ``TICKFAN_TEST_DB`` (two checkouts can run side by side on one server) and recreated once
per test session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from order_api.db import Ledger, migrate
from order_api.model import Quote
from order_api.quotes import StaticQuotes

SERVER = "postgresql://postgres@127.0.0.1:5432"
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


def user(name: str = "u") -> str:
    """A user id unique to this test (tests share the test shards)."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


async def drop_databases(dsns: Sequence[str]) -> None:
    """Drop the databases these DSNs name (connections to them are ended), so a run starts from nothing."""
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        for dsn in dsns:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


async def fresh_shards() -> None:
    """Drop and recreate the test databases (first call of the session only), then migrate them."""
    global _ready
    if _ready:
        return
    await drop_databases(TEST_DSNS)
    await migrate(TEST_DSNS)
    _ready = True


class ScopedLedger(Ledger):
    """A ledger that knows which users its test made: ``check()`` with no argument checks only them."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.users: list[str] = []

    def user(self, name: str = "u") -> str:
        u = user(name)
        self.users.append(u)
        return u

    async def check(self, users: Sequence[str] | None = None) -> list[str]:
        return await super().check(self.users if users is None else users)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ledger(max_size=10, fee_bps=0, rules=None): how the `ledger` fixture opens")


@pytest.fixture
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[ScopedLedger]:
    marker = request.node.get_closest_marker("ledger")
    kw: dict[str, Any] = {"max_size": 10, **(marker.kwargs if marker else {})}
    await fresh_shards()
    book = await ScopedLedger.connect(TEST_DSNS, **kw)
    assert isinstance(book, ScopedLedger)
    try:
        yield book
    finally:
        await book.close()
