"""``tickfan backup`` / ``tickfan restore`` as real commands against the real PostgreSQL: a ledger with deposits,
orders (open, filled, cancelled) is backed up, restored into fresh databases, and there every order, balance,
position and journal entry is what it was, and ``Ledger.check()`` holds. A restore into a database that already
holds tables, or from a changed archive, is refused with nothing changed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from order_api.db import Ledger, migrate
from order_api.model import OrderRequest, Quote, shard_of
from vocab.quantities import QTY_SCALE as S

SERVER = "postgresql://postgres@127.0.0.1:5432"
PREFIX = os.environ.get("TICKFAN_TEST_DB", "tickfan_test")
SOURCE = [f"{SERVER}/{PREFIX}_bk_src_{k}" for k in range(2)]
TARGET = [f"{SERVER}/{PREFIX}_bk_dst_{k}" for k in range(2)]
AAPL = Quote(bid=1_899_900, ask=1_900_100, last=1_900_000, halted=False, stale=False)
DOLLAR = 10_000
TABLES = {"accounts": "user_id", "positions": "user_id, symbol", "orders": "order_id",
          "journal": "id", "executions": "exec_id", "outbox": "id"}


async def drop(dsns: Sequence[str]) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        for dsn in dsns:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def databases() -> Iterator[None]:
    asyncio.run(drop(SOURCE + TARGET))
    yield
    asyncio.run(drop(SOURCE + TARGET))


def tickfan(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tickfan", *argv], capture_output=True, text=True, timeout=100,
                          env={**os.environ, "TICKFAN_DATABASE_URLS": ""})


def db_args(dsns: Sequence[str]) -> list[str]:
    return [a for d in dsns for a in ("--db", d)]


async def contents(dsns: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every row of the ledger's tables, shard by shard, in a stable order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for shard, dsn in enumerate(dsns):
        conn = await asyncpg.connect(dsn)
        try:
            for table, key in TABLES.items():
                rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")
                out[f"{shard}.{table}"] = [dict(r) for r in rows]
        finally:
            await conn.close()
    return out


async def trade(dsns: Sequence[str]) -> list[str]:
    """Users with deposits and orders in every state the backup must carry; returns the users."""
    await migrate(dsns)
    ledger = await Ledger.connect(list(dsns), max_size=4)
    run = uuid.uuid4().hex[:6]
    # three users on each shard, picked by the ledger's own routing (random names land on one shard 1 run in 32)
    candidates = [f"bk-{k}-{run}" for k in range(64)]
    users = [u for u in candidates if shard_of(u, 2) == 0][:3] + [u for u in candidates if shard_of(u, 2) == 1][:3]
    try:
        for user in users:
            await ledger.deposit(user, 50_000 * DOLLAR)
            filled, _ = await ledger.place(user, OrderRequest("AAPL", "buy", 10 * S, "market", None, "day",
                                                              uuid.uuid4().hex), AAPL)
            await ledger.mark_sending(user, filled["order_id"])
            await ledger.fill(user, filled["order_id"], f"E-{uuid.uuid4().hex[:8]}", 10, 1_900_000)
            await ledger.place(user, OrderRequest("AAPL", "buy", 5, "limit", 1_800_000, "day", uuid.uuid4().hex),
                               AAPL)  # stays open, its cash held
            gone, _ = await ledger.place(user, OrderRequest("AAPL", "sell", 3, "limit", 1_950_000, "day",
                                                            uuid.uuid4().hex), AAPL)
            await ledger.cancel(user, gone["order_id"])
        assert await ledger.check() == []
    finally:
        await ledger.close()
    return users


def test_a_restored_backup_holds_every_order_and_balance_and_the_ledger_checks(
        databases: None, tmp_path: Path) -> None:
    users = asyncio.run(trade(SOURCE))
    before = asyncio.run(contents(SOURCE))
    assert len(before["0.accounts"]) + len(before["1.accounts"]) == len(users)
    assert before["0.orders"] and before["1.orders"]  # both shards carry orders

    out = tmp_path / "backup"
    made = tickfan("backup", str(out), *db_args(SOURCE))
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-0.dump", "shard-1.dump"]

    restored = tickfan("restore", str(out), *db_args(TARGET))
    assert restored.returncode == 0, restored.stderr
    assert "ledger check: clean" in restored.stdout
    assert asyncio.run(contents(TARGET)) == before  # every order, balance, position, journal entry

    async def check() -> list[str]:
        ledger = await Ledger.connect(TARGET, max_size=2)
        try:
            for user in users:
                account = await ledger.account(user)
                assert account is not None and int(account["cash_held"]) > 0  # the open order's hold
            await ledger.deposit(users[0], DOLLAR)  # the restored ledger takes new entries (sequences restored)
            return await ledger.check()
        finally:
            await ledger.close()
    assert asyncio.run(check()) == []
    before = asyncio.run(contents(TARGET))

    again = tickfan("restore", str(out), *db_args(TARGET))  # not a fresh database: refused, nothing changed
    assert again.returncode == 1 and "already holds" in again.stderr
    assert asyncio.run(contents(TARGET)) == before


def test_a_changed_archive_or_a_wrong_shard_count_is_refused(databases: None, tmp_path: Path) -> None:
    asyncio.run(trade(SOURCE))
    out = tmp_path / "backup"
    assert tickfan("backup", str(out), *db_args(SOURCE)).returncode == 0
    refused = tickfan("backup", str(out), *db_args(SOURCE))
    assert refused.returncode == 1 and "not empty" in refused.stderr
    wrong = tickfan("restore", str(out), "--db", TARGET[0])
    assert wrong.returncode == 1 and "2 shard(s) but 1 target" in wrong.stderr
    with (out / "shard-1.dump").open("ab") as f:
        f.write(b"tampered")
    changed = tickfan("restore", str(out), *db_args(TARGET))
    assert changed.returncode == 1 and "SHA-256" in changed.stderr
