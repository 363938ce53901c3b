"""A split of orders at the market maker, through the real stack: the split asks for the replace (ledger ->
outbox -> execution worker -> FIX OrderCancelReplaceRequest -> the market maker -> ExecType 5 -> the ledger), and
is applied once the venue's order has the post-split terms; the holds exact, the orders channel told,
``Ledger.check()`` clean. (The refusal path, cancelled instead, is tested on the ledger: test_split_ledger.py.)
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from order_api.split_db import CORPORATE_ACTION, Split, apply_split
from order_api.splits import Ratio
from tests.conftest import PrivateRedis, eventually

from .conftest import ScopedLedger
from .test_execution import market
from .test_time_in_force import placed, reach
from .trading_stack import stack

pytestmark = [pytest.mark.anyio, pytest.mark.ledger(max_size=20), pytest.mark.timeout(120)]

DOLLAR = 10_000
S = 1_000_000
DAY = dt.date(2026, 11, 27)


async def test_orders_at_the_market_maker_are_replaced_by_their_rescaled_terms(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100_000 * DOLLAR)
    async with market(ledger) as mm, stack(ledger, private_redis.url, mm, [u]) as st:
        bought = await placed(st, u, symbol="MSFT", qty=6)
        await reach(ledger, u, bought, "filled")
        # the market maker quotes the pre-split prices, so each test order rests on the side that stays away
        buy = await placed(st, u, qty=4, type="limit", limit_price="180.01", time_in_force="gtc")  # AAPL
        sell = await placed(st, u, symbol="MSFT", side="sell", qty=5, type="limit", limit_price="420.01",
                            time_in_force="gtc")
        await reach(ledger, u, buy, "routed")
        await reach(ledger, u, sell, "routed")
        old_buy = await ledger.get_order(u, buy)
        assert old_buy is not None and int(old_buy["held"]) == 4 * 1_800_100

        aapl = Split(f"AAPL:2:1:{uuid.uuid4().hex[:6]}", "AAPL", Ratio(2, 1), 0, DAY)
        msft = Split(f"MSFT:1:2:{uuid.uuid4().hex[:6]}", "MSFT", Ratio(1, 2), 410 * DOLLAR, DAY)

        async def applied(split: Split) -> bool:
            return "waiting" not in {o.state for o in await apply_split(ledger, split)}

        assert not await applied(aapl) and not await applied(msft)  # the replaces are asked first
        await eventually(lambda: applied(aapl), what="the AAPL split applied after the venue's replace")
        await eventually(lambda: applied(msft), what="the MSFT split applied after the venue's replace")

        # 4 at $180.01 -> 8 at $90.00 (a buy's limit rounded down); the venue's order is the ledger's
        old = await ledger.get_order(u, buy)
        assert old is not None and (old["status"], old["reason"]) == ("replaced", f"replaced by {old['replaced_by']}")
        new = await ledger.get_order(u, old["replaced_by"])
        assert new is not None and (new["status"], new["qty"], new["limit_price"], new["held"]) == \
            ("routed", 8 * S, 900_000, 8 * 900_000)
        venue = mm.engine.orders[str(new["order_id"])]
        assert (venue.leaves_qty, venue.order.limit_price) == (8 * S, 900_000)
        assert mm.engine.orders[str(buy)].status.value == "5"
        # 5 whole shares at $420.01 -> 2 at $840.02 (2.5 kept whole, rounded down); the shares held scaled too
        old_sell = await ledger.get_order(u, sell)
        assert old_sell is not None and old_sell["status"] == "replaced"
        new_sell = await ledger.get_order(u, old_sell["replaced_by"])
        assert new_sell is not None and (new_sell["qty"], new_sell["limit_price"], new_sell["held"]) == \
            (2 * S, 8_400_200, 2 * S)
        venue = mm.engine.orders[str(new_sell["order_id"])]
        assert (venue.leaves_qty, venue.order.limit_price) == (2 * S, 8_400_200)

        account = await ledger.account(u)
        assert account is not None and int(account["cash_held"]) == 8 * 900_000  # the $0.32 excess released
        position = await ledger.pool_for(u).fetchrow(
            "SELECT qty, qty_held FROM positions WHERE user_id = $1 AND symbol = 'MSFT'", u)
        assert position is not None and (position["qty"], position["qty_held"]) == (S, 2 * S)  # 6 -> 3 shares
        sink = st.sinks[u]
        await eventually(lambda: any(x.order_id == str(new["order_id"]) and x.replaces == str(buy)
                                     for x in sink.updates) and
                         any(x.order_id == str(buy) and x.reason == CORPORATE_ACTION for x in sink.updates),
                         what="the split's replace and the replacement on the orders channel")
        assert await ledger.check() == []
