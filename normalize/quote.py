"""The quote view, declared once: the top of book of one locate, and every form an edge hands it on in.

A ``QuoteView`` is read from any ``BookSource`` (``read_quote``) and converted here, and only here, into:

- the protobuf ``Quote`` of the stream (``to_pb``; its field names are the view's, so ``from_pb`` is the way
  back, for a node fed from Redis);
- the JSON record of ``/v1/quotes`` (``record``): prices as exact decimal strings, ``null`` for an empty
  side or no trade yet, sizes and times as integers;
- the Redis hash ``quote:{SYMBOL}`` (``hash_fields``): the record's values as strings, "" for null;
- back from a record or a hash (``parse``: str or bytes keys and values, or the JSON types), for the Redis
  replica, the order API's pre-trade checks and the FIX market maker;
- into a row (``write``), for a replica that keeps its own arrays.

``DepthView`` does the same for the price levels of one locate (``/v1/depth`` and the depth channel).
Pure: no I/O.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, NamedTuple

from tickfan_proto import stream_pb2 as pb
from vocab.digits import parse_ascii_int
from vocab.prices import format_price, parse_price

from .row import DEPTH_LEVELS, BookRow
from .source import BookSource
from .status import pack_reason, unpack_reason

# building a view straight from its tuple skips NamedTuple.__new__'s argument handling: the fan-out builds one
# per changed symbol per flush, and with ``.item`` reads this keeps build_quote as fast as it was before the view
_new = tuple.__new__


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


class QuoteView(NamedTuple):
    """One locate's top of book. Prices are int64 fixed point (4 implied decimals), 0 when absent."""

    symbol: str | None
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
    trading_state: str  # "T" | "H" | "P" | "Q", "" before the feed said (``normalize.status``)
    trading_reason: str

    # ------------------------------------------------------------------ out
    def to_pb(self) -> pb.Quote:
        symbol, seq, bp, bs, ap, asz, lp, ls, volume, et, halted, stale, state, reason = self
        return pb.Quote(symbol=symbol or "", seq=seq, bid_price=bp, bid_size=bs, ask_price=ap, ask_size=asz,
                        last_price=lp, last_size=ls, volume=volume, exchange_time_ns=et, halted=halted,
                        stale=stale, trading_state=state, trading_reason=reason)

    def record(self) -> dict[str, Any]:
        """The JSON-ready record: prices as exact strings (None when absent), sizes and times as integers."""
        values: list[Any] = list(self)
        for i in _PRICE_INDEX:
            price = values[i]
            values[i] = format_price(price) if price else None
        return dict(zip(_FIELDS, values, strict=True))

    def hash_fields(self) -> dict[str, str]:
        """The Redis hash ``quote:{SYMBOL}``: the record's values as strings, "" for None."""
        return {k: "" if v is None else str(v) for k, v in self.record().items()}

    def write(self, row: BookRow, locate: int) -> None:
        """Set ``locate``'s row to this quote (its name and directory flags are the caller's)."""
        row.bid_price[locate], row.bid_size[locate] = self.bid_price, self.bid_size
        row.ask_price[locate], row.ask_size[locate] = self.ask_price, self.ask_size
        row.last_price[locate], row.last_size[locate] = self.last_price, self.last_size
        row.volume[locate], row.exchange_time[locate] = self.volume, self.exchange_time_ns
        row.halted[locate], row.stale[locate] = self.halted, self.stale
        row.trading_state[locate] = ord(self.trading_state[0]) if self.trading_state else 0
        row.trading_reason[locate] = pack_reason(self.trading_reason)
        row.seq[locate] = self.seq

    # ------------------------------------------------------------------ in
    @classmethod
    def from_pb(cls, q: pb.Quote) -> QuoteView:
        return cls._make(getattr(q, name) for name in cls._fields)

    @classmethod
    def parse(cls, fields: Mapping[Any, Any]) -> QuoteView:
        """A record or a Redis hash (str or bytes keys and values, or JSON's types) as a view; a missing or
        empty field is absent (0, False). Raises ValueError on a malformed price or integer."""
        h = {_text(k): _text(v) for k, v in fields.items()}
        values: list[Any] = []
        for name, kind in _KINDS:
            t = h.get(name, "")
            if kind is bool:
                values.append(t in ("True", "true", "1"))
            elif kind is str:
                values.append(t)
            elif kind is not int:
                values.append(t or None)
            elif name in _PRICES:
                values.append(parse_price(t) if t else 0)
            else:
                values.append(parse_ascii_int(t) if t else 0)
        return cls._make(values)


_FIELDS = QuoteView._fields
_PRICES = ("bid_price", "ask_price", "last_price")
_PRICE_INDEX = tuple(_FIELDS.index(name) for name in _PRICES)
_KINDS = tuple(typing.get_type_hints(QuoteView).items())  # (name, type) in field order


def read_quote(books: BookSource, locate: int) -> QuoteView:
    """``locate``'s quote as the books hold it now (``.item`` reads a plain int straight from the array)."""
    return _new(QuoteView, (
        books.symbol_of[locate], books.seq.item(locate),
        books.bid_price.item(locate), books.bid_size.item(locate),
        books.ask_price.item(locate), books.ask_size.item(locate),
        books.last_price.item(locate), books.last_size.item(locate),
        books.volume.item(locate), books.exchange_time.item(locate),
        books.halted.item(locate), books.stale.item(locate),
        chr(state) if (state := books.trading_state.item(locate)) else "",
        unpack_reason(books.trading_reason.item(locate)),
    ))


class DepthView(NamedTuple):
    """One locate's best price levels a side, best first, as (price, size)."""

    symbol: str | None
    seq: int  # the depth version (``depth_seq``)
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    exchange_time_ns: int
    halted: bool
    stale: bool

    def to_pb(self) -> pb.Depth:
        symbol, seq, bids, asks, et, halted, stale = self
        level = pb.Level
        return pb.Depth(symbol=symbol or "", seq=seq, bids=[level(price=p, size=n) for p, n in bids],
                        asks=[level(price=p, size=n) for p, n in asks], exchange_time_ns=et, halted=halted,
                        stale=stale)

    def record(self) -> dict[str, Any]:
        rec = self._asdict()
        for side in ("bids", "asks"):
            rec[side] = [{"price": format_price(p), "size": n} for p, n in rec[side]]
        return rec


def read_depth(books: BookSource, locate: int, levels: int = DEPTH_LEVELS) -> DepthView:
    return _new(DepthView, (books.symbol_of[locate], books.depth_seq.item(locate), books.levels(locate, 0, levels),
                            books.levels(locate, 1, levels), books.exchange_time.item(locate),
                            books.halted.item(locate), books.stale.item(locate)))
