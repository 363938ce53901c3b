"""The live account's part of the OpenAPI document (GET /v1/account, GET /v1/activities, the portfolio's cash
fields): merged into ``order_api.openapi``'s document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from order_api.account import DEFAULT_PAGE, MAX_PAGE

_MONEY = {"type": "string", "description": "dollars, an exact decimal string (4 decimals)"}
CASH_FIELDS: dict[str, Any] = {
    "cash": {**_MONEY, "description": "all the user's cash, settled and unsettled, holds included"},
    "cash_held": {**_MONEY, "description": "held by open buy orders"},
    "settled_cash": {**_MONEY, "description": "cash whose trades have settled: cash - unsettled_cash"},
    "unsettled_cash": {**_MONEY, "description": "proceeds of sales not settled yet (a sale settles T+1: the next "
                                                "trading day after its trade date), at most the cash"},
    "buying_power": {**_MONEY, "description": "settled + unsettled - holds for open buys: what a buy may spend"},
    "withdrawable": {**_MONEY, "description": "settled - holds for open buys, never below zero"},
}
SCHEMAS: dict[str, Any] = {
    "Position": {"type": "object", "properties": {
        "symbol": {"type": "string"},
        "qty": {"type": "string", "description": "shares owned (free and held by open sells), a decimal string"},
        "qty_held": {"type": "string", "description": "of which held by open sell orders"},
        "cost_basis": {**_MONEY, "description": "average cost of qty"},
        "avg_entry_price": {**_MONEY, "description": "cost_basis / qty"}}},
    "Account": {"type": "object", "properties": {
        "user_id": {"type": "string"}, **CASH_FIELDS,
        "version": {"type": "integer", "description": "the account's version: the positions channel's "
                                                      "AccountUpdate.version of this state (0: no account yet)"},
        "positions": {"type": "array", "items": {"$ref": "#/components/schemas/Position"}}},
        "example": {"user_id": "alice", "cash": "98100.0000", "cash_held": "0.0000", "settled_cash": "96200.0000",
                    "unsettled_cash": "1900.0000", "buying_power": "98100.0000", "withdrawable": "96200.0000",
                    "version": 7, "positions": [{"symbol": "AAPL", "qty": "10", "qty_held": "0",
                                                 "cost_basis": "1900.0000", "avg_entry_price": "190.0000"}]}},
    "Activity": {"type": "object", "required": ["id", "activity_type", "transaction_time", "net_amount"],
                 "properties": {
        "id": {"type": "string", "description": "opaque; also a page_token that continues below this activity"},
        "activity_type": {"enum": ["FILL", "CSD", "CSW", "FEE", "SETTLE", "SPLIT"],
                          "description": "Alpaca's codes: FILL a fill, CSD a cash deposit, CSW a withdrawal, FEE a "
                                         "fee, SPLIT a stock split (qty: the shares it added, negative for those a "
                                         "reverse split took; net_amount: its cash-in-lieu); SETTLE (tickfan's) a "
                                         "sale's proceeds settling"},
        "transaction_time": {"type": "string", "format": "date-time"},
        "net_amount": {**_MONEY, "description": "the cash it moved for the user: a buy's cost negative, a sale's "
                                                "proceeds, a deposit positive; a settlement the amount settled; a "
                                                "split its cash-in-lieu"},
        "symbol": {"type": "string", "description": "FILL and SPLIT only"},
        "side": {"enum": ["buy", "sell"], "description": "FILL only"},
        "qty": {"type": "string", "description": "FILL: shares of this fill; SPLIT: the shares the split added "
                                                 "(negative: took); a decimal string"},
        "price": {**_MONEY, "description": "FILL only: the fill's price per share"},
        "order_id": {"type": "string", "format": "uuid"},
        "exec_id": {"type": "string", "description": "FILL only: the market maker's execution id"}},
        "example": {"id": "YTE6MTIz", "activity_type": "FILL", "transaction_time": "2026-11-26T15:04:05.123+00:00",
                    "symbol": "AAPL", "side": "buy", "qty": "10", "price": "190.0000", "net_amount": "-1900.0000",
                    "order_id": "6f1c...", "exec_id": "E1"}},
}


def paths(responses: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The paths, with ``responses`` (``order_api.openapi._responses``) adding each refusal."""
    return {
        "/v1/account": {"get": {
            "summary": "Cash as a cash-account broker shows it (settled and unsettled apart, buying power, "
                       "withdrawable) and the positions, at the version the positions channel numbers",
            "responses": responses({"200": {"description": "the account", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Account"}}}}}, 401, 503)}},
        "/v1/activities": {"get": {
            "summary": "The user's fills, deposits, withdrawals, fees and settlements (what the ledger records), "
                       "newest first, one page at a time; follow next_page_token (null on the last page). Pages "
                       "never repeat or skip an activity while new ones arrive (those appear above the first).",
            "parameters": [
                {"name": "page_size", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}},
                {"name": "page_token", "in": "query", "schema": {"type": "string"},
                 "description": "the previous page's next_page_token (or an activity's id)"}],
            "responses": responses({"200": {"description": "a page", "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "activities": {"type": "array", "items": {"$ref": "#/components/schemas/Activity"}},
                    "next_page_token": {"type": ["string", "null"]}}}}}}}, 400, 401, 503)}},
    }
