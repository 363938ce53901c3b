"""Migration 010 converts books kept in whole shares to millionths exactly: positions, sell holds, orders,
executions and the journal's share lines, and leaves money alone; then the ledger goes on trading on them."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from order_api.db import Ledger
from order_api.migrate import migration_files
from order_api.model import OrderRequest
from vocab.quantities import QTY_SCALE as S

from .conftest import _PREFIX, QUOTES, SERVER, drop_databases

pytestmark = pytest.mark.anyio


async def test_whole_shares_become_millionths_and_trading_goes_on() -> None:
    dsn = f"{SERVER}/{_PREFIX}_mig010"
    await drop_databases([dsn])
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    await admin.execute(f'CREATE DATABASE "{dsn.rsplit("/", 1)[1]}"')
    await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, "
                           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for f in migration_files():
            if f.stem >= "010":
                break
            await conn.execute(f.read_text())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", f.stem)
        # books as the ledger kept them before: 10 shares bought at $190, 4 of them held by an open sell
        u, buy, sell, txn = "old", uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await conn.execute("INSERT INTO accounts (user_id, cash) VALUES ($1, 100000000)", u)
        await conn.execute("INSERT INTO positions (user_id, symbol, qty, qty_held, cost) VALUES ($1, 'AAPL', 6, 4, "
                           "19000000)", u)
        await conn.execute(
            "INSERT INTO orders (order_id, user_id, idempotency_key, fingerprint, symbol, side, type, tif, qty, "
            "reserve_price, held, status, filled_qty, filled_notional) VALUES "
            "($1, $3, 'b', 'f', 'AAPL', 'buy', 'market', 'day', 10, 1900000, 0, 'routed', 0, 0), "
            "($2, $3, 's', 'f', 'AAPL', 'sell', 'market', 'day', 4, 0, 4, 'routed', 0, 0)", buy, sell, u)
        await conn.execute("INSERT INTO executions (order_id, exec_id, qty, price, symbol, side) "
                           "VALUES ($1, 'E1', 10, 1900000, 'AAPL', 'buy')", buy)
        await conn.execute("UPDATE orders SET status = 'filled', filled_qty = 10, filled_notional = 19000000 "
                           "WHERE order_id = $1", buy)
        await conn.execute(
            "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id, exec_id) VALUES "
            "($1, 'fill', $2, 'shares', 'AAPL', 10, $3, 'E1'), ($1, 'fill', '', 'market', 'AAPL', -10, $3, 'E1'), "
            "($1, 'fill', $2, 'cash', 'USD', -19000000, $3, 'E1'), "
            "($1, 'fill', '', 'market', 'USD', 19000000, $3, 'E1')", txn, u, buy)
        await conn.execute(
            "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id) VALUES "
            "($1, 'hold', $2, 'shares', 'AAPL', -4, $3), ($1, 'hold', $2, 'shares_held', 'AAPL', 4, $3), "
            "($4, 'deposit', $2, 'cash', 'USD', 119000000, NULL), "
            "($4, 'deposit', '', 'external', 'USD', -119000000, NULL)", uuid.uuid4(), u, sell, uuid.uuid4())
        (ten,) = [f for f in migration_files() if f.stem.startswith("010")]
        async with conn.transaction():
            await conn.execute(ten.read_text())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", ten.stem)
        assert tuple(await conn.fetchrow("SELECT qty, qty_held, cost FROM positions")) == (6 * S, 4 * S, 19000000)
        assert [tuple(r) for r in await conn.fetch(
            "SELECT side, qty, filled_qty, held, filled_notional FROM orders ORDER BY side")] == [
            ("buy", 10 * S, 10 * S, 0, 19000000), ("sell", 4 * S, 0, 4 * S, 0)]
        assert await conn.fetchval("SELECT qty FROM executions") == 10 * S
        assert sorted(r[0] for r in await conn.fetch("SELECT amount FROM journal WHERE asset = 'AAPL'")) == [
            -10 * S, -4 * S, 4 * S, 10 * S]
        assert sorted(r[0] for r in await conn.fetch("SELECT amount FROM journal WHERE asset = 'USD'")) == [
            -119000000, -19000000, 19000000, 119000000]
        assert await conn.fetchval("SELECT cash FROM accounts") == 100000000
        for later in [f for f in migration_files() if f.stem > ten.stem]:  # what the code below needs too
            async with conn.transaction():
                await conn.execute(later.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", later.stem)
    finally:
        await conn.close()
    ledger = await Ledger.connect([dsn], max_size=2)
    try:
        filled = await ledger.fill(u, sell, "S1", 4 * S, 1_900_000)
        assert filled is not None and filled.order["status"] == "filled"
        more, _ = await ledger.place(u, OrderRequest("AAPL", "sell", S // 2, "market", None, "day", "k"),
                                     QUOTES["AAPL"])
        assert more["held"] == S // 2
        assert await ledger.check() == []
    finally:
        await ledger.close()
        await drop_databases([dsn])
