"""The OpenAPI 3.1 document of the order API: request schemas come from the msgspec structs that validate them."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from order_api import openapi_account
from order_api.model import OrderBody

ERROR = {"$ref": "#/components/schemas/Error"}
ORDER = {"$ref": "#/components/schemas/Order"}

# what each refusal status means, with its machine-readable codes (order_api/limits.py, api.py, model.py)
REFUSALS = {
    400: "malformed_json, invalid_parameter, invalid_content_length, invalid_cursor (a page_token this API did not "
         "give); nothing was written",
    401: "unauthenticated, invalid_token, token_expired",
    404: "order_not_found",
    409: "idempotency_conflict, order_not_open",
    413: "body_too_large: the body (its Content-Length, or as read) is over the cap; the connection is closed",
    422: "invalid_order, invalid_quantity, invalid_symbol, invalid_idempotency_key, invalid_limit_price, "
         "missing_limit_price, unexpected_limit_price, unknown_symbol, symbol_halted, market_closed, no_market, "
         "limit_off_collar, quote_stale (a market order on a quote older than the configured age), "
         "insufficient_funds, insufficient_shares; nothing was written",
    429: "rate_limited: the user's requests in this window are spent (refused requests count too); "
         "retry after Retry-After seconds",
    500: "internal: an unforeseen error, logged; the answer carries no detail",
    501: "tickets_unavailable: this server cannot sign WebSocket tickets (it verifies tokens with public keys)",
    503: "ledger_unavailable, quotes_unavailable, quote_unavailable (nothing was written); outcome_unknown: the "
         "connection was lost as the change was committed, it may stand: retry with the same idempotency_key",
}
_INT = {"schema": {"type": "integer"}}
RATE_HEADERS = {
    "X-RateLimit-Limit": {"description": "requests allowed per window per user", **_INT},
    "X-RateLimit-Remaining": {"description": "requests left in this window", **_INT},
    "X-RateLimit-Reset": {"description": "Unix time (seconds) when the window ends", **_INT},
}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {status: {**answer, "headers": RATE_HEADERS} for status, answer in ok.items()}
    for c in (*codes, 429, 500):
        headers = dict(RATE_HEADERS) if c != 401 else {}
        if c == 429:
            headers["Retry-After"] = {"description": "seconds until the window ends", **_INT}
        out[str(c)] = {"description": REFUSALS[c], "headers": headers,
                       "content": {"application/json": {"schema": ERROR}}}
    return out


@cache
def openapi_document() -> dict[str, Any]:
    (body,), components = msgspec.json.schema_components([OrderBody], ref_template="#/components/schemas/{name}")
    order_id = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    components.update({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string", "description": "machine-readable, e.g. insufficient_funds"},
                           "message": {"type": "string"}}}}},
        "Order": {"type": "object", "properties": {
            "order_id": {"type": "string", "format": "uuid"}, "idempotency_key": {"type": "string"},
            "symbol": {"type": "string"}, "side": {"enum": ["buy", "sell"]}, "type": {"enum": ["market", "limit"]},
            "time_in_force": {"enum": ["day", "ioc"]}, "qty": {"type": "integer"},
            "limit_price": {"type": ["string", "null"], "description": "exact decimal"},
            "status": {"enum": ["accepted", "routed", "partially_filled", "filled", "cancelled", "rejected"]},
            "filled_qty": {"type": "integer"}, "avg_fill_price": {"type": ["string", "null"]},
            "cancel_requested": {"type": "boolean"}, "reason": {"type": ["string", "null"]},
            "version": {"type": "integer"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"},
            "quote_age": {"type": "number", "description": "only in the answer to POST /v1/orders: seconds since "
                          "the quote the pre-trade checks used was known current (its publisher's last change; "
                          "with Redis down, the last one this API read)"},
            "quote_stale": {"type": "boolean", "description": "only in the answer to POST /v1/orders: that quote "
                            "is stale (the feed says so, or it is older than the API's --max-quote-age): a limit "
                            "order was still accepted, a market order would be refused quote_stale"}}},
        "Holding": {"type": "object", "properties": {
            "symbol": {"type": "string"}, "qty": {"type": "integer"}, "qty_available": {"type": "integer"},
            "qty_held": {"type": "integer"}, "cost_basis": {"type": "string", "description": "exact decimal"},
            "price": {"type": ["string", "null"], "description": "the bid (else the last sale); null: no price"},
            "market_value": {"type": ["string", "null"]}, "unrealized_pnl": {"type": ["string", "null"]},
            "price_age": {"type": ["number", "null"], "description": "seconds since the price was known current"},
            "price_stale": {"type": "boolean", "description": "the price is not current: the feed says stale, it "
                            "is older than --max-quote-age (the market-data node or Redis down), or there is none"}}},
        "Portfolio": {"type": "object", "properties": {
            "user_id": {"type": "string"}, "cash": {"type": "string"}, "cash_held": {"type": "string"},
            **openapi_account.CASH_FIELDS, "holdings": {"type": "array", "items": {
                "$ref": "#/components/schemas/Holding"}},
            "market_value": {"type": "string"}, "equity": {"type": "string"},
            "prices_stale": {"type": "boolean", "description": "some holding is valued at a stale price (see "
                             "Holding.price_stale): market value and equity are as of then"}}},
        **openapi_account.SCHEMAS,
    })
    return {
        "openapi": "3.1.0",
        "info": {"title": "tickfan order API", "version": "1",
                 "description": "Money and prices are exact decimal strings (4 decimals). Every authenticated "
                                "response carries X-RateLimit-Limit/-Remaining/-Reset (default 200 requests a "
                                "minute per user); a 429 also Retry-After. Bodies are at most 16 KiB by default."},
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/orders": {
                "post": {"summary": "Place an order (idempotent by idempotency_key)",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                         "responses": _responses({
                             "201": {"description": "accepted", "content": {"application/json": {"schema": ORDER}}},
                             "200": {"description": "the same key was used before: the first order",
                                     "content": {"application/json": {"schema": ORDER}}}},
                             400, 401, 409, 413, 422, 503)},
                "get": {"summary": "The user's orders, newest first",
                        "parameters": [{"name": "status", "in": "query", "schema": {"enum": [
                            "accepted", "routed", "partially_filled", "filled", "cancelled", "rejected"]}},
                                       {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                        "responses": _responses({"200": {"description": "orders"}}, 400, 401, 503)}},
            "/v1/orders/{order_id}": {
                "get": {"summary": "One order", "parameters": [order_id],
                        "responses": _responses({"200": {"description": "the order", "content": {
                            "application/json": {"schema": ORDER}}}}, 401, 404)},
                "delete": {"summary": "Cancel an order", "parameters": [order_id],
                           "responses": _responses({
                               "200": {"description": "cancelled at once (it had not reached a market maker)"},
                               "202": {"description": "cancel requested from the market maker"}}, 401, 404, 409)}},
            "/v1/portfolio": {"get": {"summary": "Cash, holdings, market value and unrealised P&L; prices that are "
                                                 "not current are flagged (prices_stale, price_age)",
                                      "responses": _responses({"200": {"description": "portfolio", "content": {
                                          "application/json": {"schema": {
                                              "$ref": "#/components/schemas/Portfolio"}}}}}, 401)}},
            **openapi_account.paths(_responses),
            "/v1/ledger": {"get": {"summary": "The user's journal entries, newest first",
                                   "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}},
                                                  {"name": "before", "in": "query", "schema": {"type": "integer"}}],
                                   "responses": _responses({"200": {"description": "entries"}}, 400, 401)}},
            "/v1/ws-ticket": {"post": {
                "summary": "A single-use ticket for the WebSocket upgrade (`?ticket=`), valid 30 s: "
                           "{ticket, expires_in}",
                "responses": _responses({"200": {"description": "the ticket"}}, 401, 501)}},
            "/v1/logout-everywhere": {"post": {
                "summary": "Revoke every token of the user issued until now (HTTP at once, WebSockets closed with "
                           "4003): {user_id, generation, revoked_before}",
                "responses": _responses({"200": {"description": "revoked"}}, 401, 503)}},
        },
    }
