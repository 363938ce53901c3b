"""A day stop that has not triggered expires at the day's rollover, like a routed day order (issue 15's gap): the
trigger watcher expires it when the feed ends system hours (its system event E), its hold released exactly by a
balanced ``release`` entry and an order update to its owner; a gtc stop rests on, and nothing short of E (after
hours, a feed that says nothing or restarts with O) expires anything. Against the real PostgreSQL, then through
the real stack (API -> ledger -> watcher -> outbox -> the user's connection) beside the market maker's rollover.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

import pytest

from order_api.model import OrderRequest, Quote
from order_api.quotes import StaticQuotes
from order_api.stop_watcher import EXPIRED_REASON, StopWatcher, trigger
from order_api.stops import session_ended
from tests.conftest import PrivateRedis, eventually
from tickfan_proto import stream_pb2 as pb
from vocab.quantities import shares

from .conftest import QUOTES, ScopedLedger
from .test_api import auth
from .test_execution import DOLLAR, market
from .test_time_in_force import placed, reach
from .trading_stack import stack

pytestmark = pytest.mark.anyio
AAPL = QUOTES["AAPL"]  # bid 189.99, ask 190.01


class DayQuotes(StaticQuotes):
    """Fixed prices under the feed's market status the test sets: its phase and latest system event."""

    def __init__(self) -> None:
        super().__init__(QUOTES)
        self.status = ("open", "Q")

    def _in(self, q: Quote | None) -> Quote | None:
        phase, event = self.status
        return None if q is None else dataclasses.replace(q, market_open=phase == "open", market_phase=phase,
                                                          market_event=event)

    async def quote(self, symbol: str) -> Quote | None:
        return self._in(await super().quote(symbol))

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        return {s: q for s, q in ((s, self._in(q)) for s, q in (await super().quotes(symbols)).items()) if q}


def stop(side: str, qty: int, kind: str = "stop", tif: str = "day", **kw: Any) -> OrderRequest:
    return OrderRequest("AAPL", side, shares(qty), kind, kw.pop("limit_price", None), tif, uuid.uuid4().hex, **kw)


def test_only_the_end_of_system_hours_ends_the_day() -> None:
    at = [dataclasses.replace(AAPL, market_event=e) for e in ("", "O", "S", "Q", "M")]
    assert not session_ended(at) and not session_ended([])
    assert session_ended([dataclasses.replace(AAPL, market_event="E")])
    assert session_ended([*at, dataclasses.replace(AAPL, market_event="C")])


async def test_the_rollover_expires_resting_day_stops_releasing_their_holds_exactly(ledger: ScopedLedger) -> None:
    u = ledger.user("daystop")
    await ledger.deposit(u, 100_000 * DOLLAR)
    bought, _ = await ledger.place(u, OrderRequest("AAPL", "buy", shares(3), "market", None, "day", "b"), AAPL)
    await ledger.fill(u, bought["order_id"], "B1", shares(3), 1_900_100)
    before = await ledger.account(u)
    assert before is not None and int(before["cash_held"]) == 0
    day = [(await ledger.place(u, req, AAPL))[0] for req in (
        stop("buy", 2, stop_price=2_000_000),
        stop("buy", 1, "stop_limit", stop_price=2_000_000, limit_price=2_010_000),
        stop("sell", 1, stop_price=1_800_000),
        stop("sell", 1, "trailing_stop", trail_price=10_000),
    )]
    gtc, _ = await ledger.place(u, stop("buy", 1, tif="gtc", stop_price=2_000_000), AAPL)
    fired, _ = await ledger.place(u, stop("sell", 1, stop_price=1_800_000), AAPL)
    assert all(o["status"] == "pending_trigger" for o in [*day, gtc, fired])
    held = await ledger.account(u)
    assert held is not None
    assert int(held["cash_held"]) == sum(int(o["held"]) for o in (*day[:2], gtc)) == 2 * 2_200_000 + 2_010_000 \
        + 2_200_000
    [pos] = await ledger.positions(u)
    assert (int(pos["qty"]), int(pos["qty_held"])) == (0, shares(3))
    # a stop that triggered before the day ended is an ordinary order now (the market maker expires it if it rests)
    assert await trigger(ledger, u, fired["order_id"], price=1_799_000, stop=1_800_000, mark=None) is not None

    source = DayQuotes()
    watcher = StopWatcher(ledger, source, mine=lambda who: who == u)
    for status in (("after_hours", "M"), ("closed", ""), ("closed", "O")):  # not the end of the day: all rest
        source.status = status
        assert await watcher.sweep() == []
        assert watcher.counters["expired"] == 0
    assert {(await ledger.get_order(u, o["order_id"]) or {}).get("status") for o in [*day, gtc]} == {
        "pending_trigger"}

    source.status = ("closed", "E")
    assert await watcher.sweep() == []
    assert watcher.counters["expired"] == 4
    for o in day:
        row = await ledger.get_order(u, o["order_id"])
        assert row is not None
        assert (row["status"], int(row["held"]), row["reason"], row["triggered_at"], row["sent_at"]) == (
            "expired", 0, EXPIRED_REASON, None, None)
        assert row["version"] == o["version"] + 1
    after = await ledger.account(u)
    assert after is not None
    assert int(after["cash_held"]) == int(gtc["held"])  # exactly the day stops' cash came back, the gtc's stays
    assert int(after["cash"]) == int(held["cash"]) + int(day[0]["held"]) + int(day[1]["held"])
    [pos] = await ledger.positions(u)
    assert (int(pos["qty"]), int(pos["qty_held"])) == (shares(2), shares(1))  # the triggered sell still holds its
    ids = {o["order_id"] for o in day}
    released = [r for r in await ledger.journal(u) if r["kind"] == "release" and r["order_id"] in ids]
    by_order: dict[Any, list[int]] = {}
    for r in released:
        by_order.setdefault(r["order_id"], []).append(int(r["amount"]))
    assert {k: sorted(v) for k, v in by_order.items()} == {
        o["order_id"]: sorted([-int(o["held"]), int(o["held"])]) for o in day}
    # the owner hears of each expiry as of any other: an order update in the outbox, in the same transaction
    frames = await ledger.pool_for(u).fetch(
        "SELECT payload FROM outbox WHERE user_id = $1 AND topic = 'order_update' ORDER BY id", u)
    updates = [pb.ServerMessage.FromString(bytes(f["payload"])).order_update for f in frames]
    assert {x.order_id for x in updates if x.status == "expired"} == {str(o["order_id"]) for o in day}

    assert await watcher.sweep() == [] and watcher.counters["expired"] == 4  # expiring twice changes nothing
    g = await ledger.get_order(u, gtc["order_id"])
    assert g is not None and (g["status"], int(g["held"])) == ("pending_trigger", int(gtc["held"]))
    f = await ledger.get_order(u, fired["order_id"])
    assert f is not None and f["status"] == "accepted"
    for o in (gtc, fired):  # nothing of this test left open for the next one's worker to route
        await ledger.cancel(u, o["order_id"])
    assert await ledger.check() == []


@pytest.mark.timeout(120)
async def test_a_day_stop_expires_at_the_rollover_through_the_stack_and_its_owner_hears_of_it(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    u = ledger.user("daystop")
    await ledger.deposit(u, 100_000 * DOLLAR)
    source = DayQuotes()
    async with market(ledger) as mm, stack(ledger, private_redis.url, mm, [u], source, stops=True) as st:
        owned = await placed(st, u, qty=2)
        await reach(ledger, u, owned, "filled")
        buy = await placed(st, u, qty=3, type="stop", stop_price="200")
        sell = await placed(st, u, side="sell", qty=2, type="trailing_stop", trail_percent="5")
        gtc = await placed(st, u, qty=1, type="stop_limit", stop_price="200", limit_price="201",
                           time_in_force="gtc")
        account = await ledger.account(u)
        assert account is not None and int(account["cash_held"]) == 3 * 2_200_000 + 2_010_000
        source.status = ("after_hours", "M")  # the close: stops rest on (they are day orders until the rollover)
        assert mm.session_event("close") == 0
        watcher = st.worker.stops
        assert watcher is not None
        swept = watcher.counters["sweeps"]
        await eventually(lambda: watcher.counters["sweeps"] >= swept + 3, what="sweeps after the close")
        assert (await ledger.get_order(u, buy) or {}).get("status") == "pending_trigger"

        source.status = ("closed", "E")  # the rollover: the feed ends system hours as the market maker expires
        mm.session_event("rollover")
        await reach(ledger, u, buy, "expired")
        await reach(ledger, u, sell, "expired")
        r = await st.http.get(f"/v1/orders/{buy}", headers=auth(u))
        assert (r.json()["status"], r.json()["reason"], r.json()["triggered_at"]) == (
            "expired", EXPIRED_REASON, None)
        sink = st.sinks[u]
        await eventually(lambda: {x.order_id for x in sink.updates if x.status == "expired"} == {str(buy), str(sell)},
                         what="both expiries on the user's orders channel")
        account = await ledger.account(u)
        assert account is not None and int(account["cash_held"]) == 2_010_000  # only the gtc stop-limit's hold
        [position] = await ledger.positions(u)
        assert (int(position["qty"]), int(position["qty_held"])) == (shares(2), 0)
        assert (await ledger.get_order(u, gtc) or {}).get("status") == "pending_trigger"
        assert (await st.http.delete(f"/v1/orders/{gtc}", headers=auth(u))).status_code == 200
    assert await ledger.check() == []
