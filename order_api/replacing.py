"""Replacing an order (``PATCH /v1/orders/{id}``), Alpaca's semantics on the ledger (migration 014).

The replacement is a new order with a new id; the old one ends ``replaced`` (terminal, its fills stay with it).
Nothing changes on the client's word alone: the market maker decides, as it does for a cancel.

1. ``request``: one transaction (``request_replace``): the old order takes the asked terms as *pending*, its hold
   is raised to the worst case until the answer (the old order may still fill at its own price, then the rest at
   the new one), a balanced ``hold`` journal entry, the order's next version, its order update (``replaced_by``
   set, status unchanged) and the ``replace`` work for the execution workers, all in the outbox.
2. The worker sends an OrderCancelReplaceRequest (35=G, ClOrdID = the replacement's id, OrderQty the total).
3. ExecType 5 (``confirm``, ``confirm_replace``): the old order ``replaced``, the replacement inserted for what the
   market maker says is left, holding exactly its need, the excess released. An OrderCancelReject (``refuse``,
   ``reject_replace``): the pending terms dropped, the extra hold released. A fill that wins the race is applied
   to the old order by its own limit and quantity first (reports arrive in order on the session), so nothing is
   overfilled and the hold is right in every interleaving.

``qty`` is the order's total quantity, as FIX's OrderQty: what the old order filled counts against it, and the
replacement is for the rest (so a fill racing the replace never buys more than asked in all).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import asyncpg
import msgspec

from order_api.db import Ledger, Row
from order_api.model import MAX_KEY, ApiError, Status, limit_price, money, quantity
from vocab.quantities import QTY_SCALE, parse_qty

ReplaceTif = Literal["day", "gtc"]


class ReplaceBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /v1/orders/{id}``: the fields that change (at least one), and the request's idempotency key (the
    body's ``idempotency_key`` or the ``Idempotency-Key`` header; it becomes the replacement's own key)."""

    qty: int | str | None = None
    limit_price: str | None = None
    time_in_force: ReplaceTif | None = None
    stop_price: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ReplaceTerms:
    qty: int | None
    limit_price: int | None
    tif: str | None
    idempotency_key: str


def parse_replace(raw: bytes, header_key: str | None) -> ReplaceTerms:
    """Decode and validate a replace body like a new order's fields; raises :class:`ApiError` with a code."""
    try:
        body = msgspec.json.decode(raw or b"{}", type=ReplaceBody)
    except msgspec.ValidationError as e:
        raise ApiError(422, "invalid_order", str(e)) from e
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {e}") from e
    key = body.idempotency_key or header_key
    if body.idempotency_key and header_key and body.idempotency_key != header_key:
        raise ApiError(422, "invalid_idempotency_key", "the Idempotency-Key header and idempotency_key differ")
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise ApiError(422, "invalid_idempotency_key", f"a replace needs an idempotency key (idempotency_key or the "
                                                       f"Idempotency-Key header), 1-{MAX_KEY} printable characters")
    if body.stop_price is not None:
        raise ApiError(422, "unexpected_stop_price", "only a stop order has a stop_price to replace")
    if body.qty is None and body.limit_price is None and body.time_in_force is None:
        raise ApiError(422, "nothing_changed", "send at least one of qty, limit_price, time_in_force")
    qty: int | None = None
    if body.qty is not None:
        try:
            qty = body.qty * QTY_SCALE if isinstance(body.qty, int) else parse_qty(body.qty)
        except ValueError as e:
            raise ApiError(422, "invalid_quantity", f"qty: {e}") from e
        if not 0 < qty <= 1_000_000 * QTY_SCALE:
            raise ApiError(422, "invalid_quantity", "qty must be positive and at most 1000000")
    limit: int | None = None
    if body.limit_price is not None:
        limit = limit_price(body.limit_price)
    return ReplaceTerms(qty, limit, body.time_in_force, key)


def replaceable(order: Row) -> None:
    """Refuse what cannot be replaced, before any transaction (the SQL function re-checks the state)."""
    if order["type"] != "limit" or order.get("notional") is not None:
        raise ApiError(422, "order_not_replaceable", "only a limit order can be replaced")
    if order["tif"] not in ("day", "gtc") or order.get("extended_hours"):
        raise ApiError(422, "order_not_replaceable", "only a day or gtc order can be replaced")


_REFUSALS: dict[str, tuple[int, str]] = {
    "order_not_found": (404, "no such order"),
    "order_not_open": (409, "the order is closed"),
    "order_not_routed": (409, "the order is not at the market maker yet; retry in a moment"),
    "cancel_pending": (409, "a cancel of this order is pending"),
    "replace_pending": (409, "a replace of this order is pending; wait for its answer"),
    "nothing_changed": (422, "the new terms are the order's own"),
    "idempotency_conflict": (409, "this idempotency key was already used for another request"),
}


async def request(ledger: Ledger, user: str, order_id: uuid.UUID, terms: ReplaceTerms,
                  current: Row) -> tuple[Row, bool]:
    """Ask for the replace in one transaction; (the old order with ``replaced_by`` set, True), or (it, False) for
    the same idempotency key again. Refusals raise :class:`ApiError`, nothing written."""
    qty = terms.qty if terms.qty is not None else int(current["qty"])
    limit = terms.limit_price if terms.limit_price is not None else int(current["limit_price"])
    tif = terms.tif or current["tif"]
    async with ledger._transaction(user) as conn:
        got = await conn.fetchrow("SELECT code, have, (o).* FROM request_replace($1, $2, $3, $4, $5, $6, $7)",
                                  user, order_id, uuid.uuid4(), terms.idempotency_key, qty, limit, tif)
        code, have = got["code"], int(got["have"] or 0)
        if code == "repeat":
            return got, False
        if code in _REFUSALS:
            status, message = _REFUSALS[code]
            raise ApiError(status, code, message)
        if code == "qty_below_filled":
            raise ApiError(422, code, f"qty must be more than the {quantity(have)} filled already")
        if code == "insufficient_funds":
            raise ApiError(422, code, f"buying power {money(have)} is less than the larger hold needs")
        if code == "insufficient_shares":
            raise ApiError(422, code, f"{quantity(have)} {current['symbol']} shares available to sell")
        assert code == "", code
        await Ledger._announce(conn, got, execute="replace")
        return got, True


async def confirm(ledger: Ledger, user: str, old: uuid.UUID, new: uuid.UUID, left: int) -> Sequence[Row]:
    """The market maker replaced ``old`` by ``new`` with ``left`` to trade: both orders' updates, or () when done
    already. Raises ValueError when the answer does not fit (the worker dead-letters it)."""
    async with ledger._transaction(user) as conn:
        try:
            rows: list[Row] = await conn.fetch("SELECT * FROM confirm_replace($1, $2, $3)", old, new, left)
        except asyncpg.RaiseError as e:
            raise ValueError(f"{e.args[0] if e.args else e}: {getattr(e, 'detail', '') or ''}") from e
        for row in rows:
            await Ledger._announce(conn, row)
        return rows


async def refuse(ledger: Ledger, user: str, old: uuid.UUID, new: uuid.UUID) -> Row | None:
    """The market maker refused to replace ``old`` by ``new``: the order as it stands, or None if no such replace
    was pending."""
    async with ledger._transaction(user) as conn:
        row: Row | None = await conn.fetchrow("SELECT * FROM reject_replace($1, $2)", old, new)
        if row is None or row["order_id"] is None:
            return None
        await Ledger._announce(conn, row)
        return row


def pending(order: Row) -> bool:
    """A replace of this open order waits for the market maker's answer."""
    return order.get("replaced_by") is not None and Status(order["status"]) is not Status.REPLACED


__all__ = ["ReplaceBody", "ReplaceTerms", "confirm", "parse_replace", "pending", "refuse", "replaceable", "request"]
