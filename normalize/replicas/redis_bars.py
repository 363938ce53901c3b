"""Bars across hosts through Redis: the node that builds them publishes, Redis-fed edges serve them.

``RedisBarPublisher`` (beside ``RedisPublisher``, on the host that owns the books): every round, what the bar
source emitted since its cursor, conflated (``normalize.bar_wire.conflate``), goes out twice, each bar encoded
once: into the symbol's history, a sorted set per interval (``tickfan:bars:{SYMBOL}:{1s|1m}``, encoded ``Bar``
messages scored by start time; a newer state of a bar replaces the one with its start; trimmed to the
configured history plus the open bar), and as one ``BarBatch`` per partition on the sharded channel
``tickfan:bars:{p}`` (the quotes' partitions: CRC-32 of the ticker).

``RedisBars`` (a ``BarSource`` on a ``--from-redis`` edge): subscribes to the partitions of the symbols its
clients watch on the bars channels, then seeds each newly watched symbol with its latest closed and open
bar from the sorted sets (after subscribing, so nothing falls between seed and stream), and logs what
arrives for the fan-out. ``GET /v1/bars`` reads the sorted sets (``fetch_history``), so history works for any
symbol, watched or not. An ``update`` carries no version, so one that raced its seed may be replaced by the
stream's next state a moment later; closed bars are never lost (each is in the sorted set and on the channel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from tickfan_proto import stream_pb2 as pb
from vocab.keys import QUOTE_PARTITIONS, bars_channel, bars_key
from vocab.partition import crc32_partition
from vocab.redisconn import AnyRedis

from ..bar_feed import BarLog, BarSource, LoggedBars
from ..bar_types import MAX_LOCATES, MINUTE, SECOND, Bar
from ..bar_wire import INTERVAL_NAME, bar_from_pb, bar_to_pb, conflate
from ..source import BookSource
from .redis_channels import PartitionSubscriber

if TYPE_CHECKING:  # redis.py imports this module for its publisher
    from .redis import RedisBooks

_EVERY = np.ones((2, MAX_LOCATES), np.bool_)  # a watch mask of every (interval, locate)


def _bar_pb(raw: object) -> pb.Bar:
    """An encoded ``Bar`` member of a sorted set (bytes: this client never decodes responses)."""
    if not isinstance(raw, bytes):
        raise TypeError(f"a bar history member must be bytes, not {type(raw).__name__}")
    return pb.Bar.FromString(raw)


class RedisBarPublisher:
    def __init__(self, books: BookSource, bars: BarSource, redis: AnyRedis, *,
                 partitions: int = QUOTE_PARTITIONS, history_1s: int = 3_600, history_1m: int = 390) -> None:
        self.books = books
        self.bars = bars
        self.redis = redis
        self.partitions = partitions
        self.keep = {SECOND: history_1s + 1, MINUTE: history_1m + 1}  # closed bars + the open one
        self.cursor = bars.bars_total
        self.counters = {"bar_rounds": 0, "bars_published": 0, "bars_lost": 0}

    async def publish_once(self) -> int:
        """Publish what the bar source emitted since the last round; returns the bars published."""
        # every symbol, but of the open bars only each one's newest state (the others conflate away)
        before = self.cursor
        emitted, self.cursor, lost = self.bars.bars_since_watched(self.cursor, _EVERY, newest_updates=True)
        self.counters["bars_lost"] += lost
        if not emitted:
            return 0
        per_key: dict[tuple[int, int], list[tuple[int, Bar]]] = {}
        for i, b in emitted:
            per_key.setdefault((b.interval_ns, b.locate), []).append((i, b))
        kept = sorted((item for items in per_key.values() for item in conflate(items)[0]), key=lambda t: t[0])
        pipe = self.redis.pipeline(transaction=False)
        by_partition: dict[int, list[pb.Bar]] = {}
        trimmed: set[str] = set()
        symbol_of = self.books.symbol_of
        for _, b in kept:
            symbol = symbol_of[b.locate]
            if not symbol:
                continue
            m = bar_to_pb(b, symbol)
            key = bars_key(symbol, INTERVAL_NAME[b.interval_ns])
            pipe.zremrangebyscore(key, b.start_ns, b.start_ns)
            pipe.zadd(key, {m.SerializeToString(): b.start_ns})
            if key not in trimmed:
                trimmed.add(key)
            by_partition.setdefault(crc32_partition(symbol, self.partitions), []).append(m)
        for key in trimmed:
            width = SECOND if key.endswith(":1s") else MINUTE
            pipe.zremrangebyrank(key, 0, -self.keep[width] - 1)
        for p, bars in by_partition.items():
            pipe.spublish(bars_channel(p), pb.ServerMessage(bars=pb.BarBatch(bars=bars)).SerializeToString())
        try:
            await pipe.execute()
        except Exception:  # sent again whole next round (a failover): readers drop the bars they hold
            self.cursor = before
            raise
        n = sum(len(v) for v in by_partition.values())
        self.counters["bar_rounds"] += 1
        self.counters["bars_published"] += n
        return n


class RedisBars(LoggedBars):
    """A ``BarSource`` fed from Redis (see the module docstring)."""

    def __init__(self, books: RedisBooks, url: str, *, log_size: int = 1 << 16) -> None:
        self.books = books
        self.channels = PartitionSubscriber(url, on_message=self._take, follow=self.follow_once,
                                            on_regained=self._regained, what="Redis bar partitions")
        self.redis = self.channels.redis
        self.log = BarLog(log_size)
        # which locates clients watch on the bars channels; set once the hub exists
        self.watched: Callable[[], Iterable[int]] = lambda: ()
        self._latest: dict[tuple[int, int], dict[int, Bar]] = {}  # (interval, locate) -> start -> newest state
        self._following: set[int] = set()
        self._subscribed: set[int] = set()
        self._counters = {"bars_received": 0, "bars_seeded": 0, "bars_partitions_subscribed": 0}

    async def start(self) -> None:
        await self.channels.start()

    async def close(self) -> None:
        await self.channels.close()

    # ------------------------------------------------------------------ following
    async def follow_once(self) -> None:
        """Subscribe to the partitions of newly watched symbols, then seed them from their sorted sets."""
        await self.follow(self.unfollowed(set(self.watched())))

    def unfollowed(self, locates: Iterable[int]) -> list[int]:
        """Those of ``locates`` not followed yet (and named)."""
        return [loc for loc in set(locates) - self._following if self.books.symbol_of[loc]]

    async def follow(self, new: list[int]) -> None:
        """Subscribe to these symbols' partitions, then seed each (also before a subscription's snapshots)."""
        if not new:
            return
        parts = {self.books.partition[loc] for loc in new if loc in self.books.partition} - self._subscribed
        if parts:
            await self.channels.subscribe(bars_channel(p) for p in sorted(parts))
            self._subscribed |= parts
            self._counters["bars_partitions_subscribed"] = len(self._subscribed)
        for loc in new:
            self._following.add(loc)
            await self._seed([loc])

    async def _regained(self, channels: set[str]) -> None:
        """Back on a promoted replica after a failover: the bars published meanwhile, from the sorted sets."""
        parts = {p for p in self._subscribed if bars_channel(p) in channels}
        await self._seed([loc for loc in self._following if self.books.partition.get(loc) in parts])

    async def _seed(self, locs: Iterable[int]) -> None:
        """Each symbol's latest closed and open bar from its sorted sets (those already held are dropped)."""
        for loc in locs:
            symbol = self.books.symbol_of[loc] or ""
            seeded: list[Bar] = []
            for name in INTERVAL_NAME.values():
                for raw in await self.redis.zrange(bars_key(symbol, name), -2, -1):
                    b = bar_from_pb(_bar_pb(raw), loc)
                    if b is not None and self._keep(b):
                        seeded.append(b)
            self._counters["bars_seeded"] += len(seeded)
            self.log.extend(seeded)

    def _take(self, data: bytes) -> None:
        self.take(pb.ServerMessage.FromString(data))

    def take(self, message: pb.ServerMessage) -> int:
        """A published ``BarBatch``: the watched symbols' bars into the log; returns how many."""
        locate_of = self.books.locate_of
        out: list[Bar] = []
        for m in message.bars.bars:
            loc = locate_of.get(m.symbol)
            if loc is None or loc not in self._following:
                continue
            b = bar_from_pb(m, loc)
            if b is not None and self._keep(b):
                out.append(b)
        self._counters["bars_received"] += len(out)
        self.log.extend(out)
        return len(out)

    def _keep(self, b: Bar) -> bool:
        """Remember the bar as its start's newest state (the latest two starts per symbol and interval);
        False for an older state of a bar already held (a seed that raced the stream)."""
        held = self._latest.setdefault((b.interval_ns, b.locate), {})
        old = held.get(b.start_ns)
        if old is not None and (b == old or b.version < old.version or (old.state != "update" and b.state == "update")):
            return False
        held[b.start_ns] = b
        if len(held) > 2:
            del held[min(held)]
        return True

    # ------------------------------------------------------------------ reading (BarSource)
    def history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        held = self._latest.get((interval_ns, locate), {})
        return [held[s] for s in sorted(held)][-limit:] if limit > 0 else []

    async def fetch_history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        symbol = self.books.symbol_of[locate] if 0 <= locate < len(self.books.symbol_of) else None
        if not symbol or limit <= 0 or interval_ns not in INTERVAL_NAME:
            return []
        raws = await self.redis.zrange(bars_key(symbol, INTERVAL_NAME[interval_ns]), -limit, -1)
        return [b for raw in raws if (b := bar_from_pb(_bar_pb(raw), locate)) is not None]

    @property
    def bars_kept(self) -> int:
        return sum(len(v) for v in self._latest.values())

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._counters)
