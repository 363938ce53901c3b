"""The OpenAPI part of ``PATCH /v1/orders/{id}`` (order_api/replacing.py): its body schema, example and refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from order_api.replacing import ReplaceBody

DESCRIPTION = (
    "Replace an open limit order (day or gtc): Alpaca's semantics. The replacement is a new order with a new id "
    "(`replaced_by` in the answer); the market maker decides, as for a cancel: on its ExecType 5 the old order "
    "becomes `replaced` (its fills stay with it) and the replacement works on, holding exactly what it needs; if "
    "the old order filled or closed first, the replace is refused and `replaced_by` cleared (both on the orders "
    "channel). `qty` is the order's total quantity, as FIX's OrderQty: what the old order filled counts against "
    "it (so a fill racing the replace never buys more than asked in all). Until the answer the order holds the "
    "larger of the old and the new terms' worst case. An idempotency key is required: `idempotency_key` in the "
    "body or the `Idempotency-Key` header (the same if both); it becomes the replacement's key, and the same key "
    "again answers 200 with the order as it stands. Refusal codes, nothing written: `order_not_found` (404, also "
    "someone else's order), `order_not_open` (409), `order_not_routed` (409: not at the market maker yet, retry "
    "in a moment), `replace_pending` / `cancel_pending` (409), `idempotency_conflict` (409), `nothing_changed`, "
    "`order_not_replaceable` (a market, notional, ioc, fok, opg, cls or extended-hours order), "
    "`invalid_quantity`, `qty_below_filled`, `invalid_limit_price`, `limit_off_collar`, `market_closed`, "
    "`symbol_halted`, `unexpected_stop_price`, `invalid_idempotency_key`, `invalid_order` (an unknown field or "
    "a wrong type), `insufficient_funds` / `insufficient_shares` (the larger hold), all 422; `malformed_json` "
    "(400). A DELETE while a replace is pending is refused `replace_pending` (409).")

EXAMPLES = {
    "price_and_qty": {"summary": "6 shares in all at 181.00, good till cancelled", "value": {
        "qty": "6", "limit_price": "181.00", "time_in_force": "gtc", "idempotency_key": "r-1"}},
    "price": {"summary": "a new limit only", "value": {"limit_price": "189.50", "idempotency_key": "r-2"}},
}


def schema() -> dict[str, Any]:
    (body,), components = msgspec.json.schema_components([ReplaceBody], ref_template="#/components/schemas/{name}")
    out: dict[str, Any] = components["ReplaceBody"]
    return out


def operation(order_id: dict[str, Any], responses: Callable[..., dict[str, Any]],
              order: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "Replace an order (qty, limit_price, time_in_force) by a new one; the market maker decides",
        "description": DESCRIPTION,
        "parameters": [order_id, {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
                                  "description": "instead of the body's idempotency_key"}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReplaceBody"}, "examples": EXAMPLES}}},
        "responses": responses({
            "202": {"description": "replace requested: the order with replaced_by set",
                    "content": {"application/json": {"schema": order}}},
            "200": {"description": "the same idempotency key again: the order as it stands",
                    "content": {"application/json": {"schema": order}}}},
            400, 401, 404, 409, 413, 422, 503),
    }
