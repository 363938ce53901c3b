"""Extended hours end to end: the order API's ``extended_hours`` reaches the FIX market maker (the trading-session
group, 336 in 386, on the NewOrderSingle: order_api/FIX.md), which takes an extended-hours order after the close
and refuses one that is not marked (rejected, its hold released), through the real stack (HTTP API -> ledger ->
outbox -> execution worker -> FIX -> market maker -> reports -> ledger -> the user's connection).

The API's prices come from a fixed table that keeps no hours (``Quote.market_open`` None), so the API itself
takes every order: what is refused here, the venue refused.
"""

from __future__ import annotations

import pytest

from order_api.execution import new_order_for
from order_api.fix import NewOrder
from order_api.fix.codec import decode, encode
from tests.conftest import PrivateRedis, eventually

from .conftest import ScopedLedger
from .test_api import auth
from .test_execution import DOLLAR, market
from .test_time_in_force import LOW, placed, reach
from .trading_stack import stack

pytestmark = [pytest.mark.anyio, pytest.mark.ledger(max_size=20), pytest.mark.timeout(120)]
HOLD_LOW = 1_800_000  # a buy limit of 180.00 holds 180 per share


async def test_the_venue_takes_marked_orders_after_the_close_and_refuses_unmarked_ones(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    u = ledger.user("ext")
    await ledger.deposit(u, 100_000 * DOLLAR)
    async with market(ledger) as mm, stack(ledger, private_redis.url, mm, [u]) as st:
        assert mm.session_event("close") == 0
        assert mm.engine.phase == "after_hours"
        ext = await placed(st, u, qty=2, type="limit", limit_price=LOW, extended_hours=True)
        plain = await placed(st, u, qty=3, type="limit", limit_price=LOW)
        await reach(ledger, u, ext, "routed")
        await eventually(lambda: str(ext) in mm.engine.orders, what="the extended order at the market maker")
        sim = mm.engine.orders[str(ext)]
        assert sim.open and sim.order.extended_hours  # it crossed the wire marked, and rests in after hours
        # what the worker sent for it, re-encoded from the ledger's row: the group on the wire
        row = await ledger.get_order(u, ext)
        assert row is not None and row["extended_hours"]
        sent = encode(new_order_for(row).to_fix(transact_time=0))
        assert b"\x01386=3\x01336=PRE\x01336=REG\x01336=POST\x01" in sent
        assert NewOrder.from_fix(decode(sent)) == sim.order

        await reach(ledger, u, plain, "rejected")
        refused = await st.http.get(f"/v1/orders/{plain}", headers=auth(u))
        assert refused.json()["reason"] == ("outside regular trading hours (after_hours): the order is not marked "
                                            "for extended hours (336)")
        assert str(plain) in mm.engine.orders and not mm.engine.orders[str(plain)].order.extended_hours
        account = await ledger.account(u)
        assert account is not None and int(account["cash_held"]) == 2 * HOLD_LOW  # the refused order's released
        sink = st.sinks[u]
        await eventually(lambda: any(x.order_id == str(plain) and x.status == "rejected" for x in sink.updates),
                         what="the venue's refusal on the user's orders channel")

        # a marketable extended-hours order trades after the close
        now = await placed(st, u, qty=1, type="limit", limit_price="191.00", extended_hours=True)
        await reach(ledger, u, now, "filled")
        mm.session_event("rollover")  # a day order, extended or not, expires with the day
        await reach(ledger, u, ext, "expired")
        account = await ledger.account(u)
        assert account is not None and int(account["cash_held"]) == 0
    assert await ledger.check() == []
