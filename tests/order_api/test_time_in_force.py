"""Time in force through the real stack (HTTP API -> ledger -> outbox -> execution worker -> FIX market maker ->
fills and expiries -> the user's order updates), the venue's session driven on demand
(``MarketMaker.session_event``) and the feed's market state by the test's quote source:

- the day's rollover expires a day order (buy and sell: status "expired", the hold released, an update sent)
  and keeps a gtc order resting with its hold;
- an opg order taken pre-market fills in the opening cross, a cls order in the closing cross, at the cross
  price; opg is refused once the market is open;
- fok fills whole or is cancelled whole;
- an extended-hours limit order is taken only in the pre-market and after-hours windows the feed announces.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from order_api.model import Quote
from order_api.quotes import StaticQuotes
from tests.conftest import PrivateRedis, eventually
from vocab.quantities import shares

from .conftest import QUOTES, ScopedLedger
from .test_api import auth, order
from .test_execution import market, statuses
from .trading_stack import Stack, stack

pytestmark = [pytest.mark.anyio, pytest.mark.ledger(max_size=20), pytest.mark.timeout(120)]

DOLLAR = 10_000
AAPL = QUOTES["AAPL"]
MID = (AAPL.bid + AAPL.ask) // 2
LOW = "180.00"  # a buy limit far under the ask: rests


class SessionQuotes(StaticQuotes):
    """Fixed prices under a market state the test sets, as the feed's system events would."""

    def __init__(self) -> None:
        super().__init__(QUOTES)
        self.phase = "open"

    def _in_phase(self, q: Quote | None) -> Quote | None:
        return None if q is None else dataclasses.replace(q, market_open=self.phase == "open", market_phase=self.phase)

    async def quote(self, symbol: str) -> Quote | None:
        return self._in_phase(await super().quote(symbol))

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        return {s: q for s, q in ((s, self._in_phase(q)) for s, q in (await super().quotes(symbols)).items()) if q}


async def post(st: Stack, user: str, **kw: Any) -> httpx.Response:
    return await st.http.post("/v1/orders", json=order(**kw), headers=auth(user))


async def placed(st: Stack, user: str, **kw: Any) -> uuid.UUID:
    r = await post(st, user, **kw)
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["order_id"])


async def reach(ledger: ScopedLedger, user: str, oid: uuid.UUID, status: str) -> None:
    async def there() -> bool:
        o = await ledger.get_order(user, oid)
        return o is not None and o["status"] == status
    await eventually(there, what=f"order {oid} {status}", state=lambda: None)


async def test_the_rollover_expires_day_orders_and_keeps_gtc_with_their_holds(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100_000 * DOLLAR)
    async with market(ledger) as mm, stack(ledger, private_redis.url, mm, [u]) as st:
        bought = await placed(st, u, qty=10)
        await reach(ledger, u, bought, "filled")
        day = await placed(st, u, qty=4, type="limit", limit_price=LOW)
        gtc = await placed(st, u, qty=3, type="limit", limit_price=LOW, time_in_force="gtc")
        sell = await placed(st, u, side="sell", qty=6, type="limit", limit_price="205.00")
        for oid in (day, gtc, sell):
            await reach(ledger, u, oid, "routed")
        await eventually(lambda: {str(day), str(gtc), str(sell)} <= set(mm.engine.orders),
                         what="the resting orders at the market maker")
        account = await ledger.account(u)
        assert account is not None and int(account["cash_held"]) == 7 * 1_800_000
        assert mm.session_event("rollover") == 2
        await reach(ledger, u, day, "expired")
        await reach(ledger, u, sell, "expired")
        gtc_row = await ledger.get_order(u, gtc)
        assert gtc_row is not None and gtc_row["status"] == "routed" and int(gtc_row["held"]) == 3 * 1_800_000
        account = await ledger.account(u)
        assert account is not None and int(account["cash_held"]) == 3 * 1_800_000  # the day order's hold released
        [position] = await ledger.positions(u)
        assert (int(position["qty"]), int(position["qty_held"])) == (shares(10), 0)
        kinds = [r["kind"] for r in await ledger.journal(u) if r["order_id"] in (day, sell)]
        assert kinds.count("release") == 4  # two balanced lines each
        r = await st.http.get(f"/v1/orders/{day}", headers=auth(u))
        assert (r.json()["status"], r.json()["time_in_force"], r.json()["reason"]) == (
            "expired", "day", "day order expired at the end of its session")
        sink = st.sinks[u]
        await eventually(lambda: any(x.order_id == str(day) and x.status == "expired" for x in sink.updates),
                         what="the expiry on the user's orders channel")
        assert {x.time_in_force for x in sink.updates if x.order_id == str(gtc)} == {"gtc"}
        assert mm.session_event("rollover") == 0  # gtc rests on, day after day
        cancelled = await st.http.delete(f"/v1/orders/{gtc}", headers=auth(u))
        assert cancelled.status_code == 202
        await reach(ledger, u, gtc, "cancelled")
    assert await ledger.check() == []


async def test_opg_and_cls_fill_in_the_crosses_and_extended_hours_only_in_their_windows(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100_000 * DOLLAR)
    source = SessionQuotes()
    source.phase = "pre_market"
    async with market(ledger) as mm, stack(ledger, private_redis.url, mm, [u], source) as st:
        refused = await post(st, u, qty=1)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "market_closed"
        bad = await post(st, u, qty=1, type="market", extended_hours=True)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_extended_hours"
        opg = await placed(st, u, qty=5, time_in_force="opg")
        ext = await placed(st, u, qty=2, type="limit", limit_price=LOW, extended_hours=True)
        r = await st.http.get(f"/v1/orders/{ext}", headers=auth(u))
        assert (r.json()["extended_hours"], r.json()["time_in_force"]) == (True, "day")
        await reach(ledger, u, opg, "routed")
        source.phase = "open"
        late = await post(st, u, qty=1, time_in_force="opg")
        assert late.status_code == 422 and late.json()["error"]["code"] == "opg_after_open"
        cls = await placed(st, u, qty=3, time_in_force="cls")
        await eventually(lambda: str(cls) in mm.engine.orders, what="the cls order at the market maker")
        assert mm.session_event("open") == 1
        await reach(ledger, u, opg, "filled")
        opg_row = await ledger.get_order(u, opg)
        assert opg_row is not None and int(opg_row["filled_notional"]) == 5 * MID
        assert (await ledger.get_order(u, cls) or {}).get("status") == "routed"  # waits for the close
        assert mm.session_event("close") == 1
        await reach(ledger, u, cls, "filled")
        source.phase = "after_hours"
        assert (await post(st, u, qty=1, type="limit", limit_price=LOW)).json()["error"]["code"] == "market_closed"
        await placed(st, u, qty=1, type="limit", limit_price=LOW, extended_hours=True)
        source.phase = "closed"  # after the end of system hours
        closed = await post(st, u, qty=1, type="limit", limit_price=LOW, extended_hours=True)
        assert closed.status_code == 422 and closed.json()["error"]["code"] == "market_closed"
        sink = st.sinks[u]
        await eventually(lambda: any(x.order_id == str(ext) and x.extended_hours for x in sink.updates),
                         what="extended_hours on the order update")
        mm.session_event("rollover")  # the extended-hours orders are day orders: they expire with the day
        await reach(ledger, u, ext, "expired")
    assert await ledger.check() == []


async def test_fok_fills_whole_or_is_cancelled_whole(ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    u = ledger.user()
    await ledger.deposit(u, 1_000_000 * DOLLAR)
    async with market(ledger) as mm, stack(ledger, private_redis.url, mm, [u]) as st:
        whole = await placed(st, u, qty=300, time_in_force="fok")  # the market maker shows 300 at the ask
        none = await placed(st, u, qty=301, time_in_force="fok")
        await reach(ledger, u, whole, "filled")
        await reach(ledger, u, none, "cancelled")
        [(_, filled, _), (_, unfilled, reason)] = await statuses(ledger, [(u, whole), (u, none)])
        assert (filled, unfilled) == (shares(300), 0) and "FOK" in reason
        account = await ledger.account(u)
        assert account is not None and int(account["cash_held"]) == 0
    assert await ledger.check() == []
