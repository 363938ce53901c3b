"""The ledger's transactions against the real PostgreSQL: holds, fills, cancels, idempotency, invariants."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from order_api.db import Ledger
from order_api.model import ApiError, OrderRequest, Status
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, ScopedLedger

pytestmark = pytest.mark.anyio

DOLLAR = 10_000


def buy(qty: int, key: str | None = None, *, symbol: str = "AAPL", limit: int | None = None,
        tif: str = "day") -> OrderRequest:
    return OrderRequest(symbol, "buy", qty * S, "limit" if limit else "market", limit, tif, key or uuid.uuid4().hex)


def sell(qty: int, key: str | None = None, *, symbol: str = "AAPL", limit: int | None = None) -> OrderRequest:
    return OrderRequest(symbol, "sell", qty * S, "limit" if limit else "market", limit, "day", key or uuid.uuid4().hex)


async def counts(ledger: ScopedLedger, who: str) -> tuple[int, int, int]:
    pool = ledger.pool_for(who)
    return (await pool.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", who),
            await pool.fetchval("SELECT count(*) FROM journal WHERE user_id = $1", who),
            await pool.fetchval("SELECT count(*) FROM outbox WHERE user_id = $1", who))


async def test_deposit_is_journalled_and_balanced(ledger: ScopedLedger) -> None:
    u = ledger.user()
    account = await ledger.deposit(u, 100_000 * DOLLAR)
    assert account["cash"] == 100_000 * DOLLAR and account["cash_held"] == 0
    rows = await ledger.journal(u)
    assert [(r["account"], r["amount"]) for r in rows] == [("cash", 100_000 * DOLLAR)]
    with pytest.raises(ApiError) as e:
        await ledger.deposit(u, 0)
    assert e.value.code == "invalid_amount"
    assert await ledger.check() == []


async def test_buy_holds_at_the_collar_then_fills_and_returns_the_difference(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    order, created = await ledger.place(u, buy(10), QUOTES["AAPL"])
    assert created and order["status"] == "accepted"
    # market buys hold (and are sent at) the ask plus the 10% collar
    assert order["reserve_price"] == 1_900_100 + 190_010
    assert order["held"] == 10 * order["reserve_price"]
    acct = await ledger.account(u)
    assert acct is not None and acct["cash_held"] == order["held"]
    await ledger.mark_routed(u, order["order_id"])
    f1 = await ledger.fill(u, order["order_id"], "E1", 4 * S, 1_900_100)
    assert f1 is not None and f1.order["status"] == "partially_filled" and f1.order["filled_qty"] == 4 * S
    again = await ledger.fill(u, order["order_id"], "E1", 4 * S, 1_900_100)
    assert again is None  # the same ExecID twice is applied once
    f2 = await ledger.fill(u, order["order_id"], "E2", 6 * S, 1_900_000)
    assert f2 is not None and f2.order["status"] == "filled" and f2.order["held"] == 0
    acct = await ledger.account(u)
    assert acct is not None
    assert acct["cash"] == 10_000 * DOLLAR - (4 * 1_900_100 + 6 * 1_900_000) and acct["cash_held"] == 0
    (pos,) = await ledger.positions(u)
    assert pos["qty"] == 10 * S and pos["cost"] == 4 * 1_900_100 + 6 * 1_900_000
    assert await ledger.check() == []


@pytest.mark.ledger(fee_bps=1)
async def test_sell_holds_shares_and_fills_into_cash_with_fee(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    o, _ = await ledger.place(u, buy(5), QUOTES["AAPL"])
    await ledger.fill(u, o["order_id"], "B1", 5 * S, 1_900_000)
    s, _ = await ledger.place(u, sell(3), QUOTES["AAPL"])
    assert s["held"] == 3 * S
    (pos,) = await ledger.positions(u)
    assert pos["qty"] == 2 * S and pos["qty_held"] == 3 * S
    f = await ledger.fill(u, s["order_id"], "S1", 3 * S, 1_899_900)
    assert f is not None and f.order["status"] == "filled"
    acct = await ledger.account(u)
    fee = 600  # 1 bp of $569.97 is 5.7 cents, rounded up to 6 cents
    assert acct is not None and acct["cash"] == 10_000 * DOLLAR - 5 * 1_900_000 + 3 * 1_899_900 - fee
    (pos,) = await ledger.positions(u)
    assert pos["qty"] == 2 * S and pos["qty_held"] == 0 and pos["cost"] == 2 * 1_900_000
    assert await ledger.check() == []


async def test_refusals_write_nothing(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100 * DOLLAR)
    before = await counts(ledger, u)
    cases = [
        (buy(10), QUOTES["AAPL"], "insufficient_funds"),
        (sell(1), QUOTES["AAPL"], "insufficient_shares"),
        (buy(1, symbol="ZZZZ"), None, "unknown_symbol"),
        (buy(1, symbol="HALT"), QUOTES["HALT"], "symbol_halted"),
        (buy(1, limit=1_000_000), QUOTES["AAPL"], "limit_off_collar"),
        (buy(1, limit=3_000_000), QUOTES["AAPL"], "limit_off_collar"),
    ]
    for req, quote, code in cases:
        with pytest.raises(ApiError) as e:
            await ledger.place(u, req, quote)
        assert e.value.code == code
    assert await counts(ledger, u) == before
    nobody = ledger.user("nobody")
    with pytest.raises(ApiError) as e:
        await ledger.place(nobody, buy(1), QUOTES["AAPL"])
    assert e.value.code == "insufficient_funds"
    assert await ledger.check() == []


async def test_idempotency_same_key_same_order_different_body_conflict(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    first, created = await ledger.place(u, buy(2, "k1"), QUOTES["AAPL"])
    again, created2 = await ledger.place(u, buy(2, "k1"), QUOTES["AAPL"])
    assert created and not created2 and again["order_id"] == first["order_id"]
    # a retry after the price moved off the collar still returns the first order
    again2, _ = await ledger.place(u, buy(2, "k1"), QUOTES["MSFT"])
    assert again2["order_id"] == first["order_id"]
    with pytest.raises(ApiError) as e:
        await ledger.place(u, buy(3, "k1"), QUOTES["AAPL"])
    assert e.value.status == 409 and e.value.code == "idempotency_conflict"
    assert (await counts(ledger, u))[0] == 1


@pytest.mark.ledger(max_size=20)
async def test_concurrent_retries_with_one_key_make_one_order(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    results = await asyncio.gather(*(ledger.place(u, buy(1, "same"), QUOTES["AAPL"]) for _ in range(40)))
    assert len({r[0]["order_id"] for r in results}) == 1
    assert sum(created for _, created in results) == 1
    assert (await counts(ledger, u))[0] == 1
    assert await ledger.check() == []


async def test_cancel_paths(ledger: ScopedLedger) -> None:
    u, other = ledger.user(), ledger.user("other")
    await ledger.deposit(u, 10_000 * DOLLAR)
    o, _ = await ledger.place(u, buy(1), QUOTES["AAPL"])
    done = await ledger.cancel(u, o["order_id"])  # not routed yet: cancelled at once
    assert done["status"] == "cancelled" and done["held"] == 0
    with pytest.raises(ApiError) as e:
        await ledger.cancel(u, o["order_id"])
    assert e.value.code == "order_not_open"
    o2, _ = await ledger.place(u, buy(1), QUOTES["AAPL"])
    await ledger.mark_routed(u, o2["order_id"])
    with pytest.raises(ApiError) as e:
        await ledger.cancel(other, o2["order_id"])
    assert e.value.status == 404 and e.value.code == "order_not_found"
    asked = await ledger.cancel(u, o2["order_id"])
    assert asked["status"] == "routed" and asked["cancel_requested"]
    pool = ledger.pool_for(u)
    actions = await pool.fetch("SELECT payload FROM outbox WHERE user_id = $1 AND topic = 'execution' "
                               "ORDER BY id", u)
    assert [b'"cancel"' in bytes(r["payload"]) for r in actions] == [False, False, True]
    closed = await ledger.cancelled(u, o2["order_id"], "cancelled by the user")
    assert closed is not None and closed["status"] == Status.CANCELLED
    acct = await ledger.account(u)
    assert acct is not None and acct["cash"] == 10_000 * DOLLAR and acct["cash_held"] == 0
    assert await ledger.check() == []


async def test_fill_anomalies_are_refused_not_applied(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    o, _ = await ledger.place(u, buy(2, limit=1_900_000), QUOTES["AAPL"])
    with pytest.raises(ValueError):
        await ledger.fill(u, o["order_id"], "X1", 3 * S, 1_900_000)  # more than ordered
    with pytest.raises(ValueError):
        await ledger.fill(u, o["order_id"], "X2", 1 * S, 1_900_001)  # above the limit held for
    await ledger.fill(u, o["order_id"], "X3", 2 * S, 1_899_000)
    with pytest.raises(ValueError):
        await ledger.fill(u, o["order_id"], "X4", 1 * S, 1_899_000)  # after it is filled
    assert await ledger.check() == []


@pytest.mark.ledger(max_size=20)
async def test_many_users_many_concurrent_orders_keep_every_invariant(ledger: ScopedLedger) -> None:
    users = [ledger.user(f"c{i}") for i in range(20)]
    for u in users:
        await ledger.deposit(u, 2_000 * DOLLAR)
    shards = {ledger.pools.index(ledger.pool_for(u)) for u in users}
    assert shards == {0, 1}

    async def trader(u: str, n: int) -> list[str]:
        outcomes = []
        for i in range(n):
            key = f"{u}-{i}"
            try:
                # each order is sent twice concurrently, as a client retrying on a timeout would
                a, b = await asyncio.gather(ledger.place(u, buy(1, key), QUOTES["AAPL"]),
                                            ledger.place(u, buy(1, key), QUOTES["AAPL"]))
                assert a[0]["order_id"] == b[0]["order_id"]
                outcomes.append("placed")
                if i % 3 == 0:
                    await ledger.fill(u, a[0]["order_id"], f"F{i}", 1 * S, 1_900_100)
                elif i % 3 == 1:
                    await ledger.cancel(u, a[0]["order_id"])
            except ApiError as e:
                outcomes.append(e.code)
        return outcomes

    results = await asyncio.gather(*(trader(u, 15) for u in users))
    for outcomes in results:
        # $2,000 buys about nine holds of $209: the rest are refused, never overdrawn
        assert "placed" in outcomes and set(outcomes) <= {"placed", "insufficient_funds"}
    for u, outcomes in zip(users, results, strict=True):
        n = await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u)
        assert n == outcomes.count("placed")
    assert await ledger.check() == []


async def test_check_is_scoped_to_the_users_given(ledger: ScopedLedger) -> None:
    mine, theirs = ledger.user("mine"), ledger.user("theirs")
    for u in (mine, theirs):
        await ledger.deposit(u, 1_000 * DOLLAR)
    pool = ledger.pool_for(theirs)
    # break one invariant of one user by hand (cash no longer equals its journal), then put it back
    await pool.execute("UPDATE accounts SET cash = cash + 1 WHERE user_id = $1", theirs)
    try:
        assert await ledger.check([mine]) == []
        problems = await ledger.check([theirs])
        assert len(problems) == 1 and "cash differs from its journal" in problems[0] and theirs in problems[0]
        assert await ledger.check() == problems  # the test's own users: both
        assert any(theirs in p for p in await Ledger.check(ledger))  # no argument: everyone
    finally:
        await pool.execute("UPDATE accounts SET cash = cash - 1 WHERE user_id = $1", theirs)
    assert await ledger.check() == []
