"""Snapshot and trade frames by concatenation equal protobuf's own, and JSON frames are canonical."""

from __future__ import annotations

import json

import numpy as np
from google.protobuf import json_format

from fanout.encode import TAG_SNAPSHOT, TAG_TRADES, EntryCache, TradeEncoder, build_quote, wrap, wrap_json
from ingest.messages import Trade
from tickfan_proto import stream_pb2 as pb

from .conftest import bump, make_books


def test_trade_frames_equal_protobuf_serialization_and_parse_back() -> None:
    books = make_books()
    cursor = books.trades_total
    books.apply(Trade(2, 0, 9, 0, "B", 300, "TSLA", 2000050, 77))
    books.apply(Trade(1, 0, 10, 0, "S", 5, "AAPL", 1000050, 78))
    books.apply(Trade(2, 0, 11, 0, "B", 200, "TSLA", 2000100, 79))
    prints, _, lost = books.trades_since(cursor)
    assert lost == 0
    wanted = np.zeros(16, np.int32)
    wanted[[1, 2]] = 1
    by_symbol = TradeEncoder(books).encode(prints, wanted)
    frame = wrap(TAG_TRADES, (by_symbol[loc][0] for loc in (2, 1)))
    expected = pb.ServerMessage(trades=pb.TradeBatch(trades=[
        pb.Trade(symbol="TSLA", seq=int(prints.seq[0]), price=2000050, size=300, exchange_time_ns=9,
                 match_number=77, trade_seq=int(prints.trade_seq[0]), printable=True),
        pb.Trade(symbol="TSLA", seq=int(prints.seq[2]), price=2000100, size=200, exchange_time_ns=11,
                 match_number=79, trade_seq=int(prints.trade_seq[0]) + 1, printable=True),
        pb.Trade(symbol="AAPL", seq=int(prints.seq[1]), price=1000050, size=5, exchange_time_ns=10,
                 match_number=78, trade_seq=int(prints.trade_seq[1]), printable=True),
    ]))
    assert frame == expected.SerializeToString()
    text = wrap_json("trades", "trades", (j for loc in (2, 1) for j in by_symbol[loc][1]))
    assert json_format.Parse(text, pb.ServerMessage()) == expected
    assert json.loads(text)["trades"]["trades"][0]["matchNumber"] == "77"  # 64-bit ints are JSON strings


def test_unwatched_symbols_prints_are_not_encoded() -> None:
    books = make_books()
    cursor = books.trades_total
    books.apply(Trade(3, 0, 9, 0, "B", 1, "MSFT", 3000000, 1))
    prints, _, _ = books.trades_since(cursor)
    wanted = np.zeros(16, np.int32)
    wanted[1] = 1
    assert TradeEncoder(books).encode(prints, wanted) == {}


def test_json_snapshot_parses_to_the_same_message_as_binary() -> None:
    books = make_books()
    cache = EntryCache(lambda loc: build_quote(books, loc), 8)
    cache.refresh([1, 3])
    binary = pb.ServerMessage.FromString(wrap(TAG_SNAPSHOT, (cache.entries[loc] for loc in (1, 3))))
    text = wrap_json("snapshot", "quotes", (cache.json(loc) for loc in (1, 3)))
    assert json_format.Parse(text, pb.ServerMessage()) == binary
    first = json.loads(text)["snapshot"]["quotes"][0]
    assert first["symbol"] == "AAPL" and first["askPrice"] == "1000100" and first["seq"] == str(books.seq[1])


def test_cached_json_is_rebuilt_when_the_symbol_is_re_encoded() -> None:
    books = make_books()
    cache = EntryCache(lambda loc: build_quote(books, loc), 8)
    cache.refresh([1])
    before = cache.json(1)
    assert cache.json(1) is before  # once per flush, however many JSON clients
    bump(books, 1, 1000500)
    cache.refresh([1])
    assert json.loads(cache.json(1))["bidPrice"] == "1000500"
