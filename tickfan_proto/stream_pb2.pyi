from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClientMessage(_message.Message):
    __slots__ = ("subscribe", "unsubscribe", "ping", "refresh")
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    subscribe: Subscribe
    unsubscribe: Unsubscribe
    ping: Ping
    refresh: Refresh
    def __init__(self, subscribe: _Optional[_Union[Subscribe, _Mapping]] = ..., unsubscribe: _Optional[_Union[Unsubscribe, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., refresh: _Optional[_Union[Refresh, _Mapping]] = ...) -> None: ...

class Refresh(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class Subscribe(_message.Message):
    __slots__ = ("symbols", "channels", "resume_token", "max_rate_hz")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAX_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    resume_token: str
    max_rate_hz: float
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ..., resume_token: _Optional[str] = ..., max_rate_hz: _Optional[float] = ...) -> None: ...

class Unsubscribe(_message.Message):
    __slots__ = ("symbols", "channels")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("snapshot", "quotes", "trades", "heartbeat", "error", "pong", "subscribed", "depth", "order_update", "refreshed", "revoked", "bars", "status", "recovered", "account")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    QUOTES_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    ORDER_UPDATE_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    quotes: QuoteBatch
    trades: TradeBatch
    heartbeat: Heartbeat
    error: Error
    pong: Pong
    subscribed: Subscribed
    depth: DepthBatch
    order_update: OrderUpdate
    refreshed: Refreshed
    revoked: Revoked
    bars: BarBatch
    status: StatusBatch
    recovered: Recovered
    account: AccountUpdate
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., quotes: _Optional[_Union[QuoteBatch, _Mapping]] = ..., trades: _Optional[_Union[TradeBatch, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., subscribed: _Optional[_Union[Subscribed, _Mapping]] = ..., depth: _Optional[_Union[DepthBatch, _Mapping]] = ..., order_update: _Optional[_Union[OrderUpdate, _Mapping]] = ..., refreshed: _Optional[_Union[Refreshed, _Mapping]] = ..., revoked: _Optional[_Union[Revoked, _Mapping]] = ..., bars: _Optional[_Union[BarBatch, _Mapping]] = ..., status: _Optional[_Union[StatusBatch, _Mapping]] = ..., recovered: _Optional[_Union[Recovered, _Mapping]] = ..., account: _Optional[_Union[AccountUpdate, _Mapping]] = ...) -> None: ...

class Refreshed(_message.Message):
    __slots__ = ("expires_at_ns",)
    EXPIRES_AT_NS_FIELD_NUMBER: _ClassVar[int]
    expires_at_ns: int
    def __init__(self, expires_at_ns: _Optional[int] = ...) -> None: ...

class Revoked(_message.Message):
    __slots__ = ("revoked_before_ns",)
    REVOKED_BEFORE_NS_FIELD_NUMBER: _ClassVar[int]
    revoked_before_ns: int
    def __init__(self, revoked_before_ns: _Optional[int] = ...) -> None: ...

class OrderUpdate(_message.Message):
    __slots__ = ("order_id", "symbol", "side", "type", "status", "qty", "filled_qty", "limit_price", "last_fill_qty", "last_fill_price", "avg_fill_price", "reason", "version", "event_time_ns", "qty_decimal", "filled_qty_decimal", "last_fill_qty_decimal", "notional", "time_in_force", "extended_hours", "stop_price", "trail_percent", "trail_price", "triggered_at_ns", "trigger_price", "replaces", "replaced_by")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    FILLED_QTY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    LAST_FILL_QTY_FIELD_NUMBER: _ClassVar[int]
    LAST_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    AVG_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    QTY_DECIMAL_FIELD_NUMBER: _ClassVar[int]
    FILLED_QTY_DECIMAL_FIELD_NUMBER: _ClassVar[int]
    LAST_FILL_QTY_DECIMAL_FIELD_NUMBER: _ClassVar[int]
    NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    EXTENDED_HOURS_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_PRICE_FIELD_NUMBER: _ClassVar[int]
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    symbol: str
    side: str
    type: str
    status: str
    qty: int
    filled_qty: int
    limit_price: int
    last_fill_qty: int
    last_fill_price: int
    avg_fill_price: int
    reason: str
    version: int
    event_time_ns: int
    qty_decimal: str
    filled_qty_decimal: str
    last_fill_qty_decimal: str
    notional: str
    time_in_force: str
    extended_hours: bool
    stop_price: int
    trail_percent: str
    trail_price: int
    triggered_at_ns: int
    trigger_price: int
    replaces: str
    replaced_by: str
    def __init__(self, order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[str] = ..., qty: _Optional[int] = ..., filled_qty: _Optional[int] = ..., limit_price: _Optional[int] = ..., last_fill_qty: _Optional[int] = ..., last_fill_price: _Optional[int] = ..., avg_fill_price: _Optional[int] = ..., reason: _Optional[str] = ..., version: _Optional[int] = ..., event_time_ns: _Optional[int] = ..., qty_decimal: _Optional[str] = ..., filled_qty_decimal: _Optional[str] = ..., last_fill_qty_decimal: _Optional[str] = ..., notional: _Optional[str] = ..., time_in_force: _Optional[str] = ..., extended_hours: _Optional[bool] = ..., stop_price: _Optional[int] = ..., trail_percent: _Optional[str] = ..., trail_price: _Optional[int] = ..., triggered_at_ns: _Optional[int] = ..., trigger_price: _Optional[int] = ..., replaces: _Optional[str] = ..., replaced_by: _Optional[str] = ...) -> None: ...

class AccountUpdate(_message.Message):
    __slots__ = ("version", "event_time_ns", "cash", "buying_power", "settled_cash", "unsettled_cash", "withdrawable", "positions", "snapshot", "cash_held")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    CASH_FIELD_NUMBER: _ClassVar[int]
    BUYING_POWER_FIELD_NUMBER: _ClassVar[int]
    SETTLED_CASH_FIELD_NUMBER: _ClassVar[int]
    UNSETTLED_CASH_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWABLE_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CASH_HELD_FIELD_NUMBER: _ClassVar[int]
    version: int
    event_time_ns: int
    cash: str
    buying_power: str
    settled_cash: str
    unsettled_cash: str
    withdrawable: str
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    snapshot: bool
    cash_held: str
    def __init__(self, version: _Optional[int] = ..., event_time_ns: _Optional[int] = ..., cash: _Optional[str] = ..., buying_power: _Optional[str] = ..., settled_cash: _Optional[str] = ..., unsettled_cash: _Optional[str] = ..., withdrawable: _Optional[str] = ..., positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ..., snapshot: _Optional[bool] = ..., cash_held: _Optional[str] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("symbol", "qty", "qty_held", "cost_basis", "avg_entry_price")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    QTY_HELD_FIELD_NUMBER: _ClassVar[int]
    COST_BASIS_FIELD_NUMBER: _ClassVar[int]
    AVG_ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    qty: str
    qty_held: str
    cost_basis: str
    avg_entry_price: str
    def __init__(self, symbol: _Optional[str] = ..., qty: _Optional[str] = ..., qty_held: _Optional[str] = ..., cost_basis: _Optional[str] = ..., avg_entry_price: _Optional[str] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("symbol", "seq", "bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume", "exchange_time_ns", "halted", "stale", "trading_state", "trading_reason")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    LAST_SIZE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    HALTED_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    TRADING_REASON_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    seq: int
    bid_price: int
    bid_size: int
    ask_price: int
    ask_size: int
    last_price: int
    last_size: int
    volume: int
    exchange_time_ns: int
    halted: bool
    stale: bool
    trading_state: str
    trading_reason: str
    def __init__(self, symbol: _Optional[str] = ..., seq: _Optional[int] = ..., bid_price: _Optional[int] = ..., bid_size: _Optional[int] = ..., ask_price: _Optional[int] = ..., ask_size: _Optional[int] = ..., last_price: _Optional[int] = ..., last_size: _Optional[int] = ..., volume: _Optional[int] = ..., exchange_time_ns: _Optional[int] = ..., halted: _Optional[bool] = ..., stale: _Optional[bool] = ..., trading_state: _Optional[str] = ..., trading_reason: _Optional[str] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("quotes", "send_time_ns")
    QUOTES_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    quotes: _containers.RepeatedCompositeFieldContainer[Quote]
    send_time_ns: int
    def __init__(self, quotes: _Optional[_Iterable[_Union[Quote, _Mapping]]] = ..., send_time_ns: _Optional[int] = ...) -> None: ...

class QuoteBatch(_message.Message):
    __slots__ = ("quotes", "send_time_ns")
    QUOTES_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    quotes: _containers.RepeatedCompositeFieldContainer[Quote]
    send_time_ns: int
    def __init__(self, quotes: _Optional[_Iterable[_Union[Quote, _Mapping]]] = ..., send_time_ns: _Optional[int] = ...) -> None: ...

class Level(_message.Message):
    __slots__ = ("price", "size")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    price: int
    size: int
    def __init__(self, price: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class Depth(_message.Message):
    __slots__ = ("symbol", "seq", "bids", "asks", "exchange_time_ns", "halted", "stale")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    HALTED_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    seq: int
    bids: _containers.RepeatedCompositeFieldContainer[Level]
    asks: _containers.RepeatedCompositeFieldContainer[Level]
    exchange_time_ns: int
    halted: bool
    stale: bool
    def __init__(self, symbol: _Optional[str] = ..., seq: _Optional[int] = ..., bids: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., exchange_time_ns: _Optional[int] = ..., halted: _Optional[bool] = ..., stale: _Optional[bool] = ...) -> None: ...

class DepthBatch(_message.Message):
    __slots__ = ("books", "snapshot", "send_time_ns")
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    books: _containers.RepeatedCompositeFieldContainer[Depth]
    snapshot: bool
    send_time_ns: int
    def __init__(self, books: _Optional[_Iterable[_Union[Depth, _Mapping]]] = ..., snapshot: _Optional[bool] = ..., send_time_ns: _Optional[int] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("symbol", "seq", "price", "size", "exchange_time_ns", "match_number", "trade_seq", "aggressor", "printable", "cross")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    MATCH_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRADE_SEQ_FIELD_NUMBER: _ClassVar[int]
    AGGRESSOR_FIELD_NUMBER: _ClassVar[int]
    PRINTABLE_FIELD_NUMBER: _ClassVar[int]
    CROSS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    seq: int
    price: int
    size: int
    exchange_time_ns: int
    match_number: int
    trade_seq: int
    aggressor: str
    printable: bool
    cross: str
    def __init__(self, symbol: _Optional[str] = ..., seq: _Optional[int] = ..., price: _Optional[int] = ..., size: _Optional[int] = ..., exchange_time_ns: _Optional[int] = ..., match_number: _Optional[int] = ..., trade_seq: _Optional[int] = ..., aggressor: _Optional[str] = ..., printable: _Optional[bool] = ..., cross: _Optional[str] = ...) -> None: ...

class TradeBatch(_message.Message):
    __slots__ = ("trades", "send_time_ns")
    TRADES_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    trades: _containers.RepeatedCompositeFieldContainer[Trade]
    send_time_ns: int
    def __init__(self, trades: _Optional[_Iterable[_Union[Trade, _Mapping]]] = ..., send_time_ns: _Optional[int] = ...) -> None: ...

class Bar(_message.Message):
    __slots__ = ("symbol", "interval", "start_time_ns", "open", "high", "low", "close", "volume", "trades", "vwap", "notional", "state", "version")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    VWAP_FIELD_NUMBER: _ClassVar[int]
    NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    interval: str
    start_time_ns: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int
    vwap: int
    notional: int
    state: str
    version: int
    def __init__(self, symbol: _Optional[str] = ..., interval: _Optional[str] = ..., start_time_ns: _Optional[int] = ..., open: _Optional[int] = ..., high: _Optional[int] = ..., low: _Optional[int] = ..., close: _Optional[int] = ..., volume: _Optional[int] = ..., trades: _Optional[int] = ..., vwap: _Optional[int] = ..., notional: _Optional[int] = ..., state: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class BarBatch(_message.Message):
    __slots__ = ("bars", "snapshot", "send_time_ns")
    BARS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    bars: _containers.RepeatedCompositeFieldContainer[Bar]
    snapshot: bool
    send_time_ns: int
    def __init__(self, bars: _Optional[_Iterable[_Union[Bar, _Mapping]]] = ..., snapshot: _Optional[bool] = ..., send_time_ns: _Optional[int] = ...) -> None: ...

class SymbolStatus(_message.Message):
    __slots__ = ("symbol", "trading_state", "reason", "reg_sho", "luld_reference_price", "luld_upper_price", "luld_lower_price", "luld_extensions", "ipo_release_time_ns", "ipo_qualifier", "ipo_price", "operational_halt", "event_time_ns", "version")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REG_SHO_FIELD_NUMBER: _ClassVar[int]
    LULD_REFERENCE_PRICE_FIELD_NUMBER: _ClassVar[int]
    LULD_UPPER_PRICE_FIELD_NUMBER: _ClassVar[int]
    LULD_LOWER_PRICE_FIELD_NUMBER: _ClassVar[int]
    LULD_EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    IPO_RELEASE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    IPO_QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    IPO_PRICE_FIELD_NUMBER: _ClassVar[int]
    OPERATIONAL_HALT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    trading_state: str
    reason: str
    reg_sho: str
    luld_reference_price: int
    luld_upper_price: int
    luld_lower_price: int
    luld_extensions: int
    ipo_release_time_ns: int
    ipo_qualifier: str
    ipo_price: int
    operational_halt: bool
    event_time_ns: int
    version: int
    def __init__(self, symbol: _Optional[str] = ..., trading_state: _Optional[str] = ..., reason: _Optional[str] = ..., reg_sho: _Optional[str] = ..., luld_reference_price: _Optional[int] = ..., luld_upper_price: _Optional[int] = ..., luld_lower_price: _Optional[int] = ..., luld_extensions: _Optional[int] = ..., ipo_release_time_ns: _Optional[int] = ..., ipo_qualifier: _Optional[str] = ..., ipo_price: _Optional[int] = ..., operational_halt: _Optional[bool] = ..., event_time_ns: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class MarketStatus(_message.Message):
    __slots__ = ("system_event", "market_open", "mwcb_level1", "mwcb_level2", "mwcb_level3", "mwcb_breached", "event_time_ns", "version")
    SYSTEM_EVENT_FIELD_NUMBER: _ClassVar[int]
    MARKET_OPEN_FIELD_NUMBER: _ClassVar[int]
    MWCB_LEVEL1_FIELD_NUMBER: _ClassVar[int]
    MWCB_LEVEL2_FIELD_NUMBER: _ClassVar[int]
    MWCB_LEVEL3_FIELD_NUMBER: _ClassVar[int]
    MWCB_BREACHED_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    system_event: str
    market_open: bool
    mwcb_level1: int
    mwcb_level2: int
    mwcb_level3: int
    mwcb_breached: str
    event_time_ns: int
    version: int
    def __init__(self, system_event: _Optional[str] = ..., market_open: _Optional[bool] = ..., mwcb_level1: _Optional[int] = ..., mwcb_level2: _Optional[int] = ..., mwcb_level3: _Optional[int] = ..., mwcb_breached: _Optional[str] = ..., event_time_ns: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class StatusBatch(_message.Message):
    __slots__ = ("market", "symbols", "snapshot", "send_time_ns")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    market: MarketStatus
    symbols: _containers.RepeatedCompositeFieldContainer[SymbolStatus]
    snapshot: bool
    send_time_ns: int
    def __init__(self, market: _Optional[_Union[MarketStatus, _Mapping]] = ..., symbols: _Optional[_Iterable[_Union[SymbolStatus, _Mapping]]] = ..., snapshot: _Optional[bool] = ..., send_time_ns: _Optional[int] = ...) -> None: ...

class Recovered(_message.Message):
    __slots__ = ("symbol", "verdict", "missing_from_trade_seq", "missing_to_trade_seq", "epoch_changed", "reason")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    MISSING_FROM_TRADE_SEQ_FIELD_NUMBER: _ClassVar[int]
    MISSING_TO_TRADE_SEQ_FIELD_NUMBER: _ClassVar[int]
    EPOCH_CHANGED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    verdict: str
    missing_from_trade_seq: int
    missing_to_trade_seq: int
    epoch_changed: bool
    reason: str
    def __init__(self, symbol: _Optional[str] = ..., verdict: _Optional[str] = ..., missing_from_trade_seq: _Optional[int] = ..., missing_to_trade_seq: _Optional[int] = ..., epoch_changed: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class Liveness(_message.Message):
    __slots__ = ("symbol", "seq", "last_event_time_ns", "feed_state")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    FEED_STATE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    seq: int
    last_event_time_ns: int
    feed_state: str
    def __init__(self, symbol: _Optional[str] = ..., seq: _Optional[int] = ..., last_event_time_ns: _Optional[int] = ..., feed_state: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("server_time_ns", "resume_token", "symbols", "tier", "max_rate_hz")
    SERVER_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MAX_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    server_time_ns: int
    resume_token: str
    symbols: _containers.RepeatedCompositeFieldContainer[Liveness]
    tier: int
    max_rate_hz: float
    def __init__(self, server_time_ns: _Optional[int] = ..., resume_token: _Optional[str] = ..., symbols: _Optional[_Iterable[_Union[Liveness, _Mapping]]] = ..., tier: _Optional[int] = ..., max_rate_hz: _Optional[float] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class Subscribed(_message.Message):
    __slots__ = ("symbols", "channels", "resume_token", "protocol_version", "tier", "max_rate_hz")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MAX_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    resume_token: str
    protocol_version: int
    tier: int
    max_rate_hz: float
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ..., resume_token: _Optional[str] = ..., protocol_version: _Optional[int] = ..., tier: _Optional[int] = ..., max_rate_hz: _Optional[float] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "symbols")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ...) -> None: ...
