"""Nasdaq TotalView-ITCH 5.0 codec (pure): bytes <-> ``ingest.messages`` NamedTuples.

Layouts are the specification's, big-endian. Every message starts with the same 11-byte header:
Message Type (1), Stock Locate (2), Tracking Number (2), Timestamp (6). The 6-byte timestamp is read as a
2-byte and a 4-byte integer and combined, so decoding needs no slicing per message.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from .messages import (
    AddOrder,
    BrokenTrade,
    CrossTrade,
    IpoQuotingPeriod,
    LuldAuctionCollar,
    Message,
    MwcbDeclineLevel,
    MwcbStatus,
    OperationalHalt,
    OrderCancel,
    OrderDelete,
    OrderExecuted,
    OrderExecutedWithPrice,
    OrderReplace,
    RegSho,
    StockDirectory,
    SystemEvent,
    Trade,
    TradingAction,
)


class ItchError(ValueError):
    """A message that cannot be decoded; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Header: type(c) locate(H) tracking(H) timestamp-high(H) timestamp-low(I) = 11 bytes.
_H = ">cHHHI"
# type -> (struct for the whole message, message length)
STRUCTS: dict[bytes, struct.Struct] = {
    b"S": struct.Struct(_H + "c"),
    b"R": struct.Struct(_H + "8sccIcc2scccccIc"),
    b"H": struct.Struct(_H + "8scc4s"),
    b"Y": struct.Struct(_H + "8sc"),
    b"V": struct.Struct(_H + "QQQ"),
    b"W": struct.Struct(_H + "c"),
    b"K": struct.Struct(_H + "8sIcI"),
    b"J": struct.Struct(_H + "8sIIII"),
    b"h": struct.Struct(_H + "8scc"),
    b"A": struct.Struct(_H + "QcI8sI"),
    b"F": struct.Struct(_H + "QcI8sI4s"),
    b"E": struct.Struct(_H + "QIQ"),
    b"C": struct.Struct(_H + "QIQcI"),
    b"X": struct.Struct(_H + "QI"),
    b"D": struct.Struct(_H + "Q"),
    b"U": struct.Struct(_H + "QQII"),
    b"P": struct.Struct(_H + "QcI8sIQ"),
    b"Q": struct.Struct(_H + "Q8sIQc"),
    b"B": struct.Struct(_H + "Q"),
}
LENGTHS: dict[int, int] = {t[0]: s.size for t, s in STRUCTS.items()}


_STR: dict[bytes, str] = {bytes([i]): chr(i) for i in range(256)}  # one-byte codes, verbatim
_STOCKS: dict[bytes, str] = {}
_new = tuple.__new__  # builds a NamedTuple without the Python-level __new__ frame (hot path)


def _s(b: bytes) -> str:
    return b.decode("latin-1").rstrip(" ")


def _stock(b: bytes) -> str:
    # Names repeat on every message: remember them (bounded by the 65,536 locates, with room for renames).
    text = _STOCKS.get(b)
    if text is None:
        text = _s(b)
        if len(_STOCKS) < 70_000:
            _STOCKS[b] = text
    return text


_ALPHA: dict[tuple[str, int], bytes] = {}


def _a(text: str, width: int) -> bytes:
    # Stock names repeat on every message: remember their padded bytes (bounded by the 65,536 locates).
    key = (text, width)
    out = _ALPHA.get(key)
    if out is None:
        out = text.encode("latin-1").ljust(width, b" ")[:width]
        if len(_ALPHA) < 70_000:
            _ALPHA[key] = out
    return out


def _c(text: str) -> bytes:
    return text.encode("latin-1")[:1] or b" "


# One decoder per type: unpacked tuple -> message; f[3], f[4] are the timestamp's high 2 and low 4 bytes.
# Alpha fields wider than one byte lose their padding; one-byte codes are kept verbatim (a space is a code:
# "not available"), so decode(encode(m)) == m for every message whose alpha fields carry no trailing space.
def _dec_s(f: tuple[Any, ...]) -> Message:
    return _new(SystemEvent, (f[1], f[2], (f[3] << 32) | f[4], _STR[f[5]]))


def decode_directory(f: tuple[Any, ...]) -> StockDirectory:
    s = _STR
    return _new(StockDirectory, (f[1], f[2], (f[3] << 32) | f[4], _stock(f[5]), s[f[6]], s[f[7]], f[8], s[f[9]],
                                 s[f[10]], _s(f[11]), s[f[12]], s[f[13]], s[f[14]], s[f[15]], s[f[16]], f[17],
                                 s[f[18]]))


def _dec_h(f: tuple[Any, ...]) -> Message:
    return _new(TradingAction, (f[1], f[2], (f[3] << 32) | f[4], _stock(f[5]), _STR[f[6]], _STR[f[7]],
                                _s(f[8])))


def _dec_y(f: tuple[Any, ...]) -> Message:
    return _new(RegSho, (f[1], f[2], (f[3] << 32) | f[4], _stock(f[5]), _STR[f[6]]))


def _dec_v(f: tuple[Any, ...]) -> Message:
    return _new(MwcbDeclineLevel, (f[1], f[2], (f[3] << 32) | f[4], f[5], f[6], f[7]))


def _dec_w(f: tuple[Any, ...]) -> Message:
    return _new(MwcbStatus, (f[1], f[2], (f[3] << 32) | f[4], _STR[f[5]]))


def _dec_k(f: tuple[Any, ...]) -> Message:
    return _new(IpoQuotingPeriod, (f[1], f[2], (f[3] << 32) | f[4], _stock(f[5]), f[6], _STR[f[7]], f[8]))


def _dec_j(f: tuple[Any, ...]) -> Message:
    return _new(LuldAuctionCollar, (f[1], f[2], (f[3] << 32) | f[4], _stock(f[5]), f[6], f[7], f[8], f[9]))


def _dec_oh(f: tuple[Any, ...]) -> Message:
    return _new(OperationalHalt, (f[1], f[2], (f[3] << 32) | f[4], _stock(f[5]), _STR[f[6]], _STR[f[7]]))


def _dec_a(f: tuple[Any, ...]) -> Message:
    return _new(AddOrder, (f[1], f[2], (f[3] << 32) | f[4], f[5], _STR[f[6]], f[7],
                           _STOCKS.get(f[8]) or _stock(f[8]), f[9], None))


def _dec_f(f: tuple[Any, ...]) -> Message:
    return _new(AddOrder, (f[1], f[2], (f[3] << 32) | f[4], f[5], _STR[f[6]], f[7],
                           _STOCKS.get(f[8]) or _stock(f[8]), f[9], _stock(f[10])))


def _dec_e(f: tuple[Any, ...]) -> Message:
    return _new(OrderExecuted, (f[1], f[2], (f[3] << 32) | f[4], f[5], f[6], f[7]))


def _dec_c(f: tuple[Any, ...]) -> Message:
    return _new(OrderExecutedWithPrice, (f[1], f[2], (f[3] << 32) | f[4], f[5], f[6], f[7], _STR[f[8]], f[9]))


def _dec_x(f: tuple[Any, ...]) -> Message:
    return _new(OrderCancel, (f[1], f[2], (f[3] << 32) | f[4], f[5], f[6]))


def _dec_d(f: tuple[Any, ...]) -> Message:
    return _new(OrderDelete, (f[1], f[2], (f[3] << 32) | f[4], f[5]))


def _dec_u(f: tuple[Any, ...]) -> Message:
    return _new(OrderReplace, (f[1], f[2], (f[3] << 32) | f[4], f[5], f[6], f[7], f[8]))


def _dec_p(f: tuple[Any, ...]) -> Message:
    return _new(Trade, (f[1], f[2], (f[3] << 32) | f[4], f[5], _STR[f[6]], f[7], _STOCKS.get(f[8]) or _stock(f[8]),
                        f[9], f[10]))


def _dec_q(f: tuple[Any, ...]) -> Message:
    return _new(CrossTrade, (f[1], f[2], (f[3] << 32) | f[4], f[5], _stock(f[6]), f[7], f[8], _STR[f[9]]))


def _dec_b(f: tuple[Any, ...]) -> Message:
    return _new(BrokenTrade, (f[1], f[2], (f[3] << 32) | f[4], f[5]))


Unpack = Callable[[Any, int], tuple[Any, ...]]
Build = Callable[[tuple[Any, ...]], Message]
# type byte -> (unpack_from, message length, build): the table the feed session's decode loop runs on
DECODERS: dict[int, tuple[Unpack, int, Build]] = {
    t[0]: (STRUCTS[t].unpack_from, STRUCTS[t].size, fn)
    for t, fn in ((b"S", _dec_s), (b"R", decode_directory), (b"H", _dec_h), (b"A", _dec_a), (b"F", _dec_f),
                  (b"E", _dec_e), (b"C", _dec_c), (b"X", _dec_x), (b"D", _dec_d), (b"U", _dec_u),
                  (b"P", _dec_p), (b"Q", _dec_q), (b"B", _dec_b), (b"Y", _dec_y), (b"V", _dec_v),
                  (b"W", _dec_w), (b"K", _dec_k), (b"J", _dec_j), (b"h", _dec_oh))
}


def decode(buf: bytes | bytearray | memoryview, offset: int = 0, length: int | None = None) -> Message:
    """Decode the message at ``buf[offset:offset+length]`` (length defaults to the rest of ``buf``).

    Raises ItchError('truncated' | 'unknown_type' | 'bad_length'). A message longer than its type's layout
    is a 'bad_length' too: MoldUDP64 gives every message its length, so a mismatch means a broken stream.
    """
    if length is None:
        length = len(buf) - offset
    if length <= 0:
        raise ItchError("truncated", "empty message")
    if offset < 0 or offset + length > len(buf):  # hostile offsets: never an IndexError, never a wrap-around
        raise ItchError("truncated", f"message at {offset} of {length} bytes lies outside the buffer")
    entry = DECODERS.get(buf[offset])
    if entry is None:
        raise ItchError("unknown_type", f"unknown ITCH message type {bytes([buf[offset]])!r}")
    unpack, size, build = entry
    if length != size:
        code = "truncated" if length < size else "bad_length"
        raise ItchError(code, f"message type {chr(buf[offset])!r} needs {size} bytes, got {length}")
    return build(unpack(buf, offset))


def _ts(m: Any) -> tuple[int, int]:
    ts = int(m.timestamp)
    return (ts >> 32) & 0xFFFF, ts & 0xFFFFFFFF


def _enc_add(m: Any) -> bytes:
    hi, lo = _ts(m)
    if m.attribution is None:
        return _PACK[b"A"](b"A", m.locate, m.tracking, hi, lo, m.order_ref, _c(m.side), m.shares,
                           _a(m.stock, 8), m.price)
    return _PACK[b"F"](b"F", m.locate, m.tracking, hi, lo, m.order_ref, _c(m.side), m.shares, _a(m.stock, 8),
                       m.price, _a(m.attribution, 4))


_PACK = {t: s.pack for t, s in STRUCTS.items()}
# type -> (ITCH type byte, the fields after the header, as bytes-ready values)
_FIELDS: dict[type, tuple[bytes, Callable[[Any], tuple[Any, ...]]]] = {
    OrderExecuted: (b"E", lambda m: (m.order_ref, m.executed_shares, m.match_number)),
    OrderExecutedWithPrice: (b"C", lambda m: (m.order_ref, m.executed_shares, m.match_number,
                                              _c(m.printable), m.execution_price)),
    OrderCancel: (b"X", lambda m: (m.order_ref, m.cancelled_shares)),
    OrderDelete: (b"D", lambda m: (m.order_ref,)),
    OrderReplace: (b"U", lambda m: (m.original_order_ref, m.new_order_ref, m.shares, m.price)),
    Trade: (b"P", lambda m: (m.order_ref, _c(m.side), m.shares, _a(m.stock, 8), m.price, m.match_number)),
    CrossTrade: (b"Q", lambda m: (m.shares, _a(m.stock, 8), m.cross_price, m.match_number, _c(m.cross_type))),
    BrokenTrade: (b"B", lambda m: (m.match_number,)),
    SystemEvent: (b"S", lambda m: (_c(m.event_code),)),
    StockDirectory: (b"R", lambda m: (_a(m.stock, 8), _c(m.market_category), _c(m.financial_status),
                                      m.round_lot_size, _c(m.round_lots_only), _c(m.issue_classification),
                                      _a(m.issue_subtype, 2), _c(m.authenticity), _c(m.short_sale_threshold),
                                      _c(m.ipo_flag), _c(m.luld_tier), _c(m.etp_flag), m.etp_leverage_factor,
                                      _c(m.inverse_indicator))),
    TradingAction: (b"H", lambda m: (_a(m.stock, 8), _c(m.trading_state), _c(m.reserved), _a(m.reason, 4))),
    RegSho: (b"Y", lambda m: (_a(m.stock, 8), _c(m.action))),
    MwcbDeclineLevel: (b"V", lambda m: (m.level1, m.level2, m.level3)),
    MwcbStatus: (b"W", lambda m: (_c(m.breached_level),)),
    IpoQuotingPeriod: (b"K", lambda m: (_a(m.stock, 8), m.release_time, _c(m.release_qualifier), m.ipo_price)),
    LuldAuctionCollar: (b"J", lambda m: (_a(m.stock, 8), m.reference_price, m.upper_price, m.lower_price,
                                         m.extension)),
    OperationalHalt: (b"h", lambda m: (_a(m.stock, 8), _c(m.market_code), _c(m.action))),
}


def encode(m: Message) -> bytes:
    """Encode one message to its exact ITCH 5.0 bytes."""
    kind = type(m)
    if kind is AddOrder:
        return _enc_add(m)
    entry = _FIELDS.get(kind)
    if entry is None:
        raise TypeError(f"not an ITCH message: {kind.__name__}")
    t, fields = entry
    hi, lo = _ts(m)
    return _PACK[t](t, m.locate, m.tracking, hi, lo, *fields(m))
