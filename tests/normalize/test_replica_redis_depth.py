"""Depth across Redis against a real (private) Redis: what the publisher writes and sends, and an edge that seeds a
watched symbol's depth from its key and then follows the channel."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.messages import AddOrder, OrderDelete
from normalize import MAX_LOCATES, Books
from normalize.quote import read_depth
from normalize.replicas.redis import RedisBooks
from normalize.replicas.redis_depth import DepthLevels, RedisDepth, RedisDepthPublisher
from tests.conftest import PrivateRedis, directory, eventually
from tickfan_proto import stream_pb2 as pb
from vocab.keys import QUOTE_PARTITIONS, SYMBOLS, depth_channel, depth_key
from vocab.partition import crc32_partition
from vocab.redisconn import open_redis

pytestmark = pytest.mark.anyio
SYMS = {3: "DPA", 4: "DPB", 5: "DPC"}


def fill(books: Books) -> None:
    books.apply_batch([directory(loc, sym) for loc, sym in SYMS.items()])
    books.apply_batch([AddOrder(3, 0, 5, 1, "B", 100, "DPA", 1_234_500), AddOrder(3, 0, 5, 2, "B", 30, "DPA",
                                                                                 1_234_400),
                       AddOrder(3, 0, 5, 3, "S", 70, "DPA", 1_234_900), AddOrder(4, 0, 6, 4, "S", 7, "DPB", 10_000)])


def url(server: PrivateRedis) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


async def test_the_publisher_sends_each_moved_symbols_depth_once(private_redis: PrivateRedis) -> None:
    books = Books()
    r = open_redis(url(private_redis))
    pub = RedisDepthPublisher(books, r)
    listener = r.pubsub()
    parts = {loc: crc32_partition(sym, QUOTE_PARTITIONS) for loc, sym in SYMS.items()}
    await listener.ssubscribe(*(depth_channel(p) for p in sorted(set(parts.values()))))
    try:
        fill(books)
        assert await pub.publish_once() == 2  # DPC has no levels: no depth version yet
        assert await pub.publish_once() == 0
        for loc in (3, 4):
            raw = await r.get(depth_key(SYMS[loc]))
            assert isinstance(raw, bytes)
            # the key: a ServerMessage of one DepthBatch of the symbol's Depth, as the node's own fan-out reads it
            assert list(pb.ServerMessage.FromString(raw).depth.books) == [read_depth(books, loc).to_pb()]
        assert await r.get(depth_key("DPC")) is None
        books.apply(OrderDelete(3, 0, 7, 2))
        assert await pub.publish_once() == 1
        got: list[pb.Depth] = []

        async def all_sent() -> bool:
            msg = await listener.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if msg is not None and msg["type"] == "smessage":
                batch = pb.ServerMessage.FromString(msg["data"])
                for d in batch.depth.books:  # each on its partition's channel
                    assert msg["channel"] == depth_channel(parts[books.locate_of[d.symbol]]).encode()
                got.extend(batch.depth.books)
            return len(got) == 3

        await eventually(all_sent, what="the depth of both symbols, then DPA's again")
        assert [d.symbol for d in got].count("DPA") == 2
        newest = [d for d in got if d.symbol == "DPA"][-1]
        assert newest == read_depth(books, 3).to_pb() and [(lv.price, lv.size) for lv in newest.bids] == [
            (1_234_500, 100)]
    finally:
        await listener.aclose()
        await r.aclose()


async def test_an_edge_seeds_a_watched_symbols_depth_then_follows_it(private_redis: PrivateRedis) -> None:
    books = Books()
    r = open_redis(url(private_redis))
    pub = RedisDepthPublisher(books, r)
    fill(books)
    await pub.publish_once()
    await r.hset(SYMBOLS, mapping={sym: f"{loc}:{crc32_partition(sym, QUOTE_PARTITIONS)}"
                                   for loc, sym in SYMS.items()})
    edge = RedisBooks(url(private_redis))
    await edge.load_directory()
    depth = RedisDepth(edge, url(private_redis))
    watched = np.zeros(MAX_LOCATES, np.int32)
    depth.watched = lambda: watched
    await depth.start()
    try:
        assert edge.levels(3, 0, 10) == [] and edge.depth_seq[3] == 0
        watched[3] = 1

        def same() -> bool:
            return all(edge.levels(3, side, 10) == books.levels(3, side, 10) for side in (0, 1)) and \
                edge.depth_seq[3] == books.depth_seq[3]

        await eventually(same, what="DPA's depth seeded from its key")
        assert depth.counters["depth_seeded"] == 1
        books.apply(AddOrder(3, 0, 9, 10, "S", 5, "DPA", 1_234_800))
        await pub.publish_once()
        await eventually(same, what="DPA's depth followed on its channel",
                         state=lambda: (edge.levels(3, 1, 10), books.levels(3, 1, 10)))
        assert depth.counters["depth_received"] >= 1
        assert edge.levels(3, 1, 1) == [(1_234_800, 5)]  # n levels, best first
        assert edge.depth_seq[4] == 0  # nobody watches DPB's depth: never seeded
    finally:
        await depth.close()
        await edge.close()
        await r.aclose()


def test_depth_older_than_the_one_held_is_not_applied() -> None:
    seq = np.zeros(8, np.int64)
    held = DepthLevels(seq)
    new = pb.Depth(symbol="X", seq=5, bids=[pb.Level(price=100, size=1)], asks=[pb.Level(price=101, size=2)])
    assert held.apply(new, 2) and seq[2] == 5
    old = pb.Depth(symbol="X", seq=4, bids=[pb.Level(price=99, size=1)])
    assert not held.apply(old, 2) and not held.apply(new, 2)
    assert held.levels(2, 0, 10) == [(100, 1)] and held.levels(2, 1, 10) == [(101, 2)] and held.levels(3, 0, 10) == []
