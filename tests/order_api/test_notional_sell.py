"""Notional sells ("sell $X of it"), through the real ledger (PostgreSQL) and the HTTP API: the quantity is what the
notional is worth at the bid at placement, rounded down to a millionth; it holds those shares like any sell, never
more than the position (``insufficient_shares``, 422, nothing written); its fills follow the seller's rounding
rule, so it never raises more than the notional at that bid; Ledger.check() after each."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from order_api.model import ApiError, OrderRequest, quantity
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, ScopedLedger
from .test_api import api, auth, order

pytestmark = pytest.mark.anyio

DOLLAR = 10_000
AAPL = QUOTES["AAPL"]  # bid 189.99, ask 190.01
BID = AAPL.bid


def notional_sell(money: int, key: str | None = None) -> OrderRequest:
    return OrderRequest("AAPL", "sell", 0, "market", None, "day", key or uuid.uuid4().hex, money)


async def own(ledger: ScopedLedger, u: str, qty: int) -> None:
    """``qty`` millionths of AAPL in ``u``'s position, bought at the ask."""
    await ledger.deposit(u, 10_000 * DOLLAR)
    o, _ = await ledger.place(u, OrderRequest("AAPL", "buy", qty, "market", None, "day", uuid.uuid4().hex), AAPL)
    assert (await ledger.fill(u, o["order_id"], uuid.uuid4().hex, qty, AAPL.ask)) is not None


async def snapshot(ledger: ScopedLedger, u: str) -> tuple[Any, ...]:
    pool = ledger.pool_for(u)
    return (await ledger.account(u), await ledger.positions(u),
            await pool.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u),
            await pool.fetchval("SELECT count(*) FROM journal WHERE user_id = $1", u),
            await pool.fetchval("SELECT count(*) FROM outbox WHERE user_id = $1", u))


async def test_a_notional_sell_holds_what_it_is_worth_at_the_bid_and_fills_under_it(ledger: ScopedLedger) -> None:
    u = ledger.user("nsell")
    await own(ledger, u, 5 * S // 2)
    order, created = await ledger.place(u, notional_sell(100 * DOLLAR), AAPL)
    qty = 100 * DOLLAR * S // BID  # 0.526343 shares
    assert created and (order["side"], order["type"], order["notional"]) == ("sell", "market", 100 * DOLLAR)
    assert (order["qty"], order["held"], order["reserve_price"]) == (qty, qty, 0)
    assert qty == 526_343 and qty * BID <= 100 * DOLLAR * S < (qty + 1) * BID
    (pos,) = await ledger.positions(u)
    assert (pos["qty"], pos["qty_held"]) == (5 * S // 2 - qty, qty)
    # a retry is the same order, whatever the bid does meanwhile
    again, created = await ledger.place(u, notional_sell(100 * DOLLAR, order["idempotency_key"]),
                                        dataclasses.replace(AAPL, bid=BID - 50_000))
    assert not created and again["order_id"] == order["order_id"] and again["qty"] == qty
    await ledger.mark_routed(u, order["order_id"])
    first = qty // 3
    await ledger.fill(u, order["order_id"], "NS1", first, BID)
    f = await ledger.fill(u, order["order_id"], "NS2", qty - first, BID)
    assert f is not None and (f.order["status"], f.order["held"]) == ("filled", 0)
    assert f.order["filled_notional"] == qty * BID // S <= 100 * DOLLAR  # the seller's rule: rounded down, once
    (pos,) = await ledger.positions(u)
    assert (pos["qty"], pos["qty_held"]) == (5 * S // 2 - qty, 0)
    assert await ledger.check() == []


async def test_a_notional_sell_never_sells_more_than_the_position(ledger: ScopedLedger) -> None:
    u = ledger.user("nsell")
    await own(ledger, u, S)  # exactly one share
    before = await snapshot(ledger, u)
    for money in (190 * DOLLAR, 1_000 * DOLLAR):  # 1.000052 and 5.26 shares at the bid: more than one
        with pytest.raises(ApiError) as e:
            await ledger.place(u, notional_sell(money), AAPL)
        assert (e.value.status, e.value.code) == (422, "insufficient_shares")
        assert e.value.message.startswith("1 AAPL shares available to sell; ")
    assert await snapshot(ledger, u) == before  # nothing written
    nobody = ledger.user("nsell")
    await ledger.deposit(nobody, 100 * DOLLAR)
    with pytest.raises(ApiError) as e:
        await ledger.place(nobody, notional_sell(10 * DOLLAR), AAPL)
    assert e.value.code == "insufficient_shares"
    # worth exactly the position at the bid: all of it, and no more
    whole, _ = await ledger.place(u, notional_sell(BID), AAPL)
    assert (whole["qty"], whole["held"]) == (S, S)
    (pos,) = await ledger.positions(u)
    assert (pos["qty"], pos["qty_held"]) == (0, S)
    with pytest.raises(ApiError) as e:
        await ledger.place(u, notional_sell(1 * DOLLAR), AAPL)
    assert e.value.code == "insufficient_shares" and e.value.message.startswith("0 AAPL shares available")
    assert await ledger.check() == []


async def test_notional_sells_over_http(ledger: ScopedLedger) -> None:
    u = ledger.user("nsell")
    await own(ledger, u, 2 * S)
    async with api(ledger) as c:
        r = await c.post("/v1/orders", json=order(side="sell", qty=None, notional="50.5"), headers=auth(u))
        assert r.status_code == 201, r.text
        body = r.json()
        qty = 505_000 * S // BID
        assert (body["side"], body["type"], body["notional"], body["qty"], body["status"]) == (
            "sell", "market", "50.5000", f"0.{qty:06d}", "accepted")
        shown = await c.get(f"/v1/orders/{body['order_id']}", headers=auth(u))
        assert shown.json()["notional"] == "50.5000" and shown.json()["qty"] == body["qty"]

        too_much = await c.post("/v1/orders", json=order(side="sell", qty=None, notional="1000"), headers=auth(u))
        assert too_much.status_code == 422
        error = too_much.json()["error"]
        assert error["code"] == "insufficient_shares"
        assert error["message"] == f"{quantity(2 * S - qty)} AAPL shares available to sell; " \
            f"$1000.0000 is {quantity(1000 * DOLLAR * S // BID)} at the bid"

        for fields, code in (({"type": "limit", "limit_price": "190"}, "notional_market_only"),
                             ({"qty": 1}, "qty_and_notional"), ({"notional": "0.0000"}, "invalid_notional")):
            r = await c.post("/v1/orders", json=order(**{"side": "sell", "qty": None, "notional": "10", **fields}),
                             headers=auth(u))
            assert (r.status_code, r.json()["error"]["code"]) == (422, code), (fields, r.text)
        tiny = await c.post("/v1/orders", json=order(side="sell", qty=None, notional="0.0001"), headers=auth(u))
        assert (tiny.status_code, tiny.json()["error"]["code"]) == (422, "notional_too_small")
    assert await ledger.check() == []
