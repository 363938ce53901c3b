"""The quote view: read once from any book source, converted to every edge's form, byte-identical to the forms
the edges produced before the view existed (the goldens below were printed by the edges' own code; the trading
state and reason were added after, at the end of every form)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from ingest.messages import AddOrder, OrderExecuted, TradingAction
from normalize import Books
from normalize.quote import DepthView, QuoteView, read_depth, read_quote
from order_api.model import Quote
from order_api.quotes import quote_from_hash
from tests.conftest import directory
from tickfan_proto import stream_pb2 as pb

AAPL_RECORD = (b'{"symbol":"AAPL","seq":5,"bid_price":"189.2500","bid_size":300,"ask_price":"189.2600","ask_size":150,'
               b'"last_price":"189.2600","last_size":50,"volume":50,"exchange_time_ns":1700000000000000013,'
               b'"halted":false,"stale":true,"trading_state":"","trading_reason":""}')
AAPL_HASH = {"symbol": "AAPL", "seq": "5", "bid_price": "189.2500", "bid_size": "300", "ask_price": "189.2600",
             "ask_size": "150", "last_price": "189.2600", "last_size": "50", "volume": "50",
             "exchange_time_ns": "1700000000000000013", "halted": "False", "stale": "True",
             "trading_state": "", "trading_reason": ""}
AAPL_PB = (b"\n\x04AAPL\x10\x05\x18\x94\xc1s \xac\x02(\xf8\xc1s0\x96\x018\xf8\xc1s@2H2P"
           b"\x8d\x80\xa8\xb1\xe3\x9f\xe7\xcb\x17`\x01")
AAPL_DEPTH_RECORD = (b'{"symbol":"AAPL","seq":5,"bids":[{"price":"189.2500","size":300},'
                     b'{"price":"189.2400","size":100}],'
                     b'"asks":[{"price":"189.2600","size":150},{"price":"189.2700","size":100}],'
                     b'"exchange_time_ns":1700000000000000013,"halted":false,"stale":true}')
AAPL_DEPTH_PB = (b'\n\x04AAPL\x10\x05\x1a\x07\x08\x94\xc1s\x10\xac\x02\x1a\x06\x08\xb0\xc0s\x10d"\x07\x08\xf8\xc1s'
                 b'\x10\x96\x01"\x06\x08\xdc\xc2s\x10d(\x8d\x80\xa8\xb1\xe3\x9f\xe7\xcb\x178\x01')
MSFT_RECORD = (b'{"symbol":"MSFT","seq":3,"bid_price":null,"bid_size":0,"ask_price":null,"ask_size":0,'
               b'"last_price":null,'
               b'"last_size":0,"volume":0,"exchange_time_ns":14,"halted":true,"stale":true,"trading_state":"H",'
               b'"trading_reason":""}')
MSFT_HASH = {"symbol": "MSFT", "seq": "3", "bid_price": "", "bid_size": "0", "ask_price": "", "ask_size": "0",
             "last_price": "", "last_size": "0", "volume": "0", "exchange_time_ns": "14", "halted": "True",
             "stale": "True", "trading_state": "H", "trading_reason": ""}
MSFT_PB = b"\n\x04MSFT\x10\x03P\x0eX\x01`\x01j\x01H"
MSFT_DEPTH_RECORD = b'{"symbol":"MSFT","seq":0,"bids":[],"asks":[],"exchange_time_ns":14,"halted":true,"stale":true}'
MSFT_DEPTH_PB = b"\n\x04MSFT(\x0e0\x018\x01"


@pytest.fixture(scope="module")
def books() -> Books:
    b = Books()
    b.apply_batch([
        directory(1, "AAPL"), directory(2, "MSFT"),
        AddOrder(1, 0, 10, 1001, "B", 300, "AAPL", 1892500), AddOrder(1, 0, 11, 1002, "S", 200, "AAPL", 1892600),
        AddOrder(1, 0, 12, 1003, "S", 100, "AAPL", 1892700), AddOrder(1, 0, 12, 1004, "B", 100, "AAPL", 1892400),
        OrderExecuted(1, 0, 1_700_000_000_000_000_013, 1002, 50, 77),
        TradingAction(2, 0, 14, "MSFT", "H", " ", "    "),
    ])
    b.set_stale_all(True)
    return b


@pytest.mark.parametrize("loc,record,fields,proto", [(1, AAPL_RECORD, AAPL_HASH, AAPL_PB),
                                                     (2, MSFT_RECORD, MSFT_HASH, MSFT_PB)])
def test_every_form_is_byte_identical_to_the_edges_own(books: Books, loc: int, record: bytes,
                                                       fields: dict[str, str], proto: bytes) -> None:
    view = read_quote(books, loc)
    assert orjson.dumps(view.record()) == record
    assert view.hash_fields() == fields
    assert list(view.hash_fields()) == list(fields)  # the hash is written in the same field order
    assert view.to_pb().SerializeToString() == proto


@pytest.mark.parametrize("loc,record,proto", [(1, AAPL_DEPTH_RECORD, AAPL_DEPTH_PB),
                                              (2, MSFT_DEPTH_RECORD, MSFT_DEPTH_PB)])
def test_depth_forms_are_byte_identical(books: Books, loc: int, record: bytes, proto: bytes) -> None:
    view = read_depth(books, loc)
    assert orjson.dumps(view.record()) == record
    assert view.to_pb().SerializeToString() == proto
    assert read_depth(books, loc, 1).bids == view.bids[:1]


def test_plain_python_values_whatever_the_source(books: Books) -> None:
    view = read_quote(books, 1)
    assert all(type(v) is int for v in view[1:10])
    assert type(view.halted) is bool and type(view.stale) is bool
    assert isinstance(read_depth(books, 1), DepthView)


@pytest.mark.parametrize("loc", [1, 2])
def test_conversions_come_back(books: Books, loc: int) -> None:
    view = read_quote(books, loc)
    assert QuoteView.from_pb(view.to_pb()) == view
    assert QuoteView.parse(view.hash_fields()) == view
    # a Redis client hands back bytes
    assert QuoteView.parse({k.encode(): v.encode() for k, v in view.hash_fields().items()}) == view
    # the /v1/quotes record after a JSON round trip (what the market maker reads)
    assert QuoteView.parse(orjson.loads(orjson.dumps(view.record()))) == view


def test_parse_treats_missing_fields_as_absent() -> None:
    view = QuoteView.parse({"symbol": "X", "bid_price": "1.5"})
    assert view == QuoteView("X", 0, 15_000, 0, 0, 0, 0, 0, 0, 0, False, False, "", "")
    assert QuoteView.parse({}).symbol is None
    with pytest.raises(ValueError):
        QuoteView.parse({"bid_size": "lots"})


def test_write_sets_a_row(books: Books) -> None:
    copy = Books()
    view = read_quote(books, 1)
    view.write(copy, 9)
    assert read_quote(copy, 9) == view._replace(symbol=None)  # the name is the caller's to set
    assert copy.depth_seq[9] == 0 and not copy.known[9]


def test_the_order_api_quote(books: Books) -> None:
    q = Quote.of(read_quote(books, 1))
    assert q == Quote(bid=1892500, ask=1892600, last=1892600, halted=False, stale=True)
    market = {b"system_event": b"Q", b"market_open": b"True", b"version": b"3"}
    assert quote_from_hash({k.encode(): v.encode() for k, v in AAPL_HASH.items()}, market) == \
        dataclasses.replace(q, market_open=True, market_phase="open", market_event="Q")
    # no market hash: the feed has not opened the market
    assert quote_from_hash(MSFT_HASH) == Quote(bid=0, ask=0, last=0, halted=True, stale=True, market_open=False,
                                               trading_state="H", market_phase="closed")
    assert quote_from_hash({}) is None


def test_the_stream_quote_carries_an_empty_symbol_for_an_unnamed_locate() -> None:
    b = Books()
    assert read_quote(b, 3).to_pb() == pb.Quote()
    assert read_quote(b, 3).record()["symbol"] is None
