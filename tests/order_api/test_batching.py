"""Placements in batches (order_api/batching.py, place_orders of migration 004) against the real PostgreSQL:
a batch answers every order as placing it alone would, and one bad order never sinks the others."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from order_api.batching import Placement
from order_api.model import ApiError, OrderRequest
from order_api.model import shard_of as model_shard_of
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, ScopedLedger

pytestmark = pytest.mark.anyio

DOLLAR = 10_000


def buy(qty: int, key: str | None = None, symbol: str = "AAPL") -> OrderRequest:
    return OrderRequest(symbol, "buy", qty * S, "market", None, "day", key or uuid.uuid4().hex)


def sell(qty: int, key: str | None = None) -> OrderRequest:
    return OrderRequest("AAPL", "sell", qty * S, "market", None, "day", key or uuid.uuid4().hex)


async def outcome(ledger: ScopedLedger, u: str, req: OrderRequest) -> tuple[str, uuid.UUID | None, bool]:
    try:
        order, created = await ledger.place(u, req, QUOTES[req.symbol])
    except ApiError as e:
        return e.code, None, False
    return "placed", order["order_id"], created


@pytest.mark.ledger(max_size=4)
async def test_one_batch_answers_each_order_as_alone(ledger: ScopedLedger) -> None:
    rich, poor, seller = ledger.user("rich"), ledger.user("poor"), ledger.user("seller")
    for u in (rich, seller):
        await ledger.deposit(u, 100_000 * DOLLAR)
    await ledger.deposit(poor, 300 * DOLLAR)  # one AAPL hold ($209) fits, a second does not
    twice, clash = uuid.uuid4().hex, uuid.uuid4().hex
    requests = [
        (rich, buy(5)), (poor, buy(1)), (poor, buy(1)),
        (rich, buy(2, twice)), (rich, buy(2, twice)),  # a retry within the same batch
        (rich, buy(3, clash)), (rich, buy(4, clash)),  # the same key with another body
        (seller, sell(1)),  # no shares
        (ledger.user("nobody"), buy(1)),  # no account at all
        *((rich, buy(1)) for _ in range(20)),
    ]
    before = [(b.batches, b.orders) for b in ledger._batchers]
    # all submitted in one turn of the loop: each shard's first call goes alone, the rest batch up
    results = await asyncio.gather(*(outcome(ledger, u, r) for u, r in requests))
    codes = [r[0] for r in results]
    assert codes[:9] == ["placed", "placed", "insufficient_funds", "placed", "placed", "placed",
                         "idempotency_conflict", "insufficient_shares", "insufficient_funds"]
    assert codes[9:] == ["placed"] * 20
    assert results[3][1] == results[4][1] and results[3][2] and not results[4][2]
    calls = sum(b.batches - n for b, (n, _) in zip(ledger._batchers, before, strict=True))
    assert calls < len(requests), "nothing was batched"
    n = await ledger.pool_for(rich).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", rich)
    assert n == 1 + 1 + 1 + 20
    assert await ledger.check() == []


@pytest.mark.ledger(max_size=4)
async def test_a_batch_that_fails_as_a_whole_is_placed_order_by_order(ledger: ScopedLedger) -> None:
    users = [ledger.user("b") for _ in range(6)]
    for u in users:
        await ledger.deposit(u, 10_000 * DOLLAR)
    shard = model_shard_of(users[0], len(ledger.pools))
    same = [u for u in users if model_shard_of(u, len(ledger.pools)) == shard]
    batcher = ledger._batchers[shard]

    def placement(u: str, held: int) -> Placement:
        return Placement(uuid.uuid4(), u, uuid.uuid4().hex, "fp", "AAPL", "buy", "market", "day", 1, None,
                         100, held, ("cash", "cash_held"), ("USD", "USD"), (-max(held, 1), max(held, 1)),
                         b"", b"{}")

    # a negative hold breaks a CHECK constraint inside the batch's transaction: the whole call fails
    good = [placement(u, 100) for u in same for _ in range(3)]
    bad = placement(same[0], -5)
    results = await asyncio.gather(*(batcher.place(p) for p in [good[0], *good[1:], bad]),
                                   return_exceptions=True)
    assert all(not isinstance(r, BaseException) and r.order is not None for r in results[:-1]), results
    assert isinstance(results[-1], asyncpg.CheckViolationError)
    assert await ledger.check() == []
    for p in good:
        row = await ledger.pool_for(p.user).fetchrow("SELECT held FROM orders WHERE order_id = $1",
                                                     p.order_id)
        assert row is not None and row["held"] == 100
    row = await ledger.pool_for(bad.user).fetchrow("SELECT 1 FROM orders WHERE order_id = $1", bad.order_id)
    assert row is None


@pytest.mark.parametrize("n", [1, 40])
@pytest.mark.ledger(max_size=8)
async def test_concurrent_retries_across_batches_make_one_order(n: int, ledger: ScopedLedger) -> None:
    u = ledger.user("r")
    await ledger.deposit(u, 100_000 * DOLLAR)
    key = uuid.uuid4().hex
    results = await asyncio.gather(*(outcome(ledger, u, buy(1, key)) for _ in range(n)))
    assert {r[1] for r in results} != {None} and len({r[1] for r in results}) == 1
    assert sum(r[2] for r in results) == 1
    assert await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 1
    assert await ledger.check() == []
