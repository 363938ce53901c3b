"""The OpenAPI 3.1 document of the order API: request schemas come from the msgspec structs that validate them."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from order_api import openapi_account, openapi_replace
from order_api.model import TIFS, OrderBody, Status

ERROR = {"$ref": "#/components/schemas/Error"}
ORDER = {"$ref": "#/components/schemas/Order"}
STATUSES = [s.value for s in Status]
TIF_DESCRIPTION = ("day: until the session's end, then expired (its hold released); gtc: rests across sessions "
                   "until filled or cancelled; ioc: what fills at once, the rest cancelled; fok: all at once or "
                   "cancelled whole; opg: only in the opening cross (placed before the open, outside market "
                   "hours); cls: only in the closing cross")
_TIME = {"type": "string", "format": "date-time", "description": "ISO-8601 in exchange time (America/New_York), "
         "with its offset"}

# what each refusal status means, with its machine-readable codes (order_api/limits.py, api.py, model.py)
REFUSALS = {
    400: "malformed_json, invalid_parameter, invalid_content_length, invalid_cursor (a page_token this API did not "
         "give); nothing was written",
    401: "unauthenticated, invalid_token, token_expired",
    404: "order_not_found",
    409: "idempotency_conflict, order_not_open; a replace: order_not_routed, replace_pending, cancel_pending",
    413: "body_too_large: the body (its Content-Length, or as read) is over the cap; the connection is closed",
    422: "invalid_order, invalid_quantity, invalid_symbol, invalid_idempotency_key, invalid_limit_price, "
         "missing_limit_price, unexpected_limit_price, missing_stop_price, invalid_stop_price, "
         "unexpected_stop_price, missing_trail, invalid_trail_percent, invalid_trail_price, unexpected_trail, "
         "unknown_symbol, symbol_halted, market_closed, no_market, "
         "limit_off_collar, quote_stale (a market order on a quote older than the configured age), "
         "insufficient_funds, insufficient_shares, invalid_extended_hours (extended_hours takes a limit day order), "
         "opg_after_open (an opg order once the market is open); nothing was written",
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


# The refusal codes of an order's amount (422 unless said): every one leaves nothing changed.
ORDER_REFUSALS = (
    "Send exactly one of `qty` (shares: a whole number, or a decimal string with at most 6 decimals, positive, at "
    "most 1000000) and `notional` (dollars, a decimal string with at most 4 decimals; market orders only: a buy "
    "holds the notional and buys what it pays for at the ask, rounded down to a millionth of a share, what it does "
    "not spend released; a sell sells what the notional is worth at the bid, rounded down to a millionth, holding "
    "those shares, never more than the position: `insufficient_shares` otherwise). Refusal codes: "
    "`invalid_quantity` (qty not a positive number with at "
    "most 6 decimals, or too large), `missing_qty` (neither qty nor notional), `qty_and_notional` (both), "
    "`invalid_notional` (not a positive decimal with at most 4 decimals, or over 1000000), "
    "`notional_market_only` (notional on a limit order), `notional_too_small` (it buys or sells less than a "
    "millionth of a share), `insufficient_funds`, `insufficient_shares` (also a notional sell worth more than the "
    "position at the bid), `invalid_symbol`, `missing_limit_price`, `invalid_limit_price`, "
    "`unexpected_limit_price`, `limit_off_collar`, `market_closed`, `unknown_symbol`, `symbol_halted`, "
    "`no_market`, `quote_stale`, `invalid_order` (a field of the wrong type), `idempotency_conflict` (409), "
    "`malformed_json` (400), `quote_unavailable` (503).")
# Stop orders' fields and refusal codes (README "Stop, stop-limit and trailing-stop orders"; order_api/stops.py)
STOP_TERMS = (
    "Stops: `type` `stop` (needs `stop_price`; routed as a market order once triggered), `stop_limit` (needs "
    "`stop_price` and `limit_price`; routed as a limit), `trailing_stop` (needs exactly one of `trail_percent`, a "
    "percentage as a decimal string below 100, and `trail_price`, dollars). A stop rests as `pending_trigger`, "
    "un-routed, until the live books cross it: a buy when the ask reaches `stop_price` (ask >= stop), a sell when "
    "the bid does (bid <= stop); a trailing stop's stop follows the best bid (sell: high-water mark `hwm` minus the "
    "trail) or ask (buy: low-water mark plus the trail). Triggering waits while the symbol is halted or paused and "
    "outside market hours. A `day` stop still resting when the feed ends the day (the rollover) expires, its "
    "hold released, as a routed day order does; a `gtc` one rests on. A buy stop holds its stop plus the "
    "collar, a trailing buy its first stop plus the "
    "collar, a stop-limit buy its limit; a sell holds its shares. Stop and limit prices of a stop may be any "
    "positive price (no collar). Refusal codes: `missing_stop_price`, `invalid_stop_price`, "
    "`unexpected_stop_price` (on a market, limit or trailing_stop order), `missing_trail` (a trailing_stop "
    "without exactly one of trail_percent and trail_price), `invalid_trail_percent`, `invalid_trail_price`, "
    "`unexpected_trail` (a trail on another type), `notional_market_only` (notional on a stop).")
STOP_FIELDS = {
    "stop_price": "stop and stop_limit: the trigger price, dollars as a decimal string (at most 4 decimals)",
    "trail_percent": "trailing_stop: the trail in percent of the mark, a decimal string (\"1.5\"), below 100",
    "trail_price": "trailing_stop: the trail in dollars, a decimal string",
    "type": "market | limit | stop | stop_limit | trailing_stop",
}
ORDER_EXAMPLES = {
    "whole": {"summary": "100 shares at market", "value": {
        "symbol": "AAPL", "side": "buy", "qty": 100, "idempotency_key": "k-1"}},
    "fractional": {"summary": "half a share, limit", "value": {
        "symbol": "AAPL", "side": "buy", "qty": "0.5", "type": "limit", "limit_price": "189.25",
        "idempotency_key": "k-2"}},
    "notional": {"summary": "$10 of AAPL", "value": {
        "symbol": "AAPL", "side": "buy", "notional": "10", "idempotency_key": "k-3"}},
    "notional_sell": {"summary": "sell $25 of AAPL: what $25 is worth at the bid, a fraction of a share", "value": {
        "symbol": "AAPL", "side": "sell", "notional": "25", "idempotency_key": "k-14"}},
    "stop": {"summary": "a stop-loss: sell 10 at market once the bid falls to 180", "value": {
        "symbol": "AAPL", "side": "sell", "qty": 10, "type": "stop", "stop_price": "180", "idempotency_key": "k-4"}},
    "stop_limit": {"summary": "buy 5 with a limit of 201 once the ask reaches 200", "value": {
        "symbol": "AAPL", "side": "buy", "qty": 5, "type": "stop_limit", "stop_price": "200", "limit_price": "201",
        "idempotency_key": "k-5"}},
    "trailing_percent": {"summary": "sell 10 once the bid falls 1.5% below its highest since placement", "value": {
        "symbol": "AAPL", "side": "sell", "qty": 10, "type": "trailing_stop", "trail_percent": "1.5",
        "idempotency_key": "k-6"}},
    "trailing_price": {"summary": "buy 2 once the ask rises $1 above its lowest since placement", "value": {
        "symbol": "AAPL", "side": "buy", "qty": 2, "type": "trailing_stop", "trail_price": "1",
        "idempotency_key": "k-7"}},
    "limit_gtc": {"summary": "a limit buy that rests across sessions until filled or cancelled", "value": {
        "symbol": "AAPL", "side": "buy", "qty": 10, "type": "limit", "limit_price": "180",
        "time_in_force": "gtc", "idempotency_key": "k-8"}},
    "fok": {"summary": "all 50 at once at 190 or better, or nothing", "value": {
        "symbol": "AAPL", "side": "buy", "qty": 50, "type": "limit", "limit_price": "190",
        "time_in_force": "fok", "idempotency_key": "k-9"}},
    "ioc": {"summary": "buy up to 20 at 190 or better now; what does not fill at once is cancelled", "value": {
        "symbol": "AAPL", "side": "buy", "qty": 20, "type": "limit", "limit_price": "190",
        "time_in_force": "ioc", "idempotency_key": "k-13"}},
    "opg": {"summary": "buy 5 in the opening cross (placed before the open)", "value": {
        "symbol": "AAPL", "side": "buy", "qty": 5, "type": "market", "time_in_force": "opg",
        "idempotency_key": "k-10"}},
    "cls": {"summary": "sell 5 in the closing cross", "value": {
        "symbol": "AAPL", "side": "sell", "qty": 5, "type": "market", "time_in_force": "cls",
        "idempotency_key": "k-11"}},
    "extended_hours": {"summary": "a limit day order that may also trade pre-market and after hours", "value": {
        "symbol": "AAPL", "side": "buy", "qty": 3, "type": "limit", "limit_price": "185",
        "time_in_force": "day", "extended_hours": True, "idempotency_key": "k-12"}},
}


@cache
def openapi_document() -> dict[str, Any]:
    (body,), components = msgspec.json.schema_components([OrderBody], ref_template="#/components/schemas/{name}")
    for name, text in STOP_FIELDS.items():
        components["OrderBody"]["properties"][name]["description"] = text
    order_id = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    components.update({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string", "description": "machine-readable, e.g. insufficient_funds"},
                           "message": {"type": "string"}}}}},
        "Order": {"type": "object", "properties": {
            "order_id": {"type": "string", "format": "uuid"}, "idempotency_key": {"type": "string"},
            "symbol": {"type": "string"}, "side": {"enum": ["buy", "sell"]}, "type": {"enum": [
                "market", "limit", "stop", "stop_limit", "trailing_stop"]},
            "time_in_force": {"enum": list(TIFS), "description": TIF_DESCRIPTION},
            "extended_hours": {"type": "boolean", "description": "a limit day order that may also trade "
                               "pre-market (04:00-09:30) and after hours (16:00-20:00) exchange time"},
            "qty": {"type": "string", "description": "shares, an exact decimal (at most 6 decimals: \"0.5\"); a "
                    "notional buy's is the quantity its notional buys at the ask at placement, a notional sell's "
                    "what its notional is worth at the bid"},
            "notional": {"type": ["string", "null"], "description": "a notional order's dollars (a buy's to spend, "
                         "a sell's to raise); null for "
                         "an order by quantity"},
            "limit_price": {"type": ["string", "null"], "description": "exact decimal"},
            "status": {"enum": STATUSES, "description": "pending_trigger: a stop resting un-routed until the "
                       "books cross it, then accepted and on as usual; expired: a day order its session's "
                       "end closed, or an opg/cls order its cross did not fill; its hold released; replaced: the "
                       "market maker replaced it by replaced_by (PATCH), its fills stay with it"},
            "stop_price": {"type": ["string", "null"], "description": "a stop's stop now (a trailing stop's follows "
                           "its mark); null for other orders"},
            "trail_percent": {"type": ["string", "null"], "description": "a trailing stop's trail in percent"},
            "trail_price": {"type": ["string", "null"], "description": "a trailing stop's trail in dollars"},
            "hwm": {"type": ["string", "null"], "description": "a trailing stop's mark: the highest bid (sell) or "
                    "lowest ask (buy) seen while eligible since placement"},
            "triggered_at": {"type": ["string", "null"], "description": "when the stop triggered (ISO 8601); null "
                             "until then"},
            "trigger_price": {"type": ["string", "null"], "description": "the ask (buy) or bid (sell) that "
                              "crossed the stop"},
            "filled_qty": {"type": "string", "description": "shares filled, an exact decimal"},
            "avg_fill_price": {"type": ["string", "null"]},
            "cancel_requested": {"type": "boolean"}, "reason": {"type": ["string", "null"]},
            "replaces": {"type": ["string", "null"], "format": "uuid", "description": "the order this one replaced"},
            "replaced_by": {"type": ["string", "null"], "format": "uuid", "description": "its replacement: asked "
                            "for (status unchanged until the market maker answers) or done (status replaced)"},
            "version": {"type": "integer"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"},
            "quote_age": {"type": "number", "description": "only in the answer to POST /v1/orders: seconds since "
                          "the quote the pre-trade checks used was known current (its publisher's last change; "
                          "with Redis down, the last one this API read)"},
            "quote_stale": {"type": "boolean", "description": "only in the answer to POST /v1/orders: that quote "
                            "is stale (the feed says so, or it is older than the API's --max-quote-age): a limit "
                            "order was still accepted, a market order would be refused quote_stale"}}},
        "Holding": {"type": "object", "properties": {
            "symbol": {"type": "string"}, "qty": {"type": "string", "description": "shares, an exact decimal"},
            "qty_available": {"type": "string"}, "qty_held": {"type": "string"},
            "cost_basis": {"type": "string", "description": "exact decimal"},
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
        "Clock": {"type": "object", "properties": {
            "timestamp": _TIME, "is_open": {"type": "boolean", "description": "the regular session is open now "
                                            "by the exchange calendar (orders are gated by the feed's market "
                                            "state, which the demo keeps open unless told otherwise)"},
            "next_open": _TIME, "next_close": _TIME,
            "phase": {"enum": ["closed", "pre_market", "open", "after_hours"]}}},
        "Session": {"type": "object", "properties": {
            "date": {"type": "string", "format": "date"}, "open": _TIME, "close": _TIME,
            "pre_market_open": _TIME, "after_hours_close": _TIME,
            "early_close": {"type": "boolean", "description": "closes at 13:00 (after hours end at 17:00)"}}},
        **openapi_account.SCHEMAS,
        "ReplaceBody": openapi_replace.schema(),
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
                         "description": ORDER_REFUSALS + " " + STOP_TERMS,
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": body, "examples": ORDER_EXAMPLES}}},
                         "responses": _responses({
                             "201": {"description": "accepted", "content": {"application/json": {"schema": ORDER}}},
                             "200": {"description": "the same key was used before: the first order",
                                     "content": {"application/json": {"schema": ORDER}}}},
                             400, 401, 409, 413, 422, 503)},
                "get": {"summary": "The user's orders, newest first",
                        "parameters": [{"name": "status", "in": "query", "schema": {"enum": STATUSES}},
                                       {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                        "responses": _responses({"200": {"description": "orders"}}, 400, 401, 503)}},
            "/v1/orders/{order_id}": {
                "get": {"summary": "One order", "parameters": [order_id],
                        "responses": _responses({"200": {"description": "the order", "content": {
                            "application/json": {"schema": ORDER}}}}, 401, 404)},
                "patch": openapi_replace.operation(order_id, _responses, ORDER),
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
            "/v1/clock": {"get": {"summary": "The market clock (from the exchange calendar): is_open, next_open, "
                                             "next_close, in exchange time",
                                  "responses": _responses({"200": {"description": "the clock", "content": {
                                      "application/json": {"schema": {"$ref": "#/components/schemas/Clock"}}}}},
                                      401)}},
            "/v1/calendar": {"get": {
                "summary": "Trading sessions from start to end (default: this year; at most 3 years), with the "
                           "holidays and early closes of each year they touch, from the exchanges' published "
                           "rules: {start, end, timezone, sessions: [Session], years: [{year, holidays: [{date, "
                           "name}], early_closes: [{date, reason, close}]}]}",
                "parameters": [{"name": "start", "in": "query", "schema": {"type": "string", "format": "date"}},
                               {"name": "end", "in": "query", "schema": {"type": "string", "format": "date"}}],
                "responses": _responses({"200": {"description": "the calendar"}}, 400, 401)}},
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
