"""One symbol's top of book as a plain record with exact decimal-string prices (pure)."""

from __future__ import annotations

from typing import Any

from normalize.source import BookSource
from vocab.prices import format_price


def quote_record(books: BookSource, locate: int) -> dict[str, Any]:
    """The JSON-ready quote of one known locate; prices as exact strings, sizes and times as integers."""
    bid = int(books.bid_price[locate])
    ask = int(books.ask_price[locate])
    last = int(books.last_price[locate])
    return {
        "symbol": books.symbol_of[locate],
        "seq": int(books.seq[locate]),
        "bid_price": format_price(bid) if bid else None,
        "bid_size": int(books.bid_size[locate]),
        "ask_price": format_price(ask) if ask else None,
        "ask_size": int(books.ask_size[locate]),
        "last_price": format_price(last) if last else None,
        "last_size": int(books.last_size[locate]),
        "volume": int(books.volume[locate]),
        "exchange_time_ns": int(books.exchange_time[locate]),
        "halted": bool(books.halted[locate]),
        "stale": bool(books.stale[locate]),
    }


def depth_record(books: BookSource, locate: int, levels: int) -> dict[str, Any]:
    """The JSON-ready depth of one known locate: best ``levels`` price levels a side, best first."""
    def side(n: int) -> list[dict[str, Any]]:
        return [{"price": format_price(p), "size": size} for p, size in books.levels(locate, n, levels)]

    return {
        "symbol": books.symbol_of[locate],
        "seq": int(books.depth_seq[locate]),
        "bids": side(0),
        "asks": side(1),
        "exchange_time_ns": int(books.exchange_time[locate]),
        "halted": bool(books.halted[locate]),
        "stale": bool(books.stale[locate]),
    }
