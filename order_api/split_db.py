"""Applying a stock split to the ledger: one transaction per shard, idempotent by the split's id.

On each shard, under the account row locks of every user holding the symbol or with an open order on it (taken in
user id order, the order every other multi-user transaction takes), :func:`apply_on_shard`:

1. returns ``already`` if this split id was applied here (refuses the same id with other terms);
2. cancels every open order on the symbol that no market maker has (never sent) with reason ``corporate_action``,
   releasing its hold by a balanced ``release`` transaction, as a user's cancel does;
3. if orders on the symbol are at a market maker, asks for their cancels (FIX OrderCancelRequest, through the
   outbox as a user's cancel does) and returns ``waiting``: the split is not applied while an order priced before
   it can still fill; the caller retries once the market maker has answered;
4. otherwise posts one ``split`` journal transaction per holder (``order_api.splits``), the house's fractional
   shares of the symbol included, and records the split and each holder's result.

Account updates (the ``positions`` channel) follow from the journal lines through migration 012's trigger.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import asyncpg

from order_api import splits
from order_api.db import Ledger, Row
from order_api.ledger import Entry
from order_api.model import Status
from order_api.splits import BadSplit, Holding, Ratio

CORPORATE_ACTION = "corporate_action"  # the reason on every order a split cancels
DEADLOCK_RETRIES = 3
_CLOSED = ("filled", "cancelled", "rejected", "expired", "replaced")


@dataclass(frozen=True, slots=True)
class Split:
    split_id: str
    symbol: str
    ratio: Ratio
    price: int  # the pre-split reference price for cash-in-lieu (0 when the ratio leaves no remainder)
    effective: dt.date


@dataclass(slots=True)
class ShardOutcome:
    state: str  # applied | already | waiting
    holders: list[Holding] = field(default_factory=list)
    cancelled: int = 0
    cancel_requested: int = 0
    house: Holding | None = None


async def symbol_known(ledger: Ledger, symbol: str) -> bool:
    """Whether any shard has ever held, ordered or split the symbol (an unknown one is refused)."""
    for pool in ledger.pools:
        if await pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM positions WHERE symbol = $1) OR EXISTS (SELECT 1 FROM orders "
                "WHERE symbol = $1) OR EXISTS (SELECT 1 FROM splits WHERE symbol = $1)", symbol):
            return True
    return False


def check_terms(split: Split) -> None:
    if splits.needs_price(split.ratio) and split.price <= 0:
        raise BadSplit(f"a {split.ratio} split can leave fractions of a millionth: give the pre-split reference "
                       "price (--price) for their cash-in-lieu")


async def apply_on_shard(ledger: Ledger, shard: int, split: Split) -> ShardOutcome:
    check_terms(split)
    pool = ledger.pools[shard]
    touched: set[str] = set()
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await _apply(ledger, conn, split, touched)
    finally:
        if touched:
            for hook in ledger.outbox_hooks:
                hook(shard)


async def _apply(ledger: Ledger, conn: asyncpg.Connection, split: Split, touched: set[str]) -> ShardOutcome:
    sym, ratio = split.symbol, split.ratio
    seen = await conn.fetchrow("SELECT * FROM splits WHERE split_id = $1", split.split_id)
    if seen is not None:
        if (seen["symbol"], seen["ratio_new"], seen["ratio_old"], seen["price"], seen["effective"]) != \
                (sym, ratio.new, ratio.old, split.price, split.effective):
            raise BadSplit(f"split {split.split_id} was applied with other terms ({seen['symbol']} "
                           f"{seen['ratio_new']}:{seen['ratio_old']} at {seen['price']} on {seen['effective']})")
        return ShardOutcome("already")
    # every user holding the symbol or with an open order on it, locked in user id order; again for whoever joined
    # them before the first lock was granted (a deadlock this could make is retried by apply_split)
    for _ in range(2):
        await conn.execute(
            "SELECT 1 FROM accounts WHERE user_id IN (SELECT user_id FROM positions WHERE symbol = $1 "
            "AND qty + qty_held > 0 UNION SELECT user_id FROM orders WHERE symbol = $1 AND NOT status = ANY($2)) "
            "ORDER BY user_id FOR UPDATE", sym, list(_CLOSED))
    out = ShardOutcome("applied")
    open_orders = await conn.fetch("SELECT * FROM orders WHERE symbol = $1 AND NOT status = ANY($2) "
                                   "ORDER BY user_id, order_id FOR UPDATE", sym, list(_CLOSED))
    at_maker: list[Row] = []
    for order in open_orders:
        touched.add(order["user_id"])
        if order["status"] in (Status.ROUTED, Status.PARTIALLY_FILLED) or order["sent_at"] is not None:
            at_maker.append(order)
        else:
            await ledger._finish(conn, order, Status.CANCELLED, CORPORATE_ACTION)  # noqa: SLF001 -- its own close
            out.cancelled += 1
    if at_maker:
        for order in at_maker:
            if order["cancel_requested"]:
                continue
            row = await conn.fetchrow(
                "UPDATE orders SET cancel_requested = true, reason = $2, version = version + 1, updated_at = now() "
                "WHERE order_id = $1 RETURNING *", order["order_id"], CORPORATE_ACTION)
            await ledger._announce(conn, row, execute="cancel")  # noqa: SLF001 -- as Ledger.cancel asks
            out.cancel_requested += 1
        out.state = "waiting"
        return out
    await conn.execute("INSERT INTO splits (split_id, symbol, ratio_new, ratio_old, price, effective) "
                       "VALUES ($1, $2, $3, $4, $5, $6)",
                       split.split_id, sym, ratio.new, ratio.old, split.price, split.effective)
    holders = await conn.fetch("SELECT user_id, qty, qty_held, cost FROM positions WHERE symbol = $1 "
                               "AND qty + qty_held > 0 ORDER BY user_id", sym)
    for p in holders:
        user = p["user_id"]
        if int(p["qty_held"]):  # no open sell order is left (all were closed above), so nothing is held
            raise BadSplit(f"{user} still has {p['qty_held']} {sym} held with no open order")
        h = splits.scale(int(p["qty"]), ratio, split.price)
        txn = await _post(conn, user, sym, splits.holder_entries(user, sym, h))
        if h.new_qty == 0:
            await conn.execute("UPDATE positions SET cost = 0 WHERE user_id = $1 AND symbol = $2", user, sym)
        await _record(conn, split.split_id, user, txn, h)
        out.holders.append(h)
        touched.add(user)
    house = int(await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM journal WHERE user_id = '' "
                                    "AND account = 'fractional' AND asset = $1", sym))
    if house > 0:
        out.house = splits.scale(house, ratio, 0)
        txn = await _post(conn, "", sym, splits.house_entries(sym, out.house))
        await _record(conn, split.split_id, "", txn, out.house)
    return out


async def _post(conn: asyncpg.Connection, holder: str, symbol: str, entries: list[Entry]) -> uuid.UUID | None:
    """One ``split`` journal transaction (Ledger._post moves the cached balances too); its id, None when nothing
    moved. The id is read back by the holder's share line: the holder is locked (the house: the split's own row),
    so no other split line of theirs on this symbol can come after it."""
    if not entries:
        return None
    await Ledger._post(conn, "split", entries)  # noqa: SLF001 -- the ledger's one way to write lines and balances
    txn: uuid.UUID = await conn.fetchval(
        "SELECT txn_id FROM journal WHERE user_id = $1 AND asset = $2 AND kind = 'split' "
        "AND account IN ('shares', 'fractional') ORDER BY id DESC LIMIT 1", holder, symbol)
    return txn


async def _record(conn: asyncpg.Connection, split_id: str, user: str, txn: uuid.UUID | None, h: Holding) -> None:
    await conn.execute("INSERT INTO split_holders (split_id, user_id, txn_id, old_qty, new_qty, cash_in_lieu) "
                       "VALUES ($1, $2, $3, $4, $5, $6)", split_id, user, txn, h.old_qty, h.new_qty, h.cash_in_lieu)


async def apply_split(ledger: Ledger, split: Split) -> list[ShardOutcome]:
    """One attempt on every shard (each its own transaction); the caller retries while any is ``waiting``."""
    outcomes = []
    for shard in range(len(ledger.pools)):
        for attempt in range(DEADLOCK_RETRIES):
            try:
                outcomes.append(await apply_on_shard(ledger, shard, split))
                break
            except asyncpg.DeadlockDetectedError:  # rolled back whole: nothing to undo
                if attempt == DEADLOCK_RETRIES - 1:
                    raise
    return outcomes
