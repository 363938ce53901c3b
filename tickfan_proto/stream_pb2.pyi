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
    __slots__ = ("symbols", "channels")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

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
    __slots__ = ("snapshot", "quotes", "trades", "heartbeat", "error", "pong", "subscribed", "depth", "order_update", "refreshed", "revoked")
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
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., quotes: _Optional[_Union[QuoteBatch, _Mapping]] = ..., trades: _Optional[_Union[TradeBatch, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., subscribed: _Optional[_Union[Subscribed, _Mapping]] = ..., depth: _Optional[_Union[DepthBatch, _Mapping]] = ..., order_update: _Optional[_Union[OrderUpdate, _Mapping]] = ..., refreshed: _Optional[_Union[Refreshed, _Mapping]] = ..., revoked: _Optional[_Union[Revoked, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("order_id", "symbol", "side", "type", "status", "qty", "filled_qty", "limit_price", "last_fill_qty", "last_fill_price", "avg_fill_price", "reason", "version", "event_time_ns")
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
    def __init__(self, order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[str] = ..., qty: _Optional[int] = ..., filled_qty: _Optional[int] = ..., limit_price: _Optional[int] = ..., last_fill_qty: _Optional[int] = ..., last_fill_price: _Optional[int] = ..., avg_fill_price: _Optional[int] = ..., reason: _Optional[str] = ..., version: _Optional[int] = ..., event_time_ns: _Optional[int] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("symbol", "seq", "bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume", "exchange_time_ns", "halted", "stale")
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
    def __init__(self, symbol: _Optional[str] = ..., seq: _Optional[int] = ..., bid_price: _Optional[int] = ..., bid_size: _Optional[int] = ..., ask_price: _Optional[int] = ..., ask_size: _Optional[int] = ..., last_price: _Optional[int] = ..., last_size: _Optional[int] = ..., volume: _Optional[int] = ..., exchange_time_ns: _Optional[int] = ..., halted: _Optional[bool] = ..., stale: _Optional[bool] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("quotes",)
    QUOTES_FIELD_NUMBER: _ClassVar[int]
    quotes: _containers.RepeatedCompositeFieldContainer[Quote]
    def __init__(self, quotes: _Optional[_Iterable[_Union[Quote, _Mapping]]] = ...) -> None: ...

class QuoteBatch(_message.Message):
    __slots__ = ("quotes",)
    QUOTES_FIELD_NUMBER: _ClassVar[int]
    quotes: _containers.RepeatedCompositeFieldContainer[Quote]
    def __init__(self, quotes: _Optional[_Iterable[_Union[Quote, _Mapping]]] = ...) -> None: ...

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
    __slots__ = ("books", "snapshot")
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    books: _containers.RepeatedCompositeFieldContainer[Depth]
    snapshot: bool
    def __init__(self, books: _Optional[_Iterable[_Union[Depth, _Mapping]]] = ..., snapshot: _Optional[bool] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("symbol", "seq", "price", "size", "exchange_time_ns", "match_number")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    MATCH_NUMBER_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    seq: int
    price: int
    size: int
    exchange_time_ns: int
    match_number: int
    def __init__(self, symbol: _Optional[str] = ..., seq: _Optional[int] = ..., price: _Optional[int] = ..., size: _Optional[int] = ..., exchange_time_ns: _Optional[int] = ..., match_number: _Optional[int] = ...) -> None: ...

class TradeBatch(_message.Message):
    __slots__ = ("trades",)
    TRADES_FIELD_NUMBER: _ClassVar[int]
    trades: _containers.RepeatedCompositeFieldContainer[Trade]
    def __init__(self, trades: _Optional[_Iterable[_Union[Trade, _Mapping]]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("server_time_ns",)
    SERVER_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    server_time_ns: int
    def __init__(self, server_time_ns: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class Subscribed(_message.Message):
    __slots__ = ("symbols", "channels")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "symbols")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ...) -> None: ...
