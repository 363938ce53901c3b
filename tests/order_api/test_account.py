"""The live account on the real PostgreSQL: settlement T+1 of sales, the account view, account updates in the
outbox (one per transaction, versions +1), and activities paged without gap or repeat while fills arrive."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson
import pytest

from order_api import settlement
from order_api.account import AccountView, decode_cursor, encode_cursor, next_weekday, settlement_date
from order_api.model import ApiError, OrderRequest
from vocab.quantities import shares

from .conftest import QUOTES, ScopedLedger
from .test_api import api, auth

pytestmark = pytest.mark.anyio

DOLLAR = 10_000


def order(side: str, qty: int) -> OrderRequest:
    return OrderRequest("AAPL", side, qty, "market", None, "day", uuid.uuid4().hex)


async def trade(ledger: ScopedLedger, u: str, side: str, whole: int, price: int) -> uuid.UUID:
    """Place, route and fill an order for ``whole`` shares (the ledger counts millionths of a share)."""
    o, _ = await ledger.place(u, order(side, shares(whole)), QUOTES["AAPL"])
    await ledger.mark_routed(u, o["order_id"])
    await ledger.fill(u, o["order_id"], uuid.uuid4().hex[:12], shares(whole), price)
    oid: uuid.UUID = o["order_id"]
    return oid


async def account_updates(ledger: ScopedLedger, u: str) -> list[dict[str, object]]:
    rows = await ledger.pool_for(u).fetch(
        "SELECT payload FROM outbox WHERE user_id = $1 AND topic = 'account' ORDER BY id", u)
    return [orjson.loads(r["payload"]) for r in rows]


def test_settlement_date_is_the_next_weekday() -> None:
    assert settlement_date(dt.date(2026, 11, 24)) == dt.date(2026, 11, 25)  # Tuesday -> Wednesday
    assert settlement_date(dt.date(2026, 11, 27)) == dt.date(2026, 11, 30)  # Friday -> Monday
    assert next_weekday(dt.date(2026, 11, 28)) == dt.date(2026, 11, 30)  # a Saturday trade (none) -> Monday
    # by default the exchange's calendar: Thanksgiving (2026-11-26) is no settlement day
    assert settlement_date(dt.date(2026, 11, 25)) == dt.date(2026, 11, 27)
    assert settlement_date(dt.date(2026, 12, 24)) == dt.date(2026, 12, 28)  # Christmas, then the weekend
    holidays = {dt.date(2026, 11, 26)}

    def calendar(day: dt.date) -> dt.date:  # the hook the exchange calendar fills
        day = next_weekday(day)
        return calendar(day) if day in holidays else day
    assert settlement_date(dt.date(2026, 11, 25), calendar) == dt.date(2026, 11, 27)


def test_cursor_round_trip_and_refusal() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    for bad in ("", "xyz", encode_cursor(1)[:-1] + "!", "YTE6LTE"):
        with pytest.raises(ApiError) as e:
            decode_cursor(bad)
        assert e.value.code == "invalid_cursor"


def test_view_rules() -> None:
    # 100 cash of which 30 held by a buy, 50 from a sale unsettled: buying power 70, withdrawable 20
    v = AccountView.of({"cash": 70, "cash_held": 30, "unsettled": 50, "positions": []})
    assert (v.cash, v.settled_cash, v.unsettled_cash, v.buying_power, v.withdrawable) == (100, 50, 50, 70, 20)
    # proceeds spent on a buy: unsettled is capped at the cash, nothing withdrawable
    v = AccountView.of({"cash": 10, "cash_held": 0, "unsettled": 50, "positions": []})
    assert (v.settled_cash, v.unsettled_cash, v.withdrawable) == (0, 10, 0)


async def test_sale_proceeds_settle_on_the_next_trading_day(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    await trade(ledger, u, "buy", 5, 1_900_000)
    before = await settlement.account_view(ledger, u)
    assert before.unsettled_cash == 0 and before.withdrawable == before.cash
    await trade(ledger, u, "sell", 2, 2_000_000)
    proceeds = 2 * 2_000_000
    view = await settlement.account_view(ledger, u)
    assert view.unsettled_cash == proceeds
    assert view.settled_cash == view.cash - proceeds
    assert view.buying_power == view.cash  # unsettled proceeds may buy
    assert view.withdrawable == view.cash - proceeds  # but not leave
    assert await ledger.check() == []
    trade_date = await ledger.pool_for(u).fetchval("SELECT trade_date FROM settlements WHERE user_id = $1", u)
    # on the trade date nothing settles; on the next weekday it does, once (the counts include other tests' sales)
    await settlement.settle_due(ledger, trade_date)
    assert (await settlement.account_view(ledger, u)).unsettled_cash == proceeds
    settle_on = settlement_date(trade_date)
    assert await settlement.settle_due(ledger, settle_on) >= 1
    await settlement.settle_due(ledger, settle_on)
    settled = await ledger.pool_for(u).fetchval(
        "SELECT count(*) FROM journal WHERE user_id = $1 AND kind = 'settlement'", u)
    assert settled == 1
    after = await settlement.account_view(ledger, u)
    assert after.unsettled_cash == 0 and after.withdrawable == after.cash == view.cash
    kinds = [a["activity_type"] for a in (await settlement.activities(ledger, u))[0]]
    assert kinds == ["SETTLE", "FILL", "FILL", "CSD"]
    assert await ledger.check() == []


async def test_one_account_update_per_transaction_versions_one_apart(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    await trade(ledger, u, "buy", 3, 1_900_000)  # place (hold), route (no money: no update), fill
    updates = await account_updates(ledger, u)
    assert [x["version"] for x in updates] == [1, 2, 3]
    last = AccountView.of(updates[-1])
    now = await settlement.account_view(ledger, u)
    assert last == AccountView(now.cash, now.cash_held, now.unsettled_cash, now.holdings, 3, last.event_time_ns)
    assert now.version == 3 and [h.qty for h in now.holdings] == [shares(3)]


async def test_activities_pages_have_no_gap_or_repeat_while_fills_arrive(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 100_000 * DOLLAR)
    for _ in range(5):
        await trade(ledger, u, "buy", 1, 1_900_000)
    seen: list[str] = []
    page, token = await settlement.activities(ledger, u, page_size=2)
    seen += [a["id"] for a in page]
    while token is not None:
        await trade(ledger, u, "buy", 1, 1_900_000)  # newer activities land above the first page
        page, token = await settlement.activities(ledger, u, before=decode_cursor(token), page_size=2)
        seen += [a["id"] for a in page]
    assert len(seen) == len(set(seen)) == 6  # 5 fills and the deposit: each once, none missing
    assert [decode_cursor(i) for i in seen] == sorted((decode_cursor(i) for i in seen), reverse=True)
    everything, _ = await settlement.activities(ledger, u, page_size=100)
    assert len(everything) == 6 + 2 and everything[-1]["activity_type"] == "CSD"
    fill = everything[0]
    assert fill["activity_type"] == "FILL" and fill["side"] == "buy" and fill["qty"] == "1"
    assert fill["price"] == "190.0000" and fill["net_amount"] == "-190.0000"
    other = ledger.user()
    assert (await settlement.activities(ledger, other)) == ([], None)  # only the caller's own
    assert await ledger.check() == []


async def test_account_and_activities_over_http(ledger: ScopedLedger) -> None:
    u, other = ledger.user(), ledger.user()
    await ledger.deposit(u, 1_000 * DOLLAR)
    await trade(ledger, u, "buy", 2, 1_900_000)
    await trade(ledger, u, "sell", 1, 2_000_000)
    async with api(ledger) as c:
        acct = (await c.get("/v1/account", headers=auth(u))).json()
        assert acct["unsettled_cash"] == "200.0000" and acct["withdrawable"] == "620.0000"
        assert acct["cash"] == acct["buying_power"] == "820.0000" and acct["settled_cash"] == "620.0000"
        assert acct["positions"] == [{"symbol": "AAPL", "qty": "1", "qty_held": "0", "cost_basis": "190.0000",
                                      "avg_entry_price": "190.0000"}]
        portfolio = (await c.get("/v1/portfolio", headers=auth(u))).json()
        assert (portfolio["unsettled_cash"], portfolio["withdrawable"]) == ("200.0000", "620.0000")
        r = await c.get("/v1/activities", params={"page_size": 2}, headers=auth(u))
        page = r.json()
        assert [a["activity_type"] for a in page["activities"]] == ["FILL", "FILL"]
        assert page["activities"][0]["net_amount"] == "200.0000" and page["activities"][0]["side"] == "sell"
        rest = (await c.get("/v1/activities", params={"page_token": page["next_page_token"]},
                            headers=auth(u))).json()
        assert [a["activity_type"] for a in rest["activities"]] == ["CSD"] and rest["next_page_token"] is None
        assert rest["activities"][0]["net_amount"] == "1000.0000"
        assert (await c.get("/v1/activities", headers=auth(other))).json() == {"activities": [],
                                                                                 "next_page_token": None}
        for params in ({"page_size": "0"}, {"page_size": "101"}, {"page_token": "nope"}):
            r = await c.get("/v1/activities", params=params, headers=auth(u))
            assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_parameter", "invalid_cursor")
        doc = (await c.get("/openapi.json")).json()
        assert {"/v1/account", "/v1/activities"} <= doc["paths"].keys()
    assert await ledger.check() == []
