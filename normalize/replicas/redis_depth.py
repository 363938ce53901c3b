"""Depth across hosts through Redis: the node that owns the books publishes price levels, edges serve them.

``RedisDepthPublisher`` (beside ``RedisPublisher``, which runs it every round): the symbols whose depth version
(``depth_seq``) moved since the last round, each read once (``read_depth``: the best ``DEPTH_LEVELS`` a side,
the Depth the node's own fan-out sends) and encoded once, as a ``ServerMessage`` holding a ``DepthBatch`` of that
one ``Depth``. Those bytes go out twice: to ``depth:{SYMBOL}`` (a string, what an edge seeds a newly watched
symbol from) and, concatenated with the round's other symbols of the same partition, on the sharded channel
``tickfan:depth:{p}`` (protobuf merges concatenated messages: the concatenation parses as one DepthBatch of all
of them). The first round writes every symbol that has depth, so the keys are complete from the start.

A channel of its own, not the quotes': a Depth is the largest state message (up to 20 levels), and only an edge
whose clients watch depth subscribes to it, so a quotes-only edge pays nothing for it. Nothing needs the order
between the two channels: a Depth carries its own version, applied only when newer than the one held (so a seed
that raced the stream loses nothing); like on every node, the fan-out reads the depth frame's exchange time,
halted and stale flags from the symbol's row, which the quotes keep (an edge follows the quotes of every symbol
watched on depth too).

``RedisDepth`` (on a ``--from-redis`` edge, the depth of its ``RedisBooks``): subscribes to the depth channels of
the partitions of symbols its clients watch on the depth channel, seeds each newly watched symbol from its key
(after subscribing, so nothing falls between seed and stream), and keeps each symbol's newest levels, giving
``RedisBooks`` a real ``levels()`` and ``depth_seq``, the version the fan-out diffs on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tickfan_proto import stream_pb2 as pb
from vocab.keys import QUOTE_PARTITIONS, depth_channel, depth_key
from vocab.partition import crc32_partition

from ..quote import read_depth
from ..row import DEPTH_LEVELS, I64
from ..source import BookSource
from .redis_channels import PartitionSubscriber

if TYPE_CHECKING:  # redis.py imports this module for its publisher
    from .redis import RedisBooks

log = logging.getLogger("tickfan.redis")

Levels = list[tuple[int, int]]


class RedisDepthPublisher:
    def __init__(self, books: BookSource, redis: Any, *, partitions: int = QUOTE_PARTITIONS) -> None:
        """``redis``: the publisher's client (a pipeline per round, shared with the quotes)."""
        self.books = books
        self.redis = redis
        self.partitions = partitions
        # zeros: the first round writes every symbol that has depth (the keys edges seed from)
        self.published: I64 = np.zeros_like(books.depth_seq)
        self.counters = {"depth_rounds": 0, "depth_published": 0}

    def encode(self, locate: int) -> bytes:
        """``locate``'s Depth as a ServerMessage of one DepthBatch (what the key holds and the channel carries)."""
        depth = read_depth(self.books, locate, DEPTH_LEVELS).to_pb()
        return pb.ServerMessage(depth=pb.DepthBatch(books=[depth])).SerializeToString()

    async def publish_once(self) -> int:
        """Publish the depth of every symbol whose depth moved since the last round; returns how many."""
        books = self.books
        high = books.high_locate + 1
        moved = np.flatnonzero(books.depth_seq[:high] != self.published[:high])
        moved = moved[books.known[moved]]
        if not len(moved):
            return 0
        versions = books.depth_seq[moved].copy()  # what this round publishes (the books may move meanwhile)
        pipe = self.redis.pipeline(transaction=False)
        by_partition: dict[int, list[bytes]] = {}
        symbol_of = books.symbol_of
        for loc in moved.tolist():
            symbol = symbol_of[loc]
            if not symbol:
                continue
            one = self.encode(loc)
            pipe.set(depth_key(symbol), one)
            by_partition.setdefault(crc32_partition(symbol, self.partitions), []).append(one)
        for p, ones in by_partition.items():
            pipe.spublish(depth_channel(p), b"".join(ones))
        await pipe.execute()
        self.published[moved] = versions
        self.counters["depth_rounds"] += 1
        self.counters["depth_published"] += len(moved)
        return len(moved)


class DepthLevels:
    """Each locate's newest Depth as levels (best first), its version written into the row's ``depth_seq``."""

    def __init__(self, depth_seq: I64) -> None:
        self.depth_seq = depth_seq
        self._books: dict[int, tuple[Levels, Levels]] = {}

    def apply(self, depth: pb.Depth, locate: int) -> bool:
        """Take ``depth`` unless it is not newer than what is held (a seed that raced the stream)."""
        if depth.seq <= self.depth_seq[locate]:
            return False
        self._books[locate] = ([(lv.price, lv.size) for lv in depth.bids], [(lv.price, lv.size) for lv in depth.asks])
        self.depth_seq[locate] = depth.seq
        return True

    def levels(self, locate: int, side: int, n: int) -> Levels:
        book = self._books.get(locate)
        return [] if book is None else book[side][:n]


class RedisDepth:
    """The depth half of a ``RedisBooks`` (see the module docstring)."""

    def __init__(self, books: RedisBooks, url: str) -> None:
        self.books = books
        self.channels = PartitionSubscriber(url, on_message=self._take, follow=self.follow_once,
                                            on_regained=self._regained, what="Redis depth partitions")
        self.redis = self.channels.redis
        # which locates clients watch on the depth channel (the hub's subscription counts); set once the hub exists
        self.watched: Callable[[], npt.NDArray[np.int32]] | None = None
        self._following: set[int] = set()
        self._subscribed: set[int] = set()
        # the books' own counters (a node's /metrics reports them), with depth's beside the quotes'
        self.counters = books.counters
        self.counters.update(depth_received=0, depth_seeded=0, depth_partitions_subscribed=0)

    async def start(self) -> None:
        await self.channels.start()

    async def close(self) -> None:
        await self.channels.close()

    async def follow_once(self) -> None:
        """Subscribe to the partitions of newly watched symbols, then seed them from their keys."""
        if self.watched is None:
            return
        await self.follow(self.unfollowed(np.flatnonzero(self.watched()[: self.books.high_locate + 1] > 0).tolist()))

    def unfollowed(self, locates: list[int]) -> list[int]:
        """Those of ``locates`` not followed yet (and named)."""
        return [loc for loc in locates if loc not in self._following and self.books.symbol_of[loc]]

    async def follow(self, new: list[int]) -> None:
        """Subscribe to these symbols' partitions, then seed each (also before a subscription's snapshots)."""
        books = self.books
        if not new:
            return
        parts = {books.partition[loc] for loc in new if loc in books.partition} - self._subscribed
        if parts:
            await self.channels.subscribe(depth_channel(p) for p in sorted(parts))
            self._subscribed |= parts
            self.counters["depth_partitions_subscribed"] = len(self._subscribed)
        for loc in new:
            self._following.add(loc)
        await self._seed(new)

    async def _seed(self, locs: list[int]) -> None:
        for loc in locs:
            raw = await self.redis.get(depth_key(self.books.symbol_of[loc] or ""))
            if isinstance(raw, bytes):
                self.counters["depth_seeded"] += self.take(pb.ServerMessage.FromString(raw))

    async def _regained(self, channels: set[str]) -> None:
        """Back on a promoted replica after a failover: the depth published meanwhile, from the keys."""
        parts = {p for p in self._subscribed if depth_channel(p) in channels}
        await self._seed([loc for loc in self._following if self.books.partition.get(loc) in parts])

    def _take(self, data: bytes) -> None:
        self.counters["depth_received"] += self.take(pb.ServerMessage.FromString(data))

    def take(self, message: pb.ServerMessage) -> int:
        """A published DepthBatch: the followed symbols' newer depth into the books; returns how many."""
        books, n = self.books, 0
        for d in message.depth.books:
            loc = books.locate_of.get(d.symbol)
            if loc is not None and loc in self._following and books.depth.apply(d, loc):
                n += 1
        return n
