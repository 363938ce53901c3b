"""Replacing an order (``PATCH /v1/orders/{id}``) through the real stack: HTTP API -> ledger (migration 014) ->
outbox -> execution worker -> FIX OrderCancelReplaceRequest -> the market maker -> ExecType 5 or OrderCancelReject
-> the ledger -> the user's orders channel. ``Ledger.check()`` after each test, including a replace racing a fill
(the market maker's ``Faults.fill_before_replace``): never overfilled, the hold right.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import PrivateRedis, eventually
from venue.marketmaker import Faults

from .conftest import ScopedLedger
from .test_api import auth
from .test_execution import market
from .test_time_in_force import placed, reach
from .trading_stack import Stack, stack

pytestmark = [pytest.mark.anyio, pytest.mark.ledger(max_size=20), pytest.mark.timeout(120)]

DOLLAR = 10_000
SHARE = 1_000_000


async def patch(st: Stack, user: str, oid: uuid.UUID | str, key: str | None = None,
                **body: Any) -> httpx.Response:
    body.setdefault("idempotency_key", key or uuid.uuid4().hex)
    return await st.http.patch(f"/v1/orders/{oid}", json=body, headers=auth(user))


async def resting(st: Stack, ledger: ScopedLedger, user: str, **kw: Any) -> uuid.UUID:
    oid = await placed(st, user, **kw)
    await reach(ledger, user, oid, "routed")
    return oid


async def cash_held(ledger: ScopedLedger, user: str) -> int:
    account = await ledger.account(user)
    assert account is not None
    return int(account["cash_held"])


async def test_replace_a_resting_limit_order_price_and_qty(ledger: ScopedLedger,
                                                          private_redis: PrivateRedis) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100_000 * DOLLAR)
    async with market(ledger) as mm, stack(ledger, private_redis.url, mm, [u]) as st:
        old = await resting(st, ledger, u, qty=10, type="limit", limit_price="180.00", time_in_force="day")
        assert await cash_held(ledger, u) == 10 * 1_800_000
        r = await patch(st, u, old, key="r-1", qty="6", limit_price="181.00", time_in_force="gtc")
        assert r.status_code == 202, r.text
        new = uuid.UUID(r.json()["replaced_by"])
        assert r.json()["status"] == "routed"  # the market maker decides
        await reach(ledger, u, old, "replaced")
        row = await ledger.get_order(u, new)
        assert row is not None and (row["status"], int(row["qty"]), int(row["limit_price"]), row["tif"]) == (
            "routed", 6 * SHARE, 1_810_000, "gtc")
        assert row["replaces"] == old and int(row["held"]) == 6 * 1_810_000
        assert await cash_held(ledger, u) == 6 * 1_810_000  # exactly the replacement's need; the rest released
        assert str(new) in mm.engine.orders and mm.engine.orders[str(old)].status.value == "5"
        again = await patch(st, u, old, key="r-1", qty="6", limit_price="181.00", time_in_force="gtc")
        assert again.status_code == 200 and again.json()["replaced_by"] == str(new)
        other = await patch(st, u, old, key="r-1", qty="7", limit_price="181.00", time_in_force="gtc")
        assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_conflict")
        shown = (await st.http.get(f"/v1/orders/{new}", headers=auth(u))).json()
        assert (shown["replaces"], shown["qty"], shown["limit_price"]) == (str(old), "6", "181.0000")
        sink = st.sinks[u]
        await eventually(lambda: any(x.order_id == str(old) and x.status == "replaced" and x.replaced_by == str(new)
                                     for x in sink.updates)
                         and any(x.order_id == str(new) and x.replaces == str(old) for x in sink.updates),
                         what="replaced and the replacement on the orders channel")
        # the replacement replaced in turn, to a marketable limit: it fills at the ask
        r = await patch(st, u, new, limit_price="191.00")
        assert r.status_code == 202, r.text
        newer = uuid.UUID(r.json()["replaced_by"])
        await reach(ledger, u, newer, "filled")
        assert await cash_held(ledger, u) == 0
        [position] = await ledger.positions(u)
        assert int(position["qty"]) == 6 * SHARE
    assert await ledger.check([u]) == []


async def test_replace_a_sell_holds_the_larger_quantity_or_refuses(ledger: ScopedLedger,
                                                                  private_redis: PrivateRedis) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100_000 * DOLLAR)
    async with market(ledger) as mm, stack(ledger, private_redis.url, mm, [u]) as st:
        bought = await placed(st, u, qty=10)
        await reach(ledger, u, bought, "filled")
        sell = await resting(st, ledger, u, side="sell", qty=4, type="limit", limit_price="205.00")
        short = await patch(st, u, sell, qty=11)
        assert short.status_code == 422 and short.json()["error"]["code"] == "insufficient_shares"
        r = await patch(st, u, sell, qty=8)
        assert r.status_code == 202, r.text
        await reach(ledger, u, sell, "replaced")
        [position] = await ledger.positions(u)
        assert (int(position["qty"]), int(position["qty_held"])) == (2 * SHARE, 8 * SHARE)
    assert await ledger.check([u]) == []


async def test_a_fill_racing_the_replace_wins_and_nothing_overfills(ledger: ScopedLedger,
                                                                   private_redis: PrivateRedis) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100_000 * DOLLAR)
    faults = Faults()
    async with market(ledger, faults) as mm, stack(ledger, private_redis.url, mm, [u]) as st:
        # the whole order fills just before the replace arrives: the replace is refused, the hold stays right
        whole = await resting(st, ledger, u, qty=10, type="limit", limit_price="180.00")
        faults.fill_before_replace = 0
        r = await patch(st, u, whole, qty=12, limit_price="182.00")
        assert r.status_code == 202, r.text
        await reach(ledger, u, whole, "filled")

        async def answered(oid: uuid.UUID) -> bool:
            o = await ledger.get_order(u, oid)
            return o is not None and o["replaced_by"] is None
        await eventually(lambda: answered(whole), what="the refused replace answered")
        row = await ledger.get_order(u, whole)
        assert row is not None and int(row["filled_qty"]) == 10 * SHARE and int(row["held"]) == 0
        assert await cash_held(ledger, u) == 0
        # 4 of 10 fill first; the replace to 6 in all leaves 2 for the replacement: 6 bought at most
        faults.fill_before_replace = 4
        part = await resting(st, ledger, u, qty=10, type="limit", limit_price="180.00")
        r = await patch(st, u, part, qty=6, limit_price="181.00")
        await reach(ledger, u, part, "replaced")
        new = uuid.UUID(r.json()["replaced_by"])
        row = await ledger.get_order(u, new)
        assert row is not None and int(row["qty"]) == 2 * SHARE and int(row["held"]) == 2 * 1_810_000
        old_row = await ledger.get_order(u, part)
        assert old_row is not None and int(old_row["filled_qty"]) == 4 * SHARE and int(old_row["held"]) == 0
        assert await cash_held(ledger, u) == 2 * 1_810_000
        # 4 fill first and the replace asks for 3 in all: refused, the order goes on as it was with its own hold
        other = await resting(st, ledger, u, qty=10, type="limit", limit_price="180.00")
        r = await patch(st, u, other, qty=3)
        assert r.status_code == 202, r.text
        await eventually(lambda: answered(other), what="the refused replace answered")
        row = await ledger.get_order(u, other)
        assert row is not None and (row["status"], int(row["filled_qty"]), int(row["held"])) == (
            "partially_filled", 4 * SHARE, 6 * 1_800_000)
        faults.fill_before_replace = None
        assert await ledger.check([u]) == []
    assert await ledger.check([u]) == []


async def test_replace_refusals(ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    u, other = ledger.user(), ledger.user("other")
    await ledger.deposit(u, 10_000 * DOLLAR)
    await ledger.deposit(other, 10_000 * DOLLAR)
    faults = Faults()
    async with market(ledger, faults) as mm, stack(ledger, private_redis.url, mm, [u, other]) as st:
        oid = await resting(st, ledger, u, qty=10, type="limit", limit_price="180.00", idempotency_key="place-1")

        async def refused(status: int, code: str, oid: uuid.UUID | str = oid, user: str = u, **body: Any) -> None:
            r = await patch(st, user, oid, **body)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text

        await refused(404, "order_not_found", uuid.uuid4(), qty=5)
        await refused(404, "order_not_found", "not-a-uuid", qty=5)
        await refused(404, "order_not_found", user=other, qty=5)  # someone else's order
        await refused(422, "nothing_changed")
        await refused(422, "nothing_changed", limit_price="180.00", qty=10)
        await refused(422, "invalid_quantity", qty="1.0000001")
        await refused(422, "invalid_limit_price", limit_price="-1")
        await refused(422, "invalid_order", side="sell")
        await refused(422, "unexpected_stop_price", stop_price="170")
        await refused(422, "limit_off_collar", limit_price="100.00")
        await refused(422, "insufficient_funds", qty=100)  # 100 * 180 > 10,000 dollars
        await refused(409, "idempotency_conflict", key="place-1", qty=5)
        r = await st.http.patch(f"/v1/orders/{oid}", json={"qty": 5}, headers=auth(u))
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_idempotency_key"
        market_order = await placed(st, u, qty=1)
        await refused(422, "order_not_replaceable", market_order, limit_price="181.00")
        await reach(ledger, u, market_order, "filled")
        # while the market maker has not answered, a second replace or a cancel waits
        faults.latency_ms = 1500
        r = await st.http.patch(f"/v1/orders/{oid}", json={"qty": 5}, headers={**auth(u), "idempotency-key": "h-1"})
        assert r.status_code == 202, r.text
        await refused(409, "replace_pending", qty=4)
        d = await st.http.delete(f"/v1/orders/{oid}", headers=auth(u))
        assert (d.status_code, d.json()["error"]["code"]) == (409, "replace_pending")
        await reach(ledger, u, oid, "replaced")
        faults.latency_ms = 0
        await refused(409, "order_not_open", qty=4)
        assert await cash_held(ledger, u) == 5 * 1_800_000
        doc = (await st.http.get("/openapi.json")).json()
        op = doc["paths"]["/v1/orders/{order_id}"]["patch"]
        assert "price_and_qty" in op["requestBody"]["content"]["application/json"]["examples"]
        assert "replaced" in doc["components"]["schemas"]["Order"]["properties"]["status"]["enum"]
        assert set(doc["components"]["schemas"]["ReplaceBody"]["properties"]) >= {"qty", "limit_price"}
    assert await ledger.check([u, other]) == []
