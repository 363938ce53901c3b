"""The Redis replica, across hosts: the ingest host publishes book changes, fan-out nodes elsewhere subscribe.

``RedisPublisher`` (on the host that owns the books): every interval, the symbols whose version moved are
written to ``quote:{SYMBOL}`` hashes (``QuoteView.hash_fields``: exact decimal strings, for internal
services) and published, encoded once, as a ``ServerMessage`` of quotes on the sharded channel of the
symbol's partition
(``tickfan:quotes:{p}``, SPUBLISH), so a hot partition does not sit on one Redis shard with everything else.
The directory (``tickfan:symbols``: ticker -> "locate:partition") lets remote nodes resolve tickers.
Trading status travels the same way: a symbol whose ``status_seq`` moved is written to ``status:{SYMBOL}`` and
published as a ``StatusBatch`` on its partition's channel; the market-wide status, when its version moved, to
``tickfan:market`` and its own channel (``MARKET_CHANNEL``), which every ``RedisBooks`` follows from the start.
Both are conflated per round (``interval``): the state sent is the newest, and its version says how many events
it covers. A partition's channel that carried nothing for a second gets a keepalive (an encoded ``Heartbeat``), so
a reader tells a quiet partition from a silent one. A round is one non-transactional pipeline (on a Redis Cluster,
split per master; a round with prints first writes their history in one of its own); a round that failed anywhere
is sent again whole (a master's failover): quotes and status are versioned, readers drop the prints they hold,
and a history entry already written is let pass.

``RedisBooks`` (on a fan-out node with no feed): a ``BookSource`` fed from Redis. It subscribes only to the
partitions of symbols its clients watch, seeding each newly watched symbol from its ``quote:`` hash, and
applies published quotes into its own copy of the book row; the fan-out diffs and encodes them as usual. Its
channels are followed by a ``PartitionSubscriber`` (``normalize.replicas.redis_channels``: one server or a
cluster, resubscribed on a promoted replica after a failover); a partition whose channel is lost, or silent for
``STALE_AFTER_NS``, flags its symbols stale until it speaks again, when they are re-seeded from their hashes. Bars
travel too (``normalize.replicas.redis_bars``), and depth (``normalize.replicas.redis_depth``: the publisher runs
its ``RedisDepthPublisher`` each round; ``RedisBooks.levels`` reads what its ``RedisDepth`` follows).

Trade prints travel too, with their context: the publisher sends each round's prints as a TradeBatch on the same
partition channels (so they keep their order with the quotes) and appends each to a capped stream per feed
epoch and symbol (``trades_key``: entry id ``{trade_seq}-0``, at most ``history_prints`` entries, expiring
when the symbol stops printing), the history any fan-out node replays a resumed client from
(``RedisBooks.fetch_trades``). The publisher also marks its feed epoch (``FEED_EPOCH``: the trade_seq numbering
its books are in) and its feed session's state (``FEED_STATE``) with each round, for the nodes' tokens and
heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import redis.exceptions

from tickfan_proto import stream_pb2 as pb
from vocab.digits import parse_ascii_int
from vocab.keys import (
    FEED_EPOCH,
    FEED_STATE,
    MARKET_CHANNEL,
    MARKET_STATUS,
    QUOTE_PARTITIONS,
    QUOTES_LIVE,
    SYMBOLS,
    quote_key,
    quotes_channel,
    status_key,
    trades_key,
)
from vocab.partition import crc32_partition
from vocab.redisconn import cancel_swallowed, open_redis

from ..bar_feed import BarSource
from ..book import MAX_LOCATES
from ..quote import QuoteView, read_quote
from ..row import BookRow, bind_row, new_row
from ..source import BookSource
from ..status import M_VERSION, MarketStatusView, StatusDiff, StatusEvent, SymbolStatusView, new_market, read_status
from ..trades import TradePrints, TradeRing, flags_from_names, trade_pb
from .redis_bars import RedisBarPublisher
from .redis_channels import PartitionSubscriber
from .redis_depth import DepthLevels, RedisDepthPublisher

log = logging.getLogger("tickfan.redis")
DIRECTORY_REFRESH = 1.0  # seconds between re-reads of the ticker directory


LIVE_MARK_EVERY_NS = 1_000_000_000
# a reader calls the feed stale when the publisher has not marked it live for this long
STALE_AFTER_NS = 5_000_000_000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _already_written(error: Exception) -> bool:
    """XADD's answer to an entry id the stream holds: a print of a round sent again (see ``_execute``)."""
    return isinstance(error, redis.exceptions.ResponseError) and "equal or smaller" in str(error)


class RedisPublisher:
    def __init__(self, books: BookSource, url: str, *, partitions: int = QUOTE_PARTITIONS,
                 interval: float = 0.05, bars: BarSource | None = None, bars_history: tuple[int, int] = (3_600, 390),
                 history_prints: int = 10_000, history_seconds: float = 60.0,
                 feed_state: Callable[[], str] | None = None) -> None:
        """``bars``: also publish these bars (``normalize.replicas.redis_bars``), keeping ``bars_history``
        (1 s, 1 m) closed bars per symbol in Redis. ``history_prints``/``history_seconds``: the trade history
        kept per symbol for resume (the count is exact, the age bounds how long a symbol that stopped printing
        keeps it); ``feed_state``: the feed session's state, marked for readers (None: "in_sync")."""
        self.books = books
        self.history_prints = history_prints
        self.history_ttl = max(1, math.ceil(history_seconds))
        self.feed_state = feed_state or (lambda: "in_sync")
        self.trade_cursor = books.trades_total
        self.redis = open_redis(url)
        self.bar_publisher = None if bars is None else RedisBarPublisher(
            books, bars, self.redis, partitions=partitions, history_1s=bars_history[0], history_1m=bars_history[1])
        self.depth_publisher = RedisDepthPublisher(books, self.redis, partitions=partitions)
        self.partitions = partitions
        self.interval = interval
        self.published = books.seq.copy()
        # status changes rarely: what the books hold already is written at the first round, not only what moves
        self.status_published = np.zeros_like(books.status_seq)
        self.market_published = 0
        self.announced: set[str] = set()
        self.counters = {"publishes": 0, "quotes": 0, "status": 0, "errors": 0, "trades": 0}
        self._marked_ns = 0  # when QUOTES_LIVE was last set
        self._spoke_ns = np.zeros(partitions, np.int64)  # when each partition's channel last carried a message
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.redis.ping()  # fail at start, not later, when Redis is not there
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.publish_once()
                await self.depth_publisher.publish_once()
                if self.bar_publisher is not None:
                    await self.bar_publisher.publish_once()
            except Exception:  # Redis down: keep the node serving, try again next interval
                self.counters["errors"] += 1
                log.warning("publishing to Redis failed", exc_info=self.counters["errors"] == 1)
            if cancel_swallowed():
                raise asyncio.CancelledError

    async def publish_once(self) -> int:
        books = self.books
        high = books.high_locate + 1
        moved = np.flatnonzero(books.seq[:high] != self.published[:high])
        moved = moved[books.known[moved]]
        status_moved = np.flatnonzero(books.status_seq[:high] != self.status_published[:high])
        status_moved = status_moved[books.known[status_moved]]
        market = MarketStatusView.of(books.market)
        prints, cursor, _ = books.trades_since(self.trade_cursor)
        epoch = int(getattr(books, "session_epoch", 0))
        now = time.time_ns()
        quiet_status = not len(status_moved) and market.version == self.market_published
        if not len(moved) and not len(prints.locate) and quiet_status:
            # a quiet market is not a dead feed: this process still vouches for the hashes once a second, so
            # market orders on a quiet symbol are not refused as stale (a dead ingest stops the mark), and
            # says so on each partition's channel (readers call a partition silent for that long stale)
            if now - self._marked_ns >= LIVE_MARK_EVERY_NS:
                pipe = self.redis.pipeline(transaction=False)
                beats = self._keepalives(pipe, set(), now)
                self._marks(pipe, epoch, now)
                await self._execute(pipe)
                self._spoke_ns[beats] = now
                self._marked_ns = now
            return 0
        by_partition: dict[int, list[pb.Quote]] = {}
        pipe = self.redis.pipeline(transaction=False)
        new_names: dict[str, str] = {}
        for loc in moved.tolist():
            view = read_quote(books, loc)
            symbol = view.symbol or ""
            p = crc32_partition(symbol, self.partitions)
            by_partition.setdefault(p, []).append(view.to_pb())
            pipe.hset(quote_key(symbol), mapping=view.hash_fields())  # type: ignore[arg-type]
            if symbol not in self.announced:
                new_names[symbol] = f"{loc}:{p}"
        status_by_partition: dict[int, list[pb.SymbolStatus]] = {}
        for loc in status_moved.tolist():
            status = read_status(books, books.symbol_of, loc)
            symbol = status.symbol or ""
            p = crc32_partition(symbol, self.partitions)
            status_by_partition.setdefault(p, []).append(status.to_pb())
            pipe.hset(status_key(symbol), mapping=status.hash_fields())  # type: ignore[arg-type]
            if symbol not in self.announced:
                new_names[symbol] = f"{loc}:{p}"
        if new_names:
            pipe.hset(SYMBOLS, mapping=new_names)  # type: ignore[arg-type]
        for p, quotes in by_partition.items():
            batch = pb.ServerMessage(quotes=pb.QuoteBatch(quotes=quotes))
            pipe.spublish(quotes_channel(p), batch.SerializeToString())
        for p, statuses in status_by_partition.items():
            batch = pb.ServerMessage(status=pb.StatusBatch(symbols=statuses))
            pipe.spublish(quotes_channel(p), batch.SerializeToString())
        if market.version != self.market_published:
            pipe.hset(MARKET_STATUS, mapping=market.hash_fields())  # type: ignore[arg-type]
            pipe.spublish(MARKET_CHANNEL, pb.ServerMessage(status=pb.StatusBatch(market=market.to_pb()))
                          .SerializeToString())
        history = self.redis.pipeline(transaction=False)
        spoke = {*by_partition, *status_by_partition, *self._trades(history, pipe, prints, epoch, now)}
        spoke.update(self._keepalives(pipe, spoke, now))
        # the hashes are current as of now: readers measure a quote's age from this (a dead feed stops it)
        self._marks(pipe, epoch, now)
        if len(prints.locate):
            # the prints' history is written before they are published: on a cluster the stream and the channel
            # live on different masters, and a node that starts following a partition reads the stream after
            # Redis confirmed its subscription, so a print it did not hear published must be in the stream then
            await self._execute(history)
        await self._execute(pipe)
        self._spoke_ns[list(spoke)] = now
        self._marked_ns = now
        self.trade_cursor = cursor
        self.announced.update(new_names)
        self.published[moved] = books.seq[moved]
        self.status_published[status_moved] = books.status_seq[status_moved]
        self.market_published = market.version
        self.counters["publishes"] += 1
        self.counters["quotes"] += len(moved)
        self.counters["status"] += len(status_moved)
        self.counters["trades"] += len(prints.locate)
        return len(moved)

    def _marks(self, pipe: Any, epoch: int, now: int) -> None:
        # three SETs, not one MSET: on a cluster the three keys live on different slots
        pipe.set(QUOTES_LIVE, now)
        pipe.set(FEED_EPOCH, epoch)
        pipe.set(FEED_STATE, self.feed_state())

    def _keepalives(self, pipe: Any, spoke: set[int], now: int) -> list[int]:
        """A heartbeat on each partition's channel that carried nothing for ``LIVE_MARK_EVERY_NS``: a reader
        tells a quiet partition from a silent one (a shard lost in a failover)."""
        quiet = [p for p in np.flatnonzero(now - self._spoke_ns >= LIVE_MARK_EVERY_NS).tolist() if p not in spoke]
        if quiet:
            beat = pb.ServerMessage(heartbeat=pb.Heartbeat(server_time_ns=now)).SerializeToString()
            for p in quiet:
                pipe.spublish(quotes_channel(p), beat)
        return quiet

    @staticmethod
    async def _execute(pipe: Any) -> None:
        """The round's pipeline; a round that failed anywhere raises and is sent again whole next interval
        (on a cluster, the shards that took it see it twice: quotes and status are versioned, readers drop
        prints they hold, and a print's history entry already written is the one error let pass)."""
        for result in await pipe.execute(raise_on_error=False):
            if isinstance(result, Exception) and not _already_written(result):
                raise result

    def _trades(self, history: Any, pipe: Any, prints: TradePrints, epoch: int, now: int) -> set[int]:
        """This round's prints: into each symbol's history (``history``), and on the partition channels beside
        the quotes (``pipe``, sent after ``history``)."""
        symbol_of = self.books.symbol_of
        by_partition: dict[int, list[pb.Trade]] = {}
        touched: set[str] = set()
        for i in range(len(prints.locate)):
            symbol = symbol_of[int(prints.locate[i])]
            if symbol is None:
                continue
            t = trade_pb(symbol, prints, i)
            by_partition.setdefault(crc32_partition(symbol, self.partitions), []).append(t)
            key = trades_key(epoch, symbol)
            history.xadd(key, {"t": t.SerializeToString(), "at": now}, id=f"{t.trade_seq}-0",
                         maxlen=self.history_prints, approximate=False)
            touched.add(key)
        for key in touched:
            history.expire(key, self.history_ttl)
        for p, trades in by_partition.items():
            pipe.spublish(quotes_channel(p), pb.ServerMessage(trades=pb.TradeBatch(trades=trades)).SerializeToString())
        return set(by_partition)


class RedisBooks(BookRow):
    """A ``BookSource`` fed from Redis (see the module docstring)."""

    def __init__(self, url: str, *, watched: Callable[[], npt.NDArray[np.int32]] | None = None,
                 trade_capacity: int = 65_536, history_prints: int = 10_000, history_seconds: float = 60.0) -> None:
        n = MAX_LOCATES
        self.channels = PartitionSubscriber(url, on_message=self._take, follow=self._follow_once,
                                            on_lost=self._partitions_lost, on_regained=self._partitions_regained)
        self.redis = self.channels.redis
        bind_row(self, new_row(n))
        self.depth = DepthLevels(self.depth_seq)  # filled by a RedisDepth (``normalize.replicas.redis_depth``)
        self.market = new_market()
        self._status_diff = StatusDiff()
        self.symbol_of: list[str | None] = [None] * n
        self.locate_of: dict[str, int] = {}
        self.partition: dict[int, int] = {}
        self.high_locate = 0
        self.counters: dict[str, int] = {"quotes_applied": 0, "status_applied": 0, "partitions_subscribed": 0,
                                         "seeded": 0, "trades_applied": 0, "trades_duplicate": 0,
                                         "partitions_silent": 0, "channels_lost": 0, "channels_regained": 0}
        self._trades = TradeRing(trade_capacity)
        self._trade_seq = np.zeros(n, np.int64)  # per locate, the newest trade_seq applied (this feed epoch)
        self.history_prints = history_prints
        self.history_age_ns = int(history_seconds * 1e9)
        # the publisher's marks: its feed session (trade_seq numbering), its feed state, when it was last live
        self.session_epoch = 0
        self._feed_state = "in_sync"
        self._live_ns = 0
        # which locates clients watch (the hub's subscription counts); set after the hub exists
        self.watched = watched
        self._subscribed: set[int] = set()
        self._seeded: set[int] = set()
        self._partition_of_channel = {quotes_channel(p): p for p in range(QUOTE_PARTITIONS)}
        self._silent: set[int] = set()  # subscribed partitions not heard for STALE_AFTER_NS, or lost (failover)
        self._subscribed_at: dict[int, float] = {}
        self._directory_at = time.monotonic()
        self._directory_size = -1  # the directory's length when last read

    @property
    def trades_total(self) -> int:
        return self._trades.total

    def levels(self, locate: int, side: int, n: int) -> list[tuple[int, int]]:
        return self.depth.levels(locate, side, n)

    def trades_since(self, cursor: int) -> tuple[TradePrints, int, int]:
        return self._trades.since(cursor)

    def feed_state(self) -> str:
        """The publisher's feed state, or "stale" when it has not been live for ``STALE_AFTER_NS``."""
        if self._live_ns and time.time_ns() - self._live_ns > STALE_AFTER_NS:
            return "stale"
        return self._feed_state

    async def fetch_trades(self, symbol: str, after: int, epoch: int) -> list[pb.Trade]:
        """The prints of ``symbol`` after trade_seq ``after`` that the publisher's history of feed session
        ``epoch`` still holds (at most ``history_prints``, none older than the history's age)."""
        entries = await self.redis.xrange(trades_key(epoch, symbol), min=f"({after}-0", max="+",
                                          count=self.history_prints)
        oldest = time.time_ns() - self.history_age_ns
        out = []
        for _, fields in entries or ():
            raw, at = (fields or {}).get(b"t"), (fields or {}).get(b"at")
            if isinstance(raw, bytes) and at is not None and int(at) >= oldest:
                out.append(pb.Trade.FromString(raw))
        return out

    async def load_marks(self) -> None:
        pipe = self.redis.pipeline(transaction=False)  # three slots on a cluster: not one MGET
        for key in (FEED_EPOCH, FEED_STATE, QUOTES_LIVE):
            pipe.get(key)
        epoch, state, live = await pipe.execute()
        if epoch is not None:
            if self.session_epoch and int(epoch) != self.session_epoch:
                self._trade_seq[:] = 0  # a new feed session numbers its prints from 1 again
            self.session_epoch = int(epoch)
        if state is not None:
            self._feed_state = _text(state)
        if live is not None:
            self._live_ns = int(live)

    @property
    def status_total(self) -> int:
        return self._status_diff.total

    def status_since(self, cursor: int) -> tuple[list[StatusEvent], int, int]:
        """Status crosses Redis as state: one event per symbol whose status moved since the last call."""
        return self._status_diff.since(self, self.symbol_of, self.market, self.high_locate)

    async def start(self) -> None:
        await self.redis.ping()
        await self.load_directory()
        # the market is everyone's: followed from the start, then seeded (a change between the two is not lost)
        await self.channels.subscribe([MARKET_CHANNEL])
        h = await self.redis.hgetall(MARKET_STATUS)
        if h:
            self._apply_market(MarketStatusView.parse(h))
        await self.load_marks()
        await self.channels.start()

    async def close(self) -> None:
        await self.channels.close()

    async def load_directory(self) -> None:
        """Learn the tickers the publisher listed since the last read. Every edge polls this each second, and a
        full read of 10,000 names is ~220 kB and ~5 ms of Redis (and more of the edge's own time), so it is read
        only when its length moved: the publisher adds names and never removes one."""
        if await self.redis.hlen(SYMBOLS) == self._directory_size:
            return
        entries = await self.redis.hgetall(SYMBOLS)
        self._directory_size = len(entries)  # names added between the two reads are in ``entries`` already
        for raw_sym, raw in entries.items():
            sym = _text(raw_sym)
            loc_s, _, part_s = _text(raw).partition(":")
            loc = parse_ascii_int(loc_s, 5)
            if self.symbol_of[loc] is None:
                self.symbol_of[loc] = sym
                self.locate_of[sym] = loc
                self.partition[loc] = parse_ascii_int(part_s, 5)
                self.known[loc] = True
                self.high_locate = max(self.high_locate, loc)

    async def _follow_once(self) -> None:
        """Subscribe to the partitions of watched symbols and seed new ones from their hashes (every
        ``FOLLOW_EVERY``, from the subscriber)."""
        await self._judge_partitions()
        if self.watched is None:
            return
        await self.follow(self.unfollowed(np.flatnonzero(self.watched()[: self.high_locate + 1] > 0).tolist()))
        now = time.monotonic()
        if now - self._directory_at >= DIRECTORY_REFRESH:  # symbols listed later on the origin
            self._directory_at = now
            await self.load_directory()
            await self.load_marks()

    def unfollowed(self, locates: list[int]) -> list[int]:
        """Those of ``locates`` not followed yet."""
        return [loc for loc in locates if loc not in self._seeded]

    async def follow(self, new: list[int]) -> None:
        """Subscribe to these symbols' partitions, then seed them from their hashes (also called by the fan-out
        before a subscription's snapshots, through ``RemoteBooks.follow``)."""
        parts = {self.partition[loc] for loc in new if loc in self.partition} - self._subscribed
        if parts:
            await self.channels.subscribe(quotes_channel(p) for p in sorted(parts))
            now = time.monotonic()
            self._subscribed_at.update((p, now) for p in parts)
            self._subscribed |= parts
            self.counters["partitions_subscribed"] = len(self._subscribed)
        for loc in new:  # after subscribing, so no update falls between the seed and the stream
            if await self._seed(loc):
                self._seeded.add(loc)
                self.counters["seeded"] += 1

    async def _seed(self, loc: int) -> bool:
        """A symbol's quote and status from its hashes (a partition silent meanwhile keeps it flagged stale)."""
        sym = self.symbol_of[loc]
        if sym is None:  # a watched locate always has a ticker; nothing to seed otherwise
            return False
        h = await self.redis.hgetall(quote_key(sym))
        if h:
            self._apply_record(h, loc, same=True)
        h = await self.redis.hgetall(status_key(sym))
        if h:
            self._apply_status(SymbolStatusView.parse(h), loc)
        if self.partition.get(loc) in self._silent:
            self.stale[loc] = True
        return True

    # ------------------------------------------------------------------ a partition's silence (failover)
    async def _judge_partitions(self) -> None:
        """A subscribed partition whose channel was lost, or that has not spoken for ``STALE_AFTER_NS`` (the
        publisher speaks at least once a second on each), is silent: its symbols are flagged stale (quotes in
        snapshots, liveness in heartbeats) until it speaks again, when they are re-seeded from their hashes."""
        now = time.monotonic()
        limit = STALE_AFTER_NS / 1e9
        silent = set()
        for p in self._subscribed:
            ch = quotes_channel(p)
            if ch in self.channels.lost or now - self.channels.heard.get(ch, self._subscribed_at[p]) > limit:
                silent.add(p)
        went, back = silent - self._silent, self._silent - silent
        self._silent = silent
        for loc in list(self._seeded):
            part = self.partition.get(loc)
            if part in went:
                self.stale[loc] = True
            elif part in back:
                await self._seed(loc)  # the updates published while nobody listened, and the feed's own flag
        if went or back:
            self.counters["partitions_silent"] = len(silent)
            log.info("Redis partitions silent: %s", sorted(silent))
        for name in ("channels_lost", "channels_regained"):  # the subscriber's, in the node's metrics
            self.counters[name] = self.channels.counters[name]

    async def _partitions_lost(self, channels: set[str]) -> None:
        await self._judge_partitions()

    async def _partitions_regained(self, channels: set[str]) -> None:
        """Back on the promoted replica: seed what was published meanwhile (still stale until the partition
        speaks, a moment later)."""
        parts = {self._partition_of_channel[ch] for ch in channels if ch in self._partition_of_channel}
        for loc in list(self._seeded):
            if self.partition.get(loc) in parts:
                await self._seed(loc)

    def _take(self, data: bytes) -> None:
        """One published message: quotes, status, trades, or the publisher's keepalive (nothing to apply)."""
        batch = pb.ServerMessage.FromString(data)
        for q in batch.quotes.quotes:
            self._apply_quote(q)
        if batch.HasField("status"):
            for st in batch.status.symbols:
                loc = self.locate_of.get(st.symbol)
                if loc is not None:
                    self._apply_status(SymbolStatusView.from_pb(st), loc)
            if batch.status.HasField("market"):
                self._apply_market(MarketStatusView.from_pb(batch.status.market))
        for t in batch.trades.trades:
            self._apply_trade(t)

    def _apply_status(self, view: SymbolStatusView, loc: int) -> None:
        if view.version > self.status_seq[loc]:  # older than what we hold: a seed raced the stream
            view.write(self, loc)
            self.counters["status_applied"] += 1

    def _apply_market(self, view: MarketStatusView) -> None:
        if view.version > self.market[M_VERSION]:
            view.write(self.market)

    def _apply_trade(self, t: pb.Trade) -> None:
        loc = self.locate_of.get(t.symbol)
        if loc is None:
            return
        if 0 < t.trade_seq <= self._trade_seq[loc]:  # a round the publisher sent again after a failed one
            self.counters["trades_duplicate"] += 1
            return
        self._trade_seq[loc] = t.trade_seq
        self._trades.record(loc, t.price, t.size, t.exchange_time_ns, t.match_number, t.seq, t.trade_seq,
                            flags_from_names(t.aggressor, t.cross, t.printable))
        self.counters["trades_applied"] += 1

    def _apply_quote(self, q: pb.Quote) -> None:
        loc = self.locate_of.get(q.symbol)
        if loc is None or q.seq <= self.seq[loc]:
            return  # unknown yet, or older than what we hold (a seed raced the stream)
        QuoteView.from_pb(q).write(self, loc)
        self.counters["quotes_applied"] += 1

    def _apply_record(self, rec: Mapping[bytes | str, bytes | str], loc: int, *, same: bool = False) -> None:
        """A ``quote:`` hash, unless it is older than what we hold (``same``: or as old: its flags, e.g. the
        feed's ``stale``, replace ours)."""
        view = QuoteView.parse(rec)
        if view.seq > self.seq[loc] or (same and view.seq == self.seq[loc]):
            view.write(self, loc)
