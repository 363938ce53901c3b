"""The Redis replica against the real Redis: the publisher's hashes, directory and channel messages, and a reader
that seeds watched symbols from their hashes and then follows the stream."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from fanout.encode import TAG_QUOTES, build_quote, entry, wrap
from ingest.messages import AddOrder, BrokenTrade, Trade
from normalize import MAX_LOCATES, Books
from normalize.bar_feed import BarFeed
from normalize.bar_types import MINUTE, SECOND
from normalize.quote import read_quote
from normalize.replicas.redis import LIVE_MARK_EVERY_NS, RedisBooks, RedisPublisher
from normalize.replicas.redis_bars import RedisBars
from tests.conftest import PrivateRedis, directory, eventually
from vocab.keys import QUOTE_PARTITIONS, QUOTES_LIVE, SYMBOLS, bars_key, quote_key, quotes_channel
from vocab.partition import crc32_partition

REDIS = "redis://127.0.0.1:6379/11"  # a database no other test uses; only this test's keys are touched
SYMS = {3: "RPLA", 4: "RPLB"}


def _text(v: bytes | str | None) -> str:
    assert v is not None
    return v.decode() if isinstance(v, bytes) else v


def fill(books: Books) -> None:
    """After the publisher exists: it publishes what moves from then on."""
    books.apply_batch([directory(loc, sym) for loc, sym in SYMS.items()])
    books.apply_batch([AddOrder(3, 0, 5, 1, "B", 100, "RPLA", 1_234_500),
                       AddOrder(4, 0, 6, 2, "S", 7, "RPLB", 10_000)])

pytestmark = pytest.mark.anyio


@pytest.fixture
def books() -> Iterator[Books]:
    r = redis.Redis.from_url(REDIS)
    r.delete(*(quote_key(s) for s in SYMS.values()))
    r.hdel(SYMBOLS, *SYMS.values())
    yield Books()
    r.delete(*(quote_key(s) for s in SYMS.values()))
    r.hdel(SYMBOLS, *SYMS.values())
    r.close()


async def test_the_publisher_writes_the_quote_views_forms(books: Books) -> None:
    pub = RedisPublisher(books, REDIS)
    listener = aioredis.from_url(REDIS)
    sub = listener.pubsub()
    parts = {loc: crc32_partition(sym, QUOTE_PARTITIONS) for loc, sym in SYMS.items()}
    await sub.ssubscribe(*(quotes_channel(p) for p in sorted(set(parts.values()))))
    try:
        fill(books)
        assert await pub.publish_once() == 2
        assert await pub.publish_once() == 0  # nothing moved since
        for loc, sym in SYMS.items():
            stored = await pub.redis.hgetall(quote_key(sym))
            assert {_text(k): _text(v) for k, v in stored.items()} == read_quote(books, loc).hash_fields()
            assert _text(await pub.redis.hget(SYMBOLS, sym)) == f"{loc}:{parts[loc]}"
        got: dict[bytes, bytes] = {}

        async def both() -> bool:
            msg = await sub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if msg is not None and msg["type"] == "smessage":
                got[msg["channel"]] = msg["data"]
            return len(got) == len(set(parts.values()))

        await eventually(both, what="one message per partition")
        for p in set(parts.values()):
            locs = [loc for loc in SYMS if parts[loc] == p]
            # byte-identical to the fan-out's concatenated frames
            expected = wrap(TAG_QUOTES, [entry(build_quote(books, loc).SerializeToString()) for loc in locs])
            assert got[quotes_channel(p).encode()] == expected
    finally:
        await sub.aclose()
        await listener.aclose()
        await pub.close()


async def test_a_reader_seeds_watched_symbols_then_follows_the_stream(books: Books) -> None:
    pub = RedisPublisher(books, REDIS)
    fill(books)
    await pub.publish_once()
    watched = np.zeros(MAX_LOCATES, np.int32)
    reader = RedisBooks(REDIS, watched=lambda: watched)
    await reader.start()
    try:
        assert reader.locate_of["RPLA"] == 3 and reader.known[3]
        watched[3] = 1

        def same(loc: int) -> bool:
            return read_quote(reader, loc) == read_quote(books, loc)

        await eventually(lambda: same(3), what="RPLA seeded from its hash", state=lambda: read_quote(reader, 3))
        assert reader.counters["seeded"] >= 1
        books.apply(AddOrder(3, 0, 9, 10, "B", 50, "RPLA", 1_234_600))
        await pub.publish_once()
        await eventually(lambda: same(3), what="RPLA followed on its channel", state=lambda: read_quote(reader, 3))
        assert reader.counters["quotes_applied"] >= 1
        assert reader.seq[4] == 0  # nobody watches RPLB: never seeded
    finally:
        await reader.close()
        await pub.close()


async def test_a_reader_rereads_the_directory_only_when_it_grew(private_redis: PrivateRedis) -> None:
    """Every edge polls the directory each second: an unchanged one must cost one HLEN, not a full HGETALL."""
    url = private_redis.url
    r = redis.Redis.from_url(url)
    r.hset(SYMBOLS, mapping={"DIRA": "3:1", "DIRB": "4:2"})
    reader = RedisBooks(url)

    def hgetalls() -> int:
        return int(r.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))

    try:
        await reader.load_directory()
        assert reader.locate_of == {"DIRA": 3, "DIRB": 4} and reader.partition[4] == 2
        before = hgetalls()
        await reader.load_directory()
        await reader.load_directory()
        assert hgetalls() == before  # nothing new: not read again
        r.hset(SYMBOLS, "DIRC", "5:7")  # listed later on the origin
        await reader.load_directory()
        assert reader.locate_of["DIRC"] == 5 and reader.known[5] and reader.partition[5] == 7
        assert hgetalls() == before + 1
    finally:
        await reader.close()
        r.close()


async def test_a_quiet_feed_still_marks_the_quotes_live_once_a_second(books: Books) -> None:
    """Market orders read the live mark's age: a quiet market (nothing moved) must not look like a dead feed."""
    pub = RedisPublisher(books, REDIS)
    r = redis.Redis.from_url(REDIS)
    try:
        fill(books)
        assert await pub.publish_once() == 2
        first = int(_text(r.get(QUOTES_LIVE)))
        pub._marked_ns -= LIVE_MARK_EVERY_NS  # as if a second had passed with nothing moving
        assert await pub.publish_once() == 0
        assert int(_text(r.get(QUOTES_LIVE))) > first
        marked = int(_text(r.get(QUOTES_LIVE)))
        assert await pub.publish_once() == 0  # within the second: no write
        assert int(_text(r.get(QUOTES_LIVE))) == marked
    finally:
        r.close()
        await pub.close()


async def test_bars_cross_redis_history_seed_and_stream(books: Books) -> None:
    """The publisher keeps each symbol's bars in a sorted set (a revision replaces its bar, trimmed to the
    history) and publishes them; a Redis-fed reader seeds a watched symbol, then follows, never back in time;
    its history read from Redis equals the builder's."""
    r = redis.Redis.from_url(REDIS)
    keys = [bars_key(s, i) for s in SYMS.values() for i in ("1s", "1m")]
    r.delete(*keys)
    feed = BarFeed(books, history_1s=3, history_1m=3)
    pub = RedisPublisher(books, REDIS, bars=feed, bars_history=(3, 3))
    assert pub.bar_publisher is not None
    fill(books)
    t0 = 10 * SECOND

    def trade(t: int, price: int, match: int) -> None:
        books.apply(Trade(3, 0, t, 0, "B", 100, "RPLA", price, match))

    reader = RedisBars(RedisBooks(REDIS), REDIS)
    try:
        for i in range(6):  # six 1 s bars: the sorted set keeps 3 closed + the open one
            trade(t0 + i * SECOND, 1_000_000 + i, i + 1)
        feed.pump()
        await pub.publish_once()
        assert await pub.bar_publisher.publish_once() > 0
        assert r.zcard(bars_key("RPLA", "1s")) == 4
        await reader.books.load_directory()
        await reader.start()
        watched = [3]
        reader.watched = lambda: watched
        await eventually(lambda: reader.history(3, SECOND, 2) == feed.history(3, SECOND, 2),
                         what="RPLA's latest bars seeded", state=lambda: reader.history(3, SECOND, 2))
        # a broken trade revises a closed bar; more prints close the open one: both arrive on the channel
        books.apply(BrokenTrade(3, 0, t0 + 5 * SECOND + 1, 5))
        trade(t0 + 6 * SECOND, 1_000_100, 7)
        feed.pump()
        await pub.bar_publisher.publish_once()
        await eventually(lambda: reader.history(3, SECOND, 2) == feed.history(3, SECOND, 2),
                         what="RPLA followed on its channel", state=lambda: reader.history(3, SECOND, 2))
        got, _, _ = reader.bars_since(0)
        assert any(b.state == "revised" and b.version == 1 for b in got)
        assert await reader.fetch_history(3, SECOND, 10) == feed.history(3, SECOND, 10)
        assert await reader.fetch_history(3, MINUTE, 10) == feed.history(3, MINUTE, 10)
        assert reader.history(4, SECOND, 2) == []  # nobody watches RPLB
    finally:
        await reader.close()
        await reader.books.close()
        await pub.close()
        r.delete(*keys)
        r.close()


async def test_a_reader_flags_a_lost_partition_stale_and_follows_it_again_after_a_restart(
        private_redis: PrivateRedis) -> None:
    """The subscriber's lost/regained path on one server: Redis stops, the watched symbol turns stale; Redis is
    back (empty: nothing on disk), the reader resubscribes, and the next published change makes it fresh."""
    books = Books()
    pub = RedisPublisher(books, private_redis.url, interval=0.02)
    fill(books)
    await pub.start()
    await eventually(lambda: pub.counters["publishes"] > 0, what="published")
    watched = np.zeros(MAX_LOCATES, np.int32)
    reader = RedisBooks(private_redis.url, watched=lambda: watched)
    await reader.start()
    try:
        watched[3] = 1
        await eventually(lambda: read_quote(reader, 3) == read_quote(books, 3), what="RPLA followed")
        assert not reader.stale[3]
        private_redis.stop()
        await eventually(lambda: bool(reader.stale[3]), what="RPLA stale while its partition is lost",
                         state=lambda: (reader.counters, reader.channels.counters))
        private_redis.start()
        orders = itertools.count(100)
        before = int(books.seq[3])

        async def fresh() -> bool:
            books.apply(AddOrder(3, 0, 9, next(orders), "B", 50, "RPLA", 1_234_600))  # keeps moving
            return int(reader.seq[3]) > before and not reader.stale[3]

        await eventually(fresh, what="RPLA followed again", state=lambda: (reader.counters, reader.channels.counters))
        assert reader.channels.counters["channels_regained"] >= 1
    finally:
        await reader.close()
        await pub.close()
