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


class RegSho(NamedTuple):  # 'Y'
    locate: int
    tracking: int
    timestamp: int
    stock: str
    action: str  # '0' no price test, '1' short sale price test in effect (intra-day drop), '2' it remains in effect


class MwcbDeclineLevel(NamedTuple):  # 'V' (locate 0: market wide)
    locate: int
    tracking: int
    timestamp: int
    level1: int  # ITCH ``Price (8)``: 8 implied decimals, not 4
    level2: int
    level3: int


class MwcbStatus(NamedTuple):  # 'W' (locate 0: market wide)
    locate: int
    tracking: int
    timestamp: int
    breached_level: str  # '1', '2' or '3'


class IpoQuotingPeriod(NamedTuple):  # 'K'
    locate: int
    tracking: int
    timestamp: int
    stock: str
    release_time: int  # IPO quotation release time: SECONDS since midnight (not nanoseconds)
    release_qualifier: str  # 'A' anticipated, 'C' cancelled or postponed
    ipo_price: int


class LuldAuctionCollar(NamedTuple):  # 'J'
    locate: int
    tracking: int
    timestamp: int
    stock: str
    reference_price: int
    upper_price: int
    lower_price: int
    extension: int  # how many times the halt has been extended past its initial release


class OperationalHalt(NamedTuple):  # 'h'
    locate: int
    tracking: int
    timestamp: int
    stock: str
    market_code: str  # 'Q' Nasdaq, 'B' BX, 'X' PSX
    action: str  # 'H' operationally halted on that market, 'T' resumed


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


# the messages that change trading status (``normalize.status``), as decoded here
STATUS_MESSAGES = (SystemEvent, TradingAction, RegSho, MwcbDeclineLevel, MwcbStatus, IpoQuotingPeriod,
                   LuldAuctionCollar, OperationalHalt)
STATUS_TYPES = b"SHYVWKJh"  # their ITCH type bytes

Message = (
    SystemEvent
    | StockDirectory
    | TradingAction
    | RegSho
    | MwcbDeclineLevel
    | MwcbStatus
    | IpoQuotingPeriod
    | LuldAuctionCollar
    | OperationalHalt
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
