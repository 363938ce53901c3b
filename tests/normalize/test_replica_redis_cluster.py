"""The Redis replica on a real Redis Cluster (three masters, three replicas): the partitions' channels spread
over every master, the publisher's hashes and channel messages and a reader's seed-then-follow are those of
one server (tests/normalize/test_replica_redis.py), and a master killed under a reader: its partitions go
stale, then are followed again on the promoted replica."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
from redis.asyncio.cluster import RedisCluster

from fanout.encode import TAG_QUOTES, build_quote, entry, wrap
from ingest.messages import AddOrder
from normalize import MAX_LOCATES, Books
from normalize.quote import read_quote
from normalize.replicas.redis import RedisBooks, RedisPublisher
from order_api.quotes import RedisQuotes
from tests.conftest import LocalCluster, directory, eventually
from vocab.keys import MARKET_CHANNEL, QUOTE_PARTITIONS, SYMBOLS, bars_channel, quote_key, quotes_channel
from vocab.partition import crc32_partition
from vocab.redisconn import open_redis

pytestmark = pytest.mark.anyio


def _text(v: bytes | str | None) -> str:
    assert v is not None
    return v.decode() if isinstance(v, bytes) else v


def owners(cluster: LocalCluster) -> dict[int, int]:
    """Slot -> the port of the master serving it, from CLUSTER SLOTS (as the server says, not the client)."""
    out: dict[int, int] = {}
    # raw redis-cli output, one item a line: start, end, then host, port, id of the master and of each replica
    rows = cluster.cli(min(cluster.masters()), "cluster", "slots").splitlines()
    for i in range(len(rows) - 3):
        if rows[i].isdigit() and rows[i + 1].isdigit() and "." in rows[i + 2] and rows[i + 3].isdigit():
            out.update(dict.fromkeys(range(int(rows[i]), int(rows[i + 1]) + 1), int(rows[i + 3])))
    return out


def keyslot(cluster: LocalCluster, name: str) -> int:
    return int(cluster.cli(cluster.ports[0], "cluster", "keyslot", name).strip())


def symbols_by_master(cluster: LocalCluster, per_master: int) -> dict[int, list[str]]:
    """Tickers whose partitions' channels live on each master (``per_master`` each)."""
    slot_owner = owners(cluster)
    channel_owner = {p: slot_owner[keyslot(cluster, quotes_channel(p))] for p in range(QUOTE_PARTITIONS)}
    found: dict[int, list[str]] = {port: [] for port in cluster.masters()}
    i = 0
    while any(len(v) < per_master for v in found.values()):
        sym = f"C{i:03d}"
        port = channel_owner[crc32_partition(sym, QUOTE_PARTITIONS)]
        if len(found[port]) < per_master:
            found[port].append(sym)
        i += 1
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """One cluster for the tests that kill nothing."""
    with LocalCluster() as c:
        yield c


def test_every_master_carries_a_share_of_the_partitions(cluster: LocalCluster) -> None:
    slot_owner = owners(cluster)
    masters = cluster.masters()
    assert len(masters) == 3 and len(slot_owner) == 16_384
    quotes = Counter(slot_owner[keyslot(cluster, quotes_channel(p))] for p in range(QUOTE_PARTITIONS))
    assert set(quotes) == set(masters) and min(quotes.values()) >= 5, quotes  # 5/6/5 of 16
    for p in range(QUOTE_PARTITIONS):  # a partition's quotes and bars are on one shard
        assert keyslot(cluster, bars_channel(p)) == keyslot(cluster, quotes_channel(p))
    assert slot_owner[keyslot(cluster, MARKET_CHANNEL)] in masters


async def test_the_publisher_and_a_reader_on_a_cluster(cluster: LocalCluster) -> None:
    """test_replica_redis's assertions, on the cluster: hashes, directory, one message per partition (byte for
    byte the fan-out's frames), a reader seeding a watched symbol then following it."""
    syms = {3 + i: s for i, s in enumerate(sum(symbols_by_master(cluster, 1).values(), []))}
    books = Books()
    pub = RedisPublisher(books, cluster.url)
    listener = open_redis(cluster.url)
    assert isinstance(listener, RedisCluster)
    await listener.ping()  # the cluster client learns the slots on its first command
    sub = listener.pubsub()
    parts = {loc: crc32_partition(sym, QUOTE_PARTITIONS) for loc, sym in syms.items()}
    await sub.ssubscribe(*(quotes_channel(p) for p in sorted(set(parts.values()))))
    watched = np.zeros(MAX_LOCATES, np.int32)
    reader = RedisBooks(cluster.url, watched=lambda: watched)
    try:
        books.apply_batch([directory(loc, sym) for loc, sym in syms.items()])
        books.apply_batch([AddOrder(loc, 0, 5, loc, "B", 100, sym, 1_000_000 + loc) for loc, sym in syms.items()])
        assert await pub.publish_once() == len(syms)
        assert await pub.publish_once() == 0
        for loc, sym in syms.items():
            stored = await pub.redis.hgetall(quote_key(sym))
            assert {_text(k): _text(v) for k, v in stored.items()} == read_quote(books, loc).hash_fields()
            assert _text(await pub.redis.hget(SYMBOLS, sym)) == f"{loc}:{parts[loc]}"
        got: dict[bytes, bytes] = {}

        async def every() -> bool:
            msg = await sub.get_sharded_message(ignore_subscribe_messages=True, timeout=0.05)
            if msg is not None and msg["type"] == "smessage" and msg["data"][:1] == TAG_QUOTES:
                got[msg["channel"]] = msg["data"]
            return len(got) == len(set(parts.values()))

        await eventually(every, what="one message per partition, from every master")
        for p in set(parts.values()):
            locs = [loc for loc in syms if parts[loc] == p]
            expected = wrap(TAG_QUOTES, [entry(build_quote(books, loc).SerializeToString()) for loc in locs])
            assert got[quotes_channel(p).encode()] == expected

        await reader.start()
        assert all(reader.locate_of[s] == loc for loc, s in syms.items())
        for loc in syms:
            watched[loc] = 1

        def same() -> bool:
            return all(read_quote(reader, loc) == read_quote(books, loc) for loc in syms)

        await eventually(same, what="every symbol seeded from its hash")
        assert reader.counters["seeded"] == len(syms)
        for loc, sym in syms.items():
            books.apply(AddOrder(loc, 0, 9, 100 + loc, "B", 50, sym, 1_000_100 + loc))
        await pub.publish_once()
        await eventually(same, what="every symbol followed on its master's channel")
        assert reader.counters["quotes_applied"] >= len(syms)
        assert reader.counters["partitions_subscribed"] == len(set(parts.values()))
        # the order API's pre-trade reads (hash, live mark, market in one pipeline) work on the cluster too
        quotes = RedisQuotes(listener, max_age=0)
        for loc, sym in syms.items():
            q = await quotes.quote(sym)
            assert q is not None and q.bid == read_quote(books, loc).bid_price and 0 <= q.age < 60
        assert set(await quotes.quotes(syms.values())) == set(syms.values())
    finally:
        await reader.close()
        await sub.aclose()
        await listener.aclose()
        await pub.close()


async def test_a_killed_master_makes_its_partitions_stale_then_they_are_followed_again(
        redis_cluster: LocalCluster) -> None:
    cluster = redis_cluster
    by_master = symbols_by_master(cluster, 2)
    victim = min(by_master)
    syms = {3 + i: s for i, s in enumerate(sum(by_master.values(), []))}
    doomed = {loc for loc, s in syms.items() if s in by_master[victim]}
    books = Books()
    books.apply_batch([directory(loc, sym) for loc, sym in syms.items()])
    pub = RedisPublisher(books, cluster.url, interval=0.02)
    await pub.start()
    watched = np.zeros(MAX_LOCATES, np.int32)
    reader = RedisBooks(cluster.url, watched=lambda: watched)
    order_id = 0

    def trade_everything() -> None:
        nonlocal order_id
        for loc, sym in syms.items():
            order_id += 1
            books.apply(AddOrder(loc, 0, 5, order_id, "B", 100, sym, 1_000_000 + order_id))

    def following() -> bool:
        return all(read_quote(reader, loc) == read_quote(books, loc) for loc in syms)

    try:
        trade_everything()
        await eventually(lambda: books.seq[list(syms)].min() > 0 and pub.counters["publishes"] > 0,
                         what="published")
        await reader.start()
        watched[list(syms)] = 1
        await eventually(following, what="every symbol followed")
        assert not reader.stale[list(syms)].any()

        cluster.kill_master(victim)
        # the dead master's partitions go stale; the others keep following (and stay fresh)
        await eventually(lambda: all(reader.stale[loc] for loc in doomed), what="the dead master's symbols stale",
                         state=lambda: (reader.counters, reader.channels.lost))
        assert not any(reader.stale[loc] for loc in syms if loc not in doomed)
        trade_everything()
        await eventually(lambda: all(read_quote(reader, loc) == read_quote(books, loc)
                                     for loc in syms if loc not in doomed), what="the other masters followed")

        # the replica is promoted: the reader resubscribes there, the symbols are fresh and followed again
        async def recovered() -> bool:
            trade_everything()
            await asyncio.sleep(0.1)
            return following() and not reader.stale[list(syms)].any()

        await eventually(recovered, timeout=60, what="followed again on the promoted replica",
                         state=lambda: (reader.counters, reader.channels.counters, reader.channels.lost,
                                        pub.counters, cluster.masters()))
        assert victim not in cluster.masters()
        assert reader.channels.counters["channels_regained"] >= 1
    finally:
        await reader.close()
        await pub.close()
