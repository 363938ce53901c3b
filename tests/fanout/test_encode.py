"""Frames built by concatenating per-symbol entries are exactly protobuf's own serialization."""

from __future__ import annotations

from google.protobuf import json_format

from fanout.encode import TAG_QUOTES, TAG_SNAPSHOT, EntryCache, build_quote, varint, wrap, wrap_json
from tickfan_proto import stream_pb2 as pb

from .conftest import make_books


def test_varint_matches_protobuf() -> None:
    for n in (0, 1, 127, 128, 300, 16_383, 16_384, 2**31, 2**63):
        m = pb.Ping(nonce=n)
        assert m.SerializeToString() == (b"\x08" + varint(n) if n else b"")


def test_concatenated_frames_equal_protobuf_serialization() -> None:
    books = make_books()
    cache = EntryCache(lambda loc: build_quote(books, loc), 8)
    cache.refresh([1, 2, 3])
    frame = wrap(TAG_QUOTES, (cache.entries[loc] for loc in (1, 3)))
    expected = pb.ServerMessage(quotes=pb.QuoteBatch(quotes=[build_quote(books, 1), build_quote(books, 3)]))
    assert frame == expected.SerializeToString()
    parsed = pb.ServerMessage.FromString(frame)
    assert [q.symbol for q in parsed.quotes.quotes] == ["AAPL", "MSFT"]
    assert parsed.quotes.quotes[0].bid_price == 1000000 and parsed.quotes.quotes[0].ask_price == 1000100
    snap = wrap(TAG_SNAPSHOT, [cache.entries[2]])
    assert snap == pb.ServerMessage(snapshot=pb.Snapshot(quotes=[build_quote(books, 2)])).SerializeToString()


def test_big_frames_need_multi_byte_lengths() -> None:
    books = make_books()
    cache = EntryCache(lambda loc: build_quote(books, loc), 8)
    cache.refresh([1])
    frame = wrap(TAG_QUOTES, [cache.entries[1]] * 300)
    expected = pb.ServerMessage(quotes=pb.QuoteBatch(quotes=[build_quote(books, 1)] * 300))
    assert frame == expected.SerializeToString()


def test_json_frames_are_canonical_proto_json() -> None:
    books = make_books()
    cache = EntryCache(lambda loc: build_quote(books, loc), 8)
    cache.refresh([1, 2])
    text = wrap_json("quotes", "quotes", [cache.json(1), cache.json(2)])
    parsed = json_format.Parse(text, pb.ServerMessage())
    assert [q.symbol for q in parsed.quotes.quotes] == ["AAPL", "TSLA"]
    assert '"bidPrice": "1000000"' in text or '"bidPrice":"1000000"' in text


def test_depth_frames_equal_protobuf_serialization() -> None:
    from fanout.encode import DEPTH_SNAPSHOT_FLAG, TAG_DEPTH, build_depth
    from ingest.messages import AddOrder

    books = make_books()
    books.apply(AddOrder(1, 0, 9, 5000, "B", 70, "AAPL", 990000))
    cache = EntryCache(lambda loc: build_depth(books, loc), 8)
    cache.refresh([1])
    depth = build_depth(books, 1)
    assert [(lv.price, lv.size) for lv in depth.bids] == [(1000000, 100), (990000, 70)]
    assert [(lv.price, lv.size) for lv in depth.asks] == [(1000100, 100)]
    frame = wrap(TAG_DEPTH, [cache.entries[1]], DEPTH_SNAPSHOT_FLAG)
    assert frame == pb.ServerMessage(depth=pb.DepthBatch(books=[depth], snapshot=True)).SerializeToString()
