"""A split's open orders on the real PostgreSQL (order_api/split_db.py): resting limits, stops and trailing stops
rescaled with exact holds, whole-share orders kept whole, what cannot be rescaled cancelled, a partially filled
order at the market maker cancelled before the split, the user's order updates, idempotency, every invariant."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

import pytest

from order_api import replacing
from order_api.ledger import buy_hold
from order_api.model import OrderRequest, Quote
from order_api.quotes import StaticQuotes
from order_api.split_db import CORPORATE_ACTION, Split, apply_split
from order_api.splits import Ratio
from order_api.stop_watcher import StopWatcher
from tickfan_proto import stream_pb2
from vocab.quantities import QTY_SCALE as S

from .conftest import ScopedLedger

pytestmark = pytest.mark.anyio

DOLLAR = 10_000
PRICE = 1000 * DOLLAR
QUOTE = Quote(bid=PRICE - 100, ask=PRICE + 100, last=PRICE, halted=False, stale=False)
DAY = dt.date(2026, 11, 27)


def symbol() -> str:
    return "O" + uuid.uuid4().hex[:6].upper()


async def holding(ledger: ScopedLedger, user: str, sym: str, qty: int) -> None:
    await ledger.deposit(user, 10_000_000 * DOLLAR)
    placed, _ = await ledger.place(user, OrderRequest(sym, "buy", qty, "limit", PRICE, "day", uuid.uuid4().hex),
                                   QUOTE)
    await ledger.mark_routed(user, placed["order_id"])
    await ledger.fill(user, placed["order_id"], f"E-{uuid.uuid4().hex[:8]}", qty, PRICE)


async def place(ledger: ScopedLedger, user: str, sym: str, side: str, qty: int, type_: str = "limit",
                limit: int | None = None, **stop: Any) -> Any:
    row, created = await ledger.place(
        user, OrderRequest(sym, side, qty, type_, limit, "gtc", uuid.uuid4().hex, **stop), QUOTE)
    assert created
    return row


async def now(ledger: ScopedLedger, user: str, order: Any) -> Any:
    row = await ledger.get_order(user, order["order_id"])
    assert row is not None
    return row


async def last_update(ledger: ScopedLedger, user: str, order: Any) -> stream_pb2.OrderUpdate:
    """The newest order update of ``order`` in the outbox (what the user's WebSocket gets)."""
    for payload in await ledger.pool_for(user).fetch(
            "SELECT payload FROM outbox WHERE user_id = $1 AND topic = 'order_update' ORDER BY id DESC", user):
        update = stream_pb2.ServerMessage.FromString(payload["payload"]).order_update
        if update.order_id == str(order["order_id"]):
            return update
    raise AssertionError("no order update")


async def held(ledger: ScopedLedger, user: str, sym: str) -> tuple[int, int, int]:
    """(cash held, shares, shares held) of ``user``."""
    pool = ledger.pool_for(user)
    cash_held = int(await pool.fetchval("SELECT cash_held FROM accounts WHERE user_id = $1", user))
    row = await pool.fetchrow("SELECT qty, qty_held FROM positions WHERE user_id = $1 AND symbol = $2", user, sym)
    return cash_held, int(row["qty"]) if row else 0, int(row["qty_held"]) if row else 0


async def test_a_forward_split_rescales_resting_limits_stops_and_trailing_stops_with_exact_holds(
        ledger: ScopedLedger) -> None:
    sym = symbol()
    buyer, seller = ledger.user("buyer"), ledger.user("seller")
    await ledger.deposit(buyer, 1_000_000 * DOLLAR)
    await holding(ledger, seller, sym, 10 * S)
    limit_buy = await place(ledger, buyer, sym, "buy", 3 * S, limit=9_500_500)             # $950.05
    stop_buy = await place(ledger, buyer, sym, "buy", 2 * S, "stop", stop_price=11_000_100)  # $1100.01
    trail_buy = await place(ledger, buyer, sym, "buy", S, "trailing_stop", trail_percent=15_000)  # 1.5 %
    limit_sell = await place(ledger, seller, sym, "sell", 1_500_000, limit=10_500_100)      # 1.5 @ $1050.01
    stop_sell = await place(ledger, seller, sym, "sell", 2 * S, "stop", stop_price=9_000_300)  # $900.03
    trail_sell = await place(ledger, seller, sym, "sell", S, "trailing_stop", trail_price=10 * DOLLAR)
    assert (trail_sell["trail_mark"], trail_sell["stop_price"]) == (9_999_900, 9_899_900)
    cash_before = int((await ledger.account(buyer) or {})["cash"])
    old_holds = sum(int(o["held"]) for o in (limit_buy, stop_buy, trail_buy))
    assert await held(ledger, buyer, sym) == (old_holds, 0, 0)
    assert await held(ledger, seller, sym) == (0, 10 * S - 4_500_000, 4_500_000)

    outcomes = await apply_split(ledger, Split(f"{sym}:2:1", sym, Ratio(2, 1), 0, DAY))
    assert {o.state for o in outcomes} == {"applied"}
    assert sum(o.rescaled for o in outcomes) == 6 and sum(o.cancelled for o in outcomes) == 0

    def terms(row: Any) -> tuple[Any, ...]:
        return (row["status"], row["qty"], row["limit_price"], row["stop_price"], row["reason"])

    # a buy's limit rounds down to the cent ($475.025 -> $475.02), a sell's up ($525.005 -> $525.01)
    lb = await now(ledger, buyer, limit_buy)
    assert terms(lb) == ("accepted", 6 * S, 4_750_200, None, CORPORATE_ACTION)
    assert (lb["reserve_price"], lb["held"]) == (4_750_200, 6 * 4_750_200)
    ls = await now(ledger, seller, limit_sell)
    assert terms(ls) == ("accepted", 3 * S, 5_250_100, None, CORPORATE_ACTION) and ls["held"] == 3 * S
    # stops never trigger earlier than before: a buy's rounds up ($550.005 -> $550.01), a sell's down
    sb = await now(ledger, buyer, stop_buy)
    assert terms(sb) == ("pending_trigger", 4 * S, None, 5_500_100, CORPORATE_ACTION)
    # its hold: the collar price it held at, halved exactly (the hold of twice the shares at half the price)
    assert sb["reserve_price"] == int(stop_buy["reserve_price"]) // 2
    assert sb["held"] == buy_hold(4 * S, int(sb["reserve_price"])) == stop_buy["held"]
    ss = await now(ledger, seller, stop_sell)
    assert terms(ss) == ("pending_trigger", 4 * S, None, 4_500_100, CORPORATE_ACTION) and ss["held"] == 4 * S
    # trailing stops: the trail amount and the mark scaled, the stop recomputed from them
    ts = await now(ledger, seller, trail_sell)
    assert (ts["qty"], ts["trail_price"], ts["trail_mark"], ts["stop_price"], ts["held"]) == \
        (2 * S, 5 * DOLLAR, 4_999_950, 4_949_950, 2 * S)
    tb = await now(ledger, buyer, trail_buy)
    assert (tb["qty"], tb["trail_percent"], tb["trail_mark"], tb["stop_price"]) == \
        (2 * S, trail_buy["trail_percent"], 5_000_050, 5_075_051)  # ceil(500.005 * 1.015)
    assert tb["reserve_price"] == int(trail_buy["reserve_price"]) // 2
    assert tb["held"] == buy_hold(2 * S, int(tb["reserve_price"])) <= trail_buy["held"]

    # the holds are exact: cash held is the new orders' needs, the excess back in cash, nothing created
    new_holds = sum(int(o["held"]) for o in (lb, sb, tb))
    assert new_holds <= old_holds
    assert await held(ledger, buyer, sym) == (new_holds, 0, 0)
    assert int((await ledger.account(buyer) or {})["cash"]) == cash_before + old_holds - new_holds
    # the seller's 10 shares are 20; the 4.5 held for sells are 9, held again by the same orders
    assert await held(ledger, seller, sym) == (0, 11 * S, 9 * S)

    # each user was told: the next version, the new terms
    for user, before, after in ((buyer, limit_buy, lb), (seller, limit_sell, ls), (seller, trail_sell, ts)):
        update = await last_update(ledger, user, after)
        assert (update.version, update.qty_decimal, update.limit_price, update.stop_price, update.reason) == \
            (int(before["version"]) + 1, str(int(after["qty"]) // S), int(after["limit_price"] or 0),
             int(after["stop_price"] or 0), CORPORATE_ACTION)
    assert await ledger.check() == []

    # idempotent by the split's id: again, nothing moves
    again = await apply_split(ledger, Split(f"{sym}:2:1", sym, Ratio(2, 1), 0, DAY))
    assert {o.state for o in again} == {"already"}
    assert (await now(ledger, buyer, limit_buy))["version"] == lb["version"]
    assert await held(ledger, seller, sym) == (0, 11 * S, 9 * S)
    assert await ledger.check() == []


async def test_a_reverse_split_keeps_whole_share_orders_whole_and_cancels_what_it_would_make_nothing(
        ledger: ScopedLedger) -> None:
    sym = symbol()
    u = ledger.user("rev")
    await holding(ledger, u, sym, 30 * S)
    whole = await place(ledger, u, sym, "sell", 25 * S, limit=10_000_100)   # 2.5 -> 2 whole shares
    tiny = await place(ledger, u, sym, "sell", 5 * S, limit=10_000_100)     # 0.5 -> 0 whole shares: cancelled
    frac = await place(ledger, u, sym, "buy", 500_000, limit=9_999_900)     # 0.5 -> 0.05 (fractional stays)
    cash_held_before, _, _ = await held(ledger, u, sym)
    outcomes = await apply_split(ledger, Split(f"{sym}:1:10", sym, Ratio(1, 10), PRICE, DAY))
    assert {o.state for o in outcomes} == {"applied"}
    w = await now(ledger, u, whole)
    assert (w["status"], w["qty"], w["limit_price"], w["held"]) == ("accepted", 2 * S, 100_001_000, 2 * S)
    t = await now(ledger, u, tiny)
    assert (t["status"], t["reason"], t["held"]) == ("cancelled", CORPORATE_ACTION, 0)
    assert (await last_update(ledger, u, t)).status == "cancelled"
    f = await now(ledger, u, frac)
    assert (f["status"], f["qty"], f["limit_price"]) == ("accepted", 50_000, 99_999_000)
    assert f["held"] == buy_hold(50_000, 99_999_000) == cash_held_before  # 0.05 x $9999.90: the same $499.995
    # 30 shares are 3; 2 of them held by the sell that is left
    assert await held(ledger, u, sym) == (int(f["held"]), S, 2 * S)
    assert await ledger.check() == []


async def test_a_partially_filled_order_at_the_market_maker_is_replaced_by_its_rescaled_rest(
        ledger: ScopedLedger) -> None:
    sym = symbol()
    u = ledger.user("part")
    await ledger.deposit(u, 1_000_000 * DOLLAR)
    order = await place(ledger, u, sym, "buy", 4 * S, limit=PRICE)
    await ledger.mark_routed(u, order["order_id"])
    await ledger.fill(u, order["order_id"], "P1", S, PRICE)
    assert (await now(ledger, u, order))["status"] == "partially_filled"
    resting = await place(ledger, u, sym, "buy", S, limit=PRICE - DOLLAR)  # not at the market maker
    split = Split(f"{sym}:2:1", sym, Ratio(2, 1), 0, DAY)
    outcomes = await apply_split(ledger, split)
    assert "waiting" in {o.state for o in outcomes} and sum(o.replace_requested for o in outcomes) == 1
    routed = await now(ledger, u, order)
    # FIX's OrderQty is the total: the share filled, and the 3 left become 6 at $500
    assert (routed["pending_split"], routed["pending_qty"], routed["pending_limit"], routed["pending_extra"]) == \
        (split.split_id, 7 * S, 5_000_000, 0)
    # nothing else moved while the market maker may still fill: the resting order keeps its pre-split terms
    assert (await now(ledger, u, resting))["version"] == resting["version"]
    assert await held(ledger, u, sym) == (int(routed["held"]) + int(resting["held"]), S, 0)
    # the market maker confirms (ExecType 5): the replacement has the new terms, still the old hold until the split
    old, new = await replacing.confirm(ledger, u, order["order_id"], routed["replaced_by"], 6 * S)
    assert (old["status"], new["qty"], new["limit_price"], new["split_id"], new["held"]) == \
        ("replaced", 6 * S, 5_000_000, split.split_id, routed["held"])
    assert {o.state for o in await apply_split(ledger, split)} <= {"applied", "already"}
    n = await now(ledger, u, new)  # not rescaled again: only its hold set, exactly 6 x $500
    assert (n["status"], n["qty"], n["limit_price"], n["held"]) == ("routed", 6 * S, 5_000_000, 6 * 5_000_000)
    r = await now(ledger, u, resting)
    assert (r["qty"], r["limit_price"], r["held"]) == (2 * S, 4_995_000, 2 * 4_995_000)
    # the share bought before the split is two now
    assert await held(ledger, u, sym) == (6 * 5_000_000 + 2 * 4_995_000, 2 * S, 0)
    assert await ledger.check() == []


async def test_the_stop_watcher_never_writes_a_mark_of_before_the_split_over_the_rescaled_one(
        ledger: ScopedLedger) -> None:
    sym = symbol()
    u = ledger.user("trail")
    await holding(ledger, u, sym, 2 * S)
    o = await place(ledger, u, sym, "sell", 2 * S, "trailing_stop", trail_price=10 * DOLLAR)
    source = StaticQuotes({sym: QUOTE})
    clock = [0.0]
    watcher = StopWatcher(ledger, source, mine=lambda who: who == u, clock=lambda: clock[0])
    source.table[sym] = replace(QUOTE, bid=PRICE + 10 * DOLLAR)
    await watcher.sweep()  # the first move is written at once
    source.table[sym] = replace(QUOTE, bid=PRICE + 20 * DOLLAR)
    await watcher.sweep()  # within the second: the new high ($1020) is held in memory
    row = await now(ledger, u, o)
    assert (row["trail_mark"], row["stop_price"]) == (PRICE + 10 * DOLLAR, PRICE)
    assert {s.state for s in await apply_split(ledger, Split(f"{sym}:2:1", sym, Ratio(2, 1), 0, DAY))} == \
        {"applied"}
    split = await now(ledger, u, o)
    assert (split["trail_mark"], split["stop_price"], split["trail_price"]) == (505 * DOLLAR, 500 * DOLLAR, 5 * DOLLAR)
    # the market reopens at the new prices; the held-back $1020 mark (a stop of $1010, far above the new bid)
    # must neither be written nor trigger a sale
    clock[0] = 5.0
    source.table[sym] = replace(QUOTE, bid=504 * DOLLAR, ask=505 * DOLLAR, last=504 * DOLLAR)
    assert await watcher.sweep() == []
    row = await now(ledger, u, o)
    assert (row["status"], row["trail_mark"], row["stop_price"]) == ("pending_trigger", 505 * DOLLAR, 500 * DOLLAR)
    source.table[sym] = replace(QUOTE, bid=510 * DOLLAR, ask=511 * DOLLAR, last=510 * DOLLAR)
    await watcher.sweep()  # and it trails on from the rescaled mark
    row = await now(ledger, u, o)
    assert (row["trail_mark"], row["stop_price"]) == (510 * DOLLAR, 505 * DOLLAR)
    assert await ledger.check() == []
