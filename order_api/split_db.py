"""Applying a stock split to the ledger: one transaction per shard, idempotent by the split's id.

On each shard, under the account row locks of every user holding the symbol or with an open order on it (taken in
user id order, the order every other multi-user transaction takes), :func:`apply_on_shard`:

1. returns ``already`` if this split id was applied here (refuses the same id with other terms);
2. if orders on the symbol are at a market maker (routed, or sent), asks to replace each by its rescaled terms
   (FIX OrderCancelReplaceRequest through the outbox and the execution worker, as ``replacing.request`` does, but
   holding nothing extra: migration 018), or to cancel it where it cannot be replaced or the venue refused (FIX
   OrderCancelRequest, as a user's cancel), and returns ``waiting``, changing nothing else: the split is not applied
   while an order priced before it can still fill at the venue; the caller retries until every such order is the
   venue's replacement with the new terms (``orders.split_id``) or closed;
3. then rescales every open order on the symbol that no market maker has (``pending_trigger``, or
   ``accepted`` and never sent: nothing of it is filled) by ``splits.rescale``, in the same transaction as the
   positions, so no order ever lives with terms of the other side of the split: a buy keeps holding exactly the
   new quantity at its new reserve price (the excess released by a ``release`` entry; never more than it held),
   a sell's held shares are released before the positions split and the new quantity held again after it. An
   order the rule cannot rescale is cancelled with reason ``corporate_action``, its hold released. The venue's
   replacements keep their terms; their holds are set the same way;
4. posts one ``split`` journal transaction per holder (``order_api.splits``), the house's fractional shares of the
   symbol included, and records the split and each holder's result.

Every rescaled or cancelled order gets its order update (reason ``corporate_action``, the next version).
Account updates (the ``positions`` channel) follow from the journal lines through migration 012's trigger.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from order_api import ledger as ledger_rules
from order_api import replacing, splits
from order_api.db import Ledger, Row
from order_api.ledger import Entry
from order_api.model import ApiError, Status
from order_api.splits import BadSplit, Holding, Ratio
from order_api.stops import PCT_SCALE

CORPORATE_ACTION = "corporate_action"  # the reason on every order a split cancels or rescales
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
    rescaled: int = 0
    cancel_requested: int = 0
    replace_requested: int = 0
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
    # at the market maker, and not yet a replacement with this split's terms (nor a replacement of one in turn)
    at_maker = [o for o in open_orders
                if _at_maker(o) and (o["split_id"] != split.split_id or o["replaced_by"] is not None)]
    if at_maker:
        for order in at_maker:
            touched.add(order["user_id"])
            if order["pending_split"] == split.split_id or order["cancel_requested"] \
                    or order["replaced_by"] is not None:
                continue  # its answer is awaited
            if order["split_refused"] != split.split_id and await _ask_venue(ledger, conn, order, split):
                out.replace_requested += 1
            else:
                await _ask_cancel(ledger, conn, order)
                out.cancel_requested += 1
        out.state = "waiting"
        return out
    rehold: list[tuple[Row, splits.OrderTerms]] = []
    for order in open_orders:
        touched.add(order["user_id"])
        # a replacement at the venue has the new terms already: only its hold is left to set
        new = (await _rehold_replacement(ledger, conn, order) if order["split_id"] == split.split_id
               else await _rescale_order(ledger, conn, order, ratio))
        if new is None:
            out.cancelled += 1
        elif order["side"] == "sell":
            rehold.append((order, new))
        else:
            out.rescaled += 1
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
    for order, new in rehold:  # the shares a sell held, scaled with the position they came from
        await Ledger._post(conn, "hold", ledger_rules.hold_shares(order["user_id"], sym, new.qty),  # noqa: SLF001
                           order_id=order["order_id"])
        await _rewrite(ledger, conn, order, new, new.qty)
        out.rescaled += 1
    return out


def _at_maker(order: Row) -> bool:
    return order["status"] in (Status.ROUTED, Status.PARTIALLY_FILLED) or order["sent_at"] is not None


async def _ask_venue(ledger: Ledger, conn: asyncpg.Connection, order: Row, split: Split) -> bool:
    """Ask the market maker to replace ``order`` by its rescaled terms (FIX 35=G through the outbox, as
    ``replacing.request`` does, holding nothing extra); False when it cannot be (not a replaceable order, or terms
    the rule cannot rescale): it is cancelled instead."""
    try:
        replacing.replaceable(order)
    except ApiError:
        return False
    new = splits.rescale(_terms(order), split.ratio)
    if new is None:
        return False
    row = await conn.fetchrow(
        "UPDATE orders SET pending_qty = filled_qty + $2, pending_limit = $3, pending_tif = tif, pending_key = $4, "
        "pending_extra = 0, replaced_by = $5, pending_split = $6, reason = $7, version = version + 1, "
        "updated_at = now() WHERE order_id = $1 RETURNING *", order["order_id"], new.qty, new.limit_price,
        f"split:{split.split_id}:{order['order_id']}", uuid.uuid4(), split.split_id, CORPORATE_ACTION)
    await ledger._announce(conn, row, execute="replace")  # noqa: SLF001 -- as replacing.request asks
    return True


async def _ask_cancel(ledger: Ledger, conn: asyncpg.Connection, order: Row) -> None:
    row = await conn.fetchrow(
        "UPDATE orders SET cancel_requested = true, reason = $2, version = version + 1, updated_at = now() "
        "WHERE order_id = $1 RETURNING *", order["order_id"], CORPORATE_ACTION)
    await ledger._announce(conn, row, execute="cancel")  # noqa: SLF001 -- as Ledger.cancel asks


async def _rehold_replacement(ledger: Ledger, conn: asyncpg.Connection, order: Row) -> splits.OrderTerms:
    """The hold of a replacement the market maker confirmed with the post-split terms, still holding what the old
    order held: a buy's set to exactly its need (the excess released; a unit more held if the old order's fills
    left it a unit short, as ``request_replace`` allows for), a sell's released for :func:`_apply` to take again."""
    user, held, left = order["user_id"], int(order["held"]), int(order["qty"]) - int(order["filled_qty"])
    new = splits.OrderTerms(order["side"], left, _int(order["limit_price"]), reserve=int(order["reserve_price"]))
    if order["side"] == "buy":
        need = ledger_rules.buy_hold(left, new.reserve)
        if need != held:
            entries = (ledger_rules.release_cash(user, held - need) if held > need
                       else ledger_rules.hold_cash(user, need - held))
            await Ledger._post(conn, "release" if held > need else "hold", entries,  # noqa: SLF001
                               order_id=order["order_id"])
        await conn.execute("UPDATE orders SET held = $2 WHERE order_id = $1", order["order_id"], need)
    elif held:
        await Ledger._post(conn, "release", ledger_rules.release_shares(user, order["symbol"], held),  # noqa: SLF001
                           order_id=order["order_id"])
        await conn.execute("UPDATE orders SET held = 0 WHERE order_id = $1", order["order_id"])
    return new


def _terms(order: Row) -> splits.OrderTerms:
    pct = order["trail_percent"]
    return splits.OrderTerms(
        order["side"], int(order["qty"]) - int(order["filled_qty"]), _int(order["limit_price"]),
        _int(order["stop_price"]), int(order["reserve_price"]), _int(order["trail_price"]),
        int(Decimal(pct) * PCT_SCALE) if pct is not None else None, _int(order["trail_mark"]),
        _int(order["notional"]))


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


async def _rescale_order(ledger: Ledger, conn: asyncpg.Connection, order: Row,
                         ratio: Ratio) -> splits.OrderTerms | None:
    """Rescale (a buy now, a sell's hold released for :func:`_apply` to take again after the positions split) or
    cancel one open order no market maker has; its new terms, or None when it was cancelled."""
    user, held = order["user_id"], int(order["held"])
    new = splits.rescale(_terms(order), ratio)
    need = new.qty if new is not None and order["side"] == "sell" else 0
    if new is not None and order["side"] == "buy":
        need = ledger_rules.buy_hold(new.qty, new.reserve)
        if need > held:  # a hold computed by another rule (never seen): cancel rather than take more cash
            new = None
    if new is None:
        await ledger._finish(conn, order, Status.CANCELLED, CORPORATE_ACTION)  # noqa: SLF001 -- its own close
        return None
    if order["side"] == "buy":
        if held > need:
            await Ledger._post(conn, "release", ledger_rules.release_cash(user, held - need),  # noqa: SLF001
                               order_id=order["order_id"])
        await _rewrite(ledger, conn, order, new, need)
    elif held:
        await Ledger._post(conn, "release", ledger_rules.release_shares(user, order["symbol"], held),  # noqa: SLF001
                           order_id=order["order_id"])
        await conn.execute("UPDATE orders SET held = 0 WHERE order_id = $1", order["order_id"])
    return new


async def _rewrite(ledger: Ledger, conn: asyncpg.Connection, order: Row, new: splits.OrderTerms, held: int) -> None:
    row = await conn.fetchrow(
        "UPDATE orders SET qty = $2, limit_price = $3, stop_price = $4, reserve_price = CASE side WHEN 'buy' "
        "THEN $5 ELSE reserve_price END, trail_price = $6, trail_mark = $7, held = $8, reason = $9, "
        "version = version + 1, updated_at = now() WHERE order_id = $1 RETURNING *",
        order["order_id"], int(order["filled_qty"]) + new.qty, new.limit_price, new.stop_price, new.reserve,
        new.trail_price, new.trail_mark, held, CORPORATE_ACTION)
    await ledger._announce(conn, row)  # noqa: SLF001 -- the user's order update, as every change of an order


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
