"""Fractional and notional orders through the real ledger (PostgreSQL): the hold, the per-order rounding, the
house's fractional account, the notional's unspent remainder released, and Ledger.check() after each."""

from __future__ import annotations

import uuid

import pytest

from order_api.model import ApiError, OrderRequest
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, ScopedLedger

pytestmark = pytest.mark.anyio

DOLLAR = 10_000


def notional_buy(dollars: int) -> OrderRequest:
    return OrderRequest("AAPL", "buy", 0, "market", None, "day", uuid.uuid4().hex, dollars * DOLLAR)


async def test_a_notional_buy_spends_at_most_its_notional_and_releases_the_rest(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100 * DOLLAR)
    ask = QUOTES["AAPL"].ask
    order, created = await ledger.place(u, notional_buy(10), QUOTES["AAPL"])
    assert created and order["notional"] == 10 * DOLLAR and order["held"] == 10 * DOLLAR
    assert order["qty"] == 10 * DOLLAR * S // ask and order["qty"] * order["reserve_price"] <= 10 * DOLLAR * S
    await ledger.mark_routed(u, order["order_id"])
    # two partial fills, the second one below the ask: the buyer pays the exact total rounded up, once
    first = order["qty"] // 3
    await ledger.fill(u, order["order_id"], "N1", first, ask)
    f = await ledger.fill(u, order["order_id"], "N2", order["qty"] - first, ask - 100)
    assert f is not None and f.order["status"] == "filled" and f.order["held"] == 0
    exact = first * ask + (order["qty"] - first) * (ask - 100)
    cost = -(-exact // S)
    assert f.order["filled_notional"] == cost <= 10 * DOLLAR
    acct = await ledger.account(u)
    assert acct is not None and (acct["cash"], acct["cash_held"]) == (100 * DOLLAR - cost, 0)
    (pos,) = await ledger.positions(u)
    assert (pos["qty"], pos["cost"]) == (order["qty"], cost)
    assert await ledger.check() == []


async def test_a_fractional_sell_rounds_down_and_the_house_keeps_the_fraction(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 1_000 * DOLLAR)
    buy = OrderRequest("AAPL", "buy", S + S // 2, "market", None, "day", uuid.uuid4().hex)  # 1.5 shares
    o, _ = await ledger.place(u, buy, QUOTES["AAPL"])
    await ledger.fill(u, o["order_id"], "B1", S + S // 2, 1_900_001)
    sell = OrderRequest("AAPL", "sell", S // 4 + 1, "market", None, "day", uuid.uuid4().hex)  # 0.250001
    s, _ = await ledger.place(u, sell, QUOTES["AAPL"])
    f = await ledger.fill(u, s["order_id"], "S1", S // 4 + 1, 1_899_999)
    assert f is not None and f.order["filled_notional"] == (S // 4 + 1) * 1_899_999 // S  # rounded down
    kept = await ledger.pool_for(u).fetchval(
        "SELECT sum(amount) FROM journal WHERE user_id = '' AND account = 'fractional' AND asset = 'AAPL' "
        "AND order_id = ANY($1::uuid[])", [o["order_id"], s["order_id"]])
    # the buy left the house half a share (2 whole from the market, 1.5 to the buyer); the sell gave it 0.250001
    assert kept == S // 2 + S // 4 + 1
    assert (await ledger.house())["AAPL"] >= kept
    (pos,) = await ledger.positions(u)
    assert pos["qty"] == S + S // 2 - (S // 4 + 1)
    assert await ledger.check() == []


async def test_a_notional_too_small_for_a_millionth_is_refused(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100 * DOLLAR)
    tiny = OrderRequest("AAPL", "buy", 0, "market", None, "day", uuid.uuid4().hex, 1)  # $0.0001
    with pytest.raises(ApiError) as e:
        await ledger.place(u, tiny, QUOTES["AAPL"])
    assert e.value.code == "notional_too_small"
    assert await ledger.check() == []
