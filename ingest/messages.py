"""Decoded Nasdaq TotalView-ITCH 5.0 messages: the vocabulary ingest hands to normalize.

Field names follow the ITCH 5.0 specification. Every message carries the common header:
``locate`` (stock locate, uint16), ``tracking`` (tracking number, uint16) and ``timestamp``
(nanoseconds since midnight, 6 bytes on the wire). Prices are ITCH ``Price (4)`` integers
with 4 implied decimals; alpha fields wider than one byte (stock, MPID, reason, issue sub-type) are decoded
to ``str`` with trailing spaces removed, one-byte codes are kept as they are (a space is itself a code).
"""

from __future__ import annotations

from typing import NamedTuple


class SystemEvent(NamedTuple):  # 'S'
    locate: int
    tracking: int
    timestamp: int
    event_code: str


class StockDirectory(NamedTuple):  # 'R'
    locate: int
    tracking: int
    timestamp: int
    stock: str
    market_category: str
    financial_status: str
    round_lot_size: int
    round_lots_only: str
    issue_classification: str
    issue_subtype: str
    authenticity: str
    short_sale_threshold: str
    ipo_flag: str
    luld_tier: str
    etp_flag: str
    etp_leverage_factor: int
    inverse_indicator: str


class TradingAction(NamedTuple):  # 'H'
    locate: int
    tracking: int
    timestamp: int
    stock: str
    trading_state: str  # 'H' halted, 'P' paused, 'Q' quotation only, 'T' trading
    reserved: str
    reason: str


class AddOrder(NamedTuple):  # 'A', or 'F' when ``attribution`` is not None
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    side: str  # 'B' or 'S'
    shares: int
    stock: str
    price: int
    attribution: str | None = None


class OrderExecuted(NamedTuple):  # 'E'
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    executed_shares: int
    match_number: int


class OrderExecutedWithPrice(NamedTuple):  # 'C'
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    executed_shares: int
    match_number: int
    printable: str  # 'Y' or 'N'
    execution_price: int


class OrderCancel(NamedTuple):  # 'X'
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    cancelled_shares: int


class OrderDelete(NamedTuple):  # 'D'
    locate: int
    tracking: int
    timestamp: int
    order_ref: int


class OrderReplace(NamedTuple):  # 'U'
    locate: int
    tracking: int
    timestamp: int
    original_order_ref: int
    new_order_ref: int
    shares: int
    price: int


class Trade(NamedTuple):  # 'P' (non-cross)
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    side: str
    shares: int
    stock: str
    price: int
    match_number: int


class CrossTrade(NamedTuple):  # 'Q'
    locate: int
    tracking: int
    timestamp: int
    shares: int  # 8 bytes on the wire
    stock: str
    cross_price: int
    match_number: int
    cross_type: str


class BrokenTrade(NamedTuple):  # 'B'
    locate: int
    tracking: int
    timestamp: int
    match_number: int


Message = (
    SystemEvent
    | StockDirectory
    | TradingAction
    | AddOrder
    | OrderExecuted
    | OrderExecutedWithPrice
    | OrderCancel
    | OrderDelete
    | OrderReplace
    | Trade
    | CrossTrade
    | BrokenTrade
)
