"""Stock splits through the ledger on the real PostgreSQL (order_api/split_db.py): positions, cost basis, open
orders, holds, the house's fractions, idempotency, cash-in-lieu, the account updates and every invariant."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson
import pytest

from order_api import replacing, settlement
from order_api.model import OrderRequest, Quote
from order_api.split_db import CORPORATE_ACTION, Split, apply_split, symbol_known
from order_api.splits import BadSplit, Ratio
from vocab.quantities import QTY_SCALE as S

from .conftest import ScopedLedger

pytestmark = pytest.mark.anyio

DOLLAR = 10_000
PRICE = 1000 * DOLLAR
QUOTE = Quote(bid=PRICE - 100, ask=PRICE + 100, last=PRICE, halted=False, stale=False)
DAY = dt.date(2026, 11, 27)


def symbol() -> str:
    """A symbol of this test alone (the test shards are shared): a split touches every holder of it."""
    return "S" + uuid.uuid4().hex[:6].upper()


def order(sym: str, side: str, qty: int, limit: int | None = None) -> OrderRequest:
    return OrderRequest(sym, side, qty, "limit" if limit else "market", limit, "day", uuid.uuid4().hex)


async def bought(ledger: ScopedLedger, user: str, sym: str, qty: int, price: int = PRICE) -> None:
    """``user`` holds ``qty`` millionths of ``sym`` bought at ``price``."""
    await ledger.deposit(user, 10_000_000 * DOLLAR)
    placed, _ = await ledger.place(user, order(sym, "buy", qty, price), QUOTE)
    await ledger.mark_routed(user, placed["order_id"])
    await ledger.fill(user, placed["order_id"], f"E-{uuid.uuid4().hex[:8]}", qty, price)


async def position(ledger: ScopedLedger, user: str, sym: str) -> tuple[int, int, int]:
    row = await ledger.pool_for(user).fetchrow(
        "SELECT qty, qty_held, cost FROM positions WHERE user_id = $1 AND symbol = $2", user, sym)
    assert row is not None
    return int(row["qty"]), int(row["qty_held"]), int(row["cost"])


async def split_until_applied(ledger: ScopedLedger, split: Split) -> list[str]:
    return [o.state for o in await apply_split(ledger, split)]


async def test_forward_split_scales_positions_keeps_cost_and_orders(ledger: ScopedLedger) -> None:
    sym = symbol()
    a, b = ledger.user("a"), ledger.user("b")
    await bought(ledger, a, sym, 10 * S)
    await bought(ledger, b, sym, 2_500_001)  # 2.500001 shares: a fractional holding
    qa, _, cost_a = await position(ledger, a, sym)
    qb, _, cost_b = await position(ledger, b, sym)
    cash_a = (await ledger.account(a) or {})["cash"]
    # a: an open buy no market maker has (rescaled here); b: a sell at the market maker (cancel asked first)
    resting_buy, _ = await ledger.place(a, order(sym, "buy", 3 * S, PRICE - 50 * DOLLAR), QUOTE)
    resting_sell, _ = await ledger.place(b, order(sym, "sell", S, PRICE + 50 * DOLLAR), QUOTE)
    await ledger.mark_sending(b, resting_sell["order_id"], to="mm-1")
    assert await symbol_known(ledger, sym) and not await symbol_known(ledger, "NOSUCH")

    split = Split(f"{sym}:3:2", sym, Ratio(3, 2), PRICE, DAY)
    states = await split_until_applied(ledger, split)
    assert "waiting" in states  # b's sell is at the market maker: nothing split on its shard yet
    sell = await ledger.get_order(b, resting_sell["order_id"])
    assert sell is not None and sell["pending_split"] == split.split_id and sell["status"] == "routed"
    assert (sell["pending_qty"], sell["pending_limit"], sell["reason"]) == (S, 7_000_000, CORPORATE_ACTION)

    async def last_work() -> object:
        work = await ledger.pool_for(b).fetchval(
            "SELECT payload FROM outbox WHERE user_id = $1 AND topic = 'execution' ORDER BY id DESC LIMIT 1", b)
        return orjson.loads(work)

    # the split asks the market maker to replace it by its rescaled terms (1.5 -> 1 whole share at $700)
    assert await last_work() == {"action": "replace", "order_id": str(sell["order_id"]), "user_id": b}
    assert "waiting" in await split_until_applied(ledger, split)  # asked once, then its answer is awaited
    assert (await ledger.get_order(b, sell["order_id"]) or {})["version"] == sell["version"]
    # the market maker refuses the replace: the split asks for its cancel instead
    assert await replacing.refuse(ledger, b, sell["order_id"], sell["replaced_by"]) is not None
    assert "waiting" in await split_until_applied(ledger, split)
    sell = await ledger.get_order(b, resting_sell["order_id"])
    assert sell is not None and sell["cancel_requested"] and sell["status"] == "routed"
    assert await last_work() == {"action": "cancel", "order_id": str(sell["order_id"]), "user_id": b}
    assert await position(ledger, b, sym) == (qb - S, S, cost_b)
    # the market maker answers the cancel: the order closes with the corporate action's reason
    closed = await ledger.cancelled(b, sell["order_id"], "cancelled by the market maker")
    assert closed is not None and closed["reason"] == CORPORATE_ACTION

    assert set(await split_until_applied(ledger, split)) <= {"applied", "already"}
    # a's buy of 3 whole shares at $950: 4.5 shares -> 4 (whole stays whole), $633.333... -> $633.33 (a buy's
    # limit rounded down), holding 4 x $633.33 exactly, the rest of the old hold released
    buy = await ledger.get_order(a, resting_buy["order_id"])
    assert buy is not None and (buy["status"], buy["reason"], buy["qty"], buy["limit_price"], buy["held"]) == \
        ("accepted", CORPORATE_ACTION, 4 * S, 6_333_300, 4 * 6_333_300)
    acct_a = await ledger.account(a)
    assert acct_a is not None and acct_a["cash_held"] == 4 * 6_333_300
    # 10 shares -> 15; 2.500001 -> 3.7500015 -> 3.750001 and half a millionth paid at $1000 * 2/3
    assert await position(ledger, a, sym) == (15 * S, 0, cost_a)
    assert await position(ledger, b, sym) == (3_750_001, 0, cost_b)
    assert qa == 10 * S
    assert acct_a["cash"] == cash_a - 4 * 6_333_300  # a's position had no remainder: no cash-in-lieu
    journal = await ledger.pool_for(b).fetch(
        "SELECT account, asset, amount FROM journal WHERE user_id = $1 AND kind = 'split'", b)
    # remainder 1/2 of a millionth at $666.67: 0.0000005 * 6,666,666.67 units = 3.33 units -> 3
    assert sorted((r["account"], r["asset"], r["amount"]) for r in journal) == [
        ("cash", "USD", 3), ("shares", sym, 3_750_001 - 2_500_001)]
    # the positions channel: the account update after the split shows the new quantity
    update = await ledger.pool_for(a).fetchval(
        "SELECT payload FROM outbox WHERE user_id = $1 AND topic = 'account' ORDER BY id DESC LIMIT 1", a)
    assert [(p["symbol"], p["qty"], p["cost"]) for p in orjson.loads(update)["positions"]] == \
        [(sym, 15 * S, cost_a)]
    assert await ledger.check() == []

    # idempotent: the same split again changes nothing
    lines = [await p.fetchval("SELECT count(*) FROM journal") for p in ledger.pools]
    assert await split_until_applied(ledger, split) == ["already"] * len(ledger.pools)
    assert [await p.fetchval("SELECT count(*) FROM journal") for p in ledger.pools] == lines
    assert await position(ledger, a, sym) == (15 * S, 0, cost_a)
    # the same id with other terms is refused, nothing changed
    with pytest.raises(BadSplit):
        await apply_split(ledger, Split(split.split_id, sym, Ratio(2, 1), PRICE, DAY))
    assert await ledger.check() == []


async def test_reverse_split_pays_cash_in_lieu_and_scales_the_house_fractions(ledger: ScopedLedger) -> None:
    sym = symbol()
    u = ledger.user("r")
    await bought(ledger, u, sym, 1_000_015)  # 1.000015 shares; the house keeps the rest of the second share
    qty, _, cost = await position(ledger, u, sym)
    cash = (await ledger.account(u) or {})["cash"]
    house_before = (await ledger.house()).get(sym, 0)
    assert house_before == 2 * S - 1_000_015
    outcomes = await apply_split(ledger, Split(f"{sym}:1:10", sym, Ratio(1, 10), PRICE, DAY))
    assert {o.state for o in outcomes} == {"applied"}
    # 1.000015 / 10 = 0.1000015 -> 0.100001 and half a millionth of a post-split share paid at $10,000 a share
    assert await position(ledger, u, sym) == (100_001, 0, cost)
    acct = await ledger.account(u)
    assert acct is not None and acct["cash"] == cash + 50
    # the house's 0.999985 shares became 0.0999985 -> 0.099998 (its remainder retired to the issuer, no cash)
    assert (await ledger.house()).get(sym, 0) == 99_998
    issuer = {r["asset"]: int(r["s"]) for p in ledger.pools for r in await p.fetch(
        "SELECT asset, sum(amount) AS s FROM journal WHERE account = 'issuer' AND asset IN ($1, 'USD') "
        "AND txn_id IN (SELECT txn_id FROM journal WHERE kind = 'split' AND (user_id = $2 OR asset = $1)) "
        "GROUP BY asset", sym, u)}
    assert issuer[sym] == (qty - 100_001) + (house_before - 99_998)  # every retired share went to the issuer
    # the user's activities show the split: the shares it took and the cash-in-lieu it paid
    newest = (await settlement.activities(ledger, u))[0][0]
    assert (newest["activity_type"], newest["symbol"], newest["qty"], newest["net_amount"]) == \
        ("SPLIT", sym, "-0.900014", "0.0050")
    assert await ledger.check() == []


async def test_a_reverse_split_can_leave_a_holder_only_cash(ledger: ScopedLedger) -> None:
    sym = symbol()
    u = ledger.user("tiny")
    await bought(ledger, u, sym, 3)  # three millionths of a share
    await apply_split(ledger, Split(f"{sym}:1:4", sym, Ratio(1, 4), PRICE, DAY))
    # 0.75 of a millionth: no share left, paid 0.00000075 * $4000 = $0.003 = 30 units; the basis leaves with it
    row = await ledger.pool_for(u).fetchrow("SELECT qty, cost FROM positions WHERE user_id = $1 AND symbol = $2",
                                            u, sym)
    assert row is not None and (row["qty"], row["cost"]) == (0, 0)
    assert await ledger.check() == []
