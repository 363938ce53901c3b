"""Stop orders through the real stack (HTTP API -> ledger -> trigger watcher in the execution worker -> outbox ->
FIX market maker -> fills on the user's connection), with prices the test moves (the API's and the watcher's
quote table), the ledger's invariants after each; and the trigger's exactly-once at the ledger."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import httpx
import pytest

from order_api.model import OrderRequest
from order_api.quotes import StaticQuotes
from order_api.stop_watcher import StopWatcher, trigger
from tests.conftest import PrivateRedis, eventually

from .conftest import QUOTES, ScopedLedger
from .test_api import auth
from .test_execution import DOLLAR, market
from .trading_stack import stack

pytestmark = pytest.mark.anyio
AAPL = QUOTES["AAPL"]  # bid 189.99, ask 190.01 (the market maker quotes the same and fills there)


def move(source: StaticQuotes, **kw: Any) -> None:
    source.table["AAPL"] = dataclasses.replace(source.table["AAPL"], **kw)


async def post(http: httpx.AsyncClient, u: str, **kw: Any) -> dict[str, Any]:
    r = await http.post("/v1/orders", json={"symbol": "AAPL", "idempotency_key": uuid.uuid4().hex, **kw},
                        headers=auth(u))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def status_of(http: httpx.AsyncClient, u: str, oid: str) -> dict[str, Any]:
    out: dict[str, Any] = (await http.get(f"/v1/orders/{oid}", headers=auth(u))).json()
    return out


async def test_a_buy_stop_rests_through_a_halt_and_triggers_on_the_first_quote_after_it(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    source = StaticQuotes(QUOTES)
    async with market(ledger) as mm:
        u = ledger.user("stop")
        await ledger.deposit(u, 100_000 * DOLLAR)
        async with stack(ledger, private_redis.url, mm, [u], source, stops=True) as st:
            o = await post(st.http, u, side="buy", qty=2, type="stop", stop_price="191")
            assert (o["status"], o["stop_price"], o["triggered_at"]) == ("pending_trigger", "191.0000", None)
            assert (await ledger.account(u) or {})["cash_held"] == 2 * 2_101_000  # 191 + 10 %
            watcher = st.worker.stops
            assert watcher is not None
            swept = watcher.counters["sweeps"]
            await eventually(lambda: watcher.counters["sweeps"] >= swept + 2, what="the watcher sweeping")
            assert (await status_of(st.http, u, o["order_id"]))["status"] == "pending_trigger"

            move(source, bid=1_919_900, ask=1_920_000, halted=True)  # crossed, but halted
            swept = watcher.counters["sweeps"]
            await eventually(lambda: watcher.counters["sweeps"] >= swept + 3, what="sweeps during the halt")
            assert (await status_of(st.http, u, o["order_id"]))["status"] == "pending_trigger"

            move(source, halted=False)  # the halt lifts: the first eligible quote triggers, at its ask
            async def filled() -> bool:
                return bool((await status_of(st.http, u, o["order_id"]))["status"] == "filled")
            await eventually(filled, what="the stop triggered, routed and filled",
                             state=lambda: status_of(st.http, u, o["order_id"]))
            done = await status_of(st.http, u, o["order_id"])
            assert done["trigger_price"] == "192.0000" and done["triggered_at"] is not None
            assert done["avg_fill_price"] == "190.0100"  # the market maker's ask, under the hold
            await eventually(lambda: [x.status for x in st.sinks[u].updates if x.order_id == o["order_id"]][-1:]
                             == ["filled"], what="the fill on the user's connection")
            seen = [x for x in st.sinks[u].updates if x.order_id == o["order_id"]]
            assert seen[0].status == "pending_trigger" and seen[0].stop_price == 1_910_000
            accepted = next(x for x in seen if x.status == "accepted")
            assert accepted.trigger_price == 1_920_000 and accepted.triggered_at_ns > 0
        assert await ledger.check() == []


async def test_a_trailing_sell_follows_the_rise_and_triggers_on_the_fall(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    source = StaticQuotes(QUOTES)
    async with market(ledger) as mm:
        u = ledger.user("trail")
        await ledger.deposit(u, 100_000 * DOLLAR)
        async with stack(ledger, private_redis.url, mm, [u], source, stops=True) as st:
            bought = await post(st.http, u, side="buy", qty="1.5")
            async def owned() -> bool:
                return bool((await status_of(st.http, u, bought["order_id"]))["status"] == "filled")
            await eventually(owned, what="the shares bought")
            o = await post(st.http, u, side="sell", qty="1.5", type="trailing_stop", trail_price="1")
            assert (o["stop_price"], o["hwm"], o["trail_price"]) == ("188.9900", "189.9900", "1.0000")

            move(source, bid=1_950_000, ask=1_950_200)  # up: the mark and the stop follow
            async def trailed() -> bool:
                return bool((await status_of(st.http, u, o["order_id"]))["stop_price"] == "194.0000")
            await eventually(trailed, what="the stop raised to 195 - 1", state=lambda: status_of(st.http, u,
                                                                                               o["order_id"]))
            shown = await status_of(st.http, u, o["order_id"])
            assert (shown["status"], shown["hwm"]) == ("pending_trigger", "195.0000")

            move(source, bid=1_945_000, ask=1_945_200)  # down, above the stop: nothing
            move(source, bid=1_935_000, ask=1_935_200)  # through the stop
            async def filled() -> bool:
                return bool((await status_of(st.http, u, o["order_id"]))["status"] == "filled")
            await eventually(filled, what="the trailing stop triggered and filled",
                             state=lambda: status_of(st.http, u, o["order_id"]))
            done = await status_of(st.http, u, o["order_id"])
            assert done["trigger_price"] == "193.5000" and done["stop_price"] == "194.0000"
            assert done["filled_qty"] == "1.5"
            assert any(x.stop_price == 1_940_000 for x in st.sinks[u].updates if x.order_id == o["order_id"])
        assert await ledger.check() == []


async def test_a_trigger_happens_once_however_many_watchers_race_and_a_cancel_releases_the_hold(
        ledger: ScopedLedger) -> None:
    u = ledger.user("race")
    await ledger.deposit(u, 100_000 * DOLLAR)
    req = OrderRequest("AAPL", "buy", 1_000_000, "stop", None, "day", "r1", stop_price=1_800_000)
    o, _ = await ledger.place(u, req, AAPL)
    assert o["status"] == "pending_trigger"
    assert await ledger.mark_sending(u, o["order_id"]) == (None, False)  # never routed before its trigger
    fired = await asyncio.gather(*(trigger(ledger, u, o["order_id"], price=1_900_100, stop=1_800_000, mark=None)
                                   for _ in range(5)))
    assert sum(r is not None for r in fired) == 1
    work = await ledger.pool_for(u).fetchval(
        "SELECT count(*) FROM outbox WHERE topic = 'execution' AND convert_from(payload, 'UTF8') LIKE '%' || $1 || '%'",
        str(o["order_id"]))
    assert work == 1  # one routing, whoever won
    resting, _ = await ledger.place(u, OrderRequest("AAPL", "buy", 1_000_000, "stop_limit", 1_700_000, "day", "r2",
                                                    stop_price=1_750_000), AAPL)
    assert int(resting["held"]) == 1_700_000
    cancelled = await ledger.cancel(u, resting["order_id"])
    assert cancelled["status"] == "cancelled" and int(cancelled["held"]) == 0
    assert await trigger(ledger, u, resting["order_id"], price=1, stop=1, mark=None) is None
    assert await ledger.check() == []


async def test_the_watcher_writes_a_rising_trail_at_most_once_a_second_and_triggers_on_its_newest_mark(
        ledger: ScopedLedger) -> None:
    u = ledger.user("sweep")
    await ledger.deposit(u, 100_000 * DOLLAR)
    bought, _ = await ledger.place(u, OrderRequest("AAPL", "buy", 3_000_000, "market", None, "day", "b"), AAPL)
    await ledger.fill(u, bought["order_id"], "B1", 3_000_000, 1_900_100)
    req = OrderRequest("AAPL", "sell", 3_000_000, "trailing_stop", None, "day", "t", trail_price=10_000)
    o, _ = await ledger.place(u, req, AAPL)
    assert (o["status"], o["trail_mark"], o["stop_price"]) == ("pending_trigger", 1_899_900, 1_889_900)
    now = [0.0]
    source = StaticQuotes(QUOTES)
    watcher = StopWatcher(ledger, source, mine=lambda who: who == u, clock=lambda: now[0])

    async def shown() -> tuple[str, int, int]:
        row = await ledger.get_order(u, o["order_id"])
        assert row is not None
        return row["status"], int(row["trail_mark"]), int(row["stop_price"])

    move(source, bid=1_950_000)
    assert await watcher.sweep() == []
    assert await shown() == ("pending_trigger", 1_950_000, 1_940_000)  # the first move is written at once
    move(source, bid=1_970_000)
    await watcher.sweep()
    assert await shown() == ("pending_trigger", 1_950_000, 1_940_000)  # within the second: kept in memory
    now[0] = 1.5
    move(source, bid=1_962_000)  # no new high: the mark held back is written now its second is up
    await watcher.sweep()
    assert await shown() == ("pending_trigger", 1_970_000, 1_960_000)
    now[0] = 3.0
    move(source, bid=1_975_000)
    await watcher.sweep()
    assert await shown() == ("pending_trigger", 1_975_000, 1_965_000)
    move(source, bid=1_965_000, halted=True)  # crossed while halted: nothing
    assert await watcher.sweep() == []
    move(source, halted=False)
    (fired,) = await watcher.sweep()
    assert (fired.price, fired.stop, fired.mark) == (1_965_000, 1_965_000, 1_975_000)
    row = await ledger.get_order(u, o["order_id"])
    assert row is not None and row["status"] == "accepted" and int(row["trigger_price"]) == 1_965_000
    assert watcher.counters["triggered"] == 1 and await watcher.sweep() == []
    assert await ledger.check() == []
