"""A faulty counterparty's fills never reach the books: the ledger refuses (in Python for a clear reason, and
again in the database, the last line) a fill beyond the order's limit, on the wrong symbol or side, beyond its
quantity, or under a reused ExecID with other terms; ``Ledger.check()`` reports a breach that got in anyway."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from order_api.model import FillRefused
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, ScopedLedger
from .test_ledger import DOLLAR, buy, sell

pytestmark = pytest.mark.anyio

LIMIT = 1_900_000  # $190


async def holder_of(ledger: ScopedLedger, shares: int) -> str:
    u = ledger.user("holder")
    await ledger.deposit(u, 100_000 * DOLLAR)
    o, _ = await ledger.place(u, buy(shares), QUOTES["AAPL"])
    await ledger.fill(u, o["order_id"], "B1", shares * S, 1_900_100)
    return u


async def unchanged(ledger: ScopedLedger, u: str, oid: uuid.UUID) -> tuple[object, ...]:
    pool = ledger.pool_for(u)
    return (await pool.fetchval("SELECT count(*) FROM journal WHERE user_id = $1", u),
            await pool.fetchval("SELECT count(*) FROM executions WHERE order_id = $1", oid),
            dict(await ledger.account(u) or {}), [dict(r) for r in await ledger.positions(u)],
            (await ledger.get_order(u, oid) or {}).get("filled_qty"))


async def refused(ledger: ScopedLedger, u: str, oid: uuid.UUID, exec_id: str, qty: int, price: int,
                  symbol: str | None = None, side: str | None = None) -> str:
    before = await unchanged(ledger, u, oid)
    with pytest.raises(FillRefused) as e:
        await ledger.fill(u, oid, exec_id, qty * S, price, symbol=symbol, side=side)
    assert await unchanged(ledger, u, oid) == before
    return e.value.code


async def test_a_sell_limit_at_190_filled_at_a_hundredth_of_a_cent_is_refused(ledger: ScopedLedger) -> None:
    # Why: this fill was accepted and Ledger.check() still passed.
    u = await holder_of(ledger, 10)
    s, _ = await ledger.place(u, sell(10, limit=LIMIT), QUOTES["AAPL"])
    await ledger.mark_routed(u, s["order_id"])
    assert await refused(ledger, u, s["order_id"], "S1", 10, 1, symbol="AAPL", side="sell") == "fill_beyond_limit"
    # price improvement is accepted: a sell above its limit
    f = await ledger.fill(u, s["order_id"], "S2", 10 * S, LIMIT + 100, symbol="AAPL", side="sell")
    assert f is not None and f.order["status"] == "filled"
    assert await ledger.check() == []


async def test_a_buy_above_its_limit_is_refused_below_it_accepted(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    o, _ = await ledger.place(u, buy(4, limit=LIMIT), QUOTES["AAPL"])
    assert await refused(ledger, u, o["order_id"], "X1", 1, LIMIT + 1) == "fill_beyond_limit"
    f = await ledger.fill(u, o["order_id"], "X2", 4 * S, LIMIT - 500, symbol="AAPL", side="buy")
    assert f is not None and f.order["status"] == "filled"
    assert await ledger.check() == []


async def test_the_wrong_symbol_or_side_and_an_overfill_are_refused(ledger: ScopedLedger) -> None:
    u = await holder_of(ledger, 5)
    s, _ = await ledger.place(u, sell(5, limit=LIMIT), QUOTES["AAPL"])
    oid = s["order_id"]
    assert await refused(ledger, u, oid, "W1", 5, LIMIT, symbol="MSFT", side="sell") == "fill_wrong_instrument"
    assert await refused(ledger, u, oid, "W2", 5, LIMIT, symbol="AAPL", side="buy") == "fill_wrong_instrument"
    assert await refused(ledger, u, oid, "W3", 6, LIMIT, symbol="AAPL", side="sell") == "fill_overfills"
    assert await ledger.check() == []


async def test_an_exec_id_reused_with_other_terms_is_refused_the_same_terms_ignored(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    o, _ = await ledger.place(u, buy(10, limit=LIMIT), QUOTES["AAPL"])
    oid = o["order_id"]
    assert await ledger.fill(u, oid, "E1", 3 * S, LIMIT, symbol="AAPL", side="buy") is not None
    assert await ledger.fill(u, oid, "E1", 3 * S, LIMIT, symbol="AAPL", side="buy") is None  # a re-sent report
    # before: any report under a known ExecID was silently dropped as "a duplicate", whatever it said
    assert await refused(ledger, u, oid, "E1", 4, LIMIT) == "fill_exec_id_reused"
    assert await refused(ledger, u, oid, "E1", 3, LIMIT - 1) == "fill_exec_id_reused"
    assert await ledger.check() == []


async def test_the_database_refuses_what_python_would_have(ledger: ScopedLedger) -> None:
    # The last line: code that skips Ledger.fill's checks (or a bug in them) still cannot record the fill.
    u = await holder_of(ledger, 10)
    s, _ = await ledger.place(u, sell(10, limit=LIMIT), QUOTES["AAPL"])
    pool = ledger.pool_for(u)
    for args, code in [((10 * S, 1, "AAPL", "sell"), "fill_beyond_limit"), ((10 * S, LIMIT, "MSFT", "sell"),
                       "fill_wrong_instrument"), ((10 * S + 1, LIMIT, "AAPL", "sell"), "fill_overfills"),
                       ((10 * S, LIMIT, None, None), "fill_without_terms")]:
        qty, price, sym, side = args
        with pytest.raises(asyncpg.RaiseError, match=code):
            await pool.execute("INSERT INTO executions (order_id, exec_id, qty, price, symbol, side) "
                               "VALUES ($1, 'raw', $2, $3, $4, $5)", s["order_id"], qty, price, sym, side)
    assert await ledger.check() == []


async def test_check_reports_a_limit_breach_already_in_the_books(ledger: ScopedLedger) -> None:
    # As the old code wrote it: a sell limit at $190 filled at $0.0001. Written here past the database's check
    # (triggers off for this one transaction), then found by check() twice: in the executions and in the journal.
    u = await holder_of(ledger, 10)
    s, _ = await ledger.place(u, sell(10, limit=LIMIT), QUOTES["AAPL"])
    assert await ledger.fill(u, s["order_id"], "S1", 10 * S, LIMIT, symbol="AAPL", side="sell") is not None
    assert await ledger.check() == []
    pool = ledger.pool_for(u)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE executions SET price = 1, side = 'buy' WHERE order_id = $1", s["order_id"])
        # the money: the market takes back all but $0.001 of the proceeds (a balanced journal transaction)
        back, txn = 10 * LIMIT - 10, uuid.uuid4()
        await conn.executemany(
            "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id) "
            "VALUES ($1, 'fill', $2, $3, 'USD', $4, $5)",
            [(txn, u, "cash", -back, s["order_id"]), (txn, "", "market", back, s["order_id"])])
    problems = "\n".join(await ledger.check())
    assert "fill beyond its order's limit price" in problems
    assert "fill money beyond its order's limit price" in problems
    assert "execution for another symbol or side than its order" in problems
