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
it covers.

``RedisBooks`` (on a fan-out node with no feed): a ``BookSource`` fed from Redis. It subscribes only to the
partitions of symbols its clients watch, seeding each newly watched symbol from its ``quote:`` hash, and
applies published quotes into its own copy of the book row; the fan-out diffs and encodes them as usual. Bars
travel too (``normalize.replicas.redis_bars``). Depth does not travel over Redis yet: that channel is empty on a
Redis-fed node.

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
import redis.asyncio as aioredis

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

from ..bar_feed import BarSource
from ..book import MAX_LOCATES
from ..quote import QuoteView, read_quote
from ..row import BookRow, bind_row, new_row
from ..source import BookSource
from ..status import M_VERSION, MarketStatusView, StatusDiff, StatusEvent, SymbolStatusView, new_market, read_status
from ..trades import TradePrints, TradeRing, flags_from_names, trade_pb
from .redis_bars import RedisBarPublisher

log = logging.getLogger("tickfan.redis")
DIRECTORY_REFRESH = 1.0  # seconds between re-reads of the ticker directory


LIVE_MARK_EVERY_NS = 1_000_000_000
# a reader calls the feed stale when the publisher has not marked it live for this long
STALE_AFTER_NS = 5_000_000_000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
        self.redis = aioredis.from_url(url)
        self.bar_publisher = None if bars is None else RedisBarPublisher(
            books, bars, self.redis, partitions=partitions, history_1s=bars_history[0], history_1m=bars_history[1])
        self.partitions = partitions
        self.interval = interval
        self.published = books.seq.copy()
        # status changes rarely: what the books hold already is written at the first round, not only what moves
        self.status_published = np.zeros_like(books.status_seq)
        self.market_published = 0
        self.announced: set[str] = set()
        self.counters = {"publishes": 0, "quotes": 0, "status": 0, "errors": 0, "trades": 0}
        self._marked_ns = 0  # when QUOTES_LIVE was last set
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
                if self.bar_publisher is not None:
                    await self.bar_publisher.publish_once()
            except Exception:  # Redis down: keep the node serving, try again next interval
                self.counters["errors"] += 1
                log.warning("publishing to Redis failed", exc_info=self.counters["errors"] == 1)

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
            # market orders on a quiet symbol are not refused as stale (a dead ingest stops the mark)
            if now - self._marked_ns >= LIVE_MARK_EVERY_NS:
                await self.redis.mset({QUOTES_LIVE: now, FEED_EPOCH: epoch, FEED_STATE: self.feed_state()})
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
        self._trades(pipe, prints, epoch, now)
        # the hashes are current as of now: readers measure a quote's age from this (a dead feed stops it)
        pipe.mset({QUOTES_LIVE: now, FEED_EPOCH: epoch, FEED_STATE: self.feed_state()})
        await pipe.execute()
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

    def _trades(self, pipe: Any, prints: TradePrints, epoch: int, now: int) -> None:
        """This round's prints: on the partition channels beside the quotes, and into each symbol's history."""
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
            pipe.xadd(key, {"t": t.SerializeToString(), "at": now}, id=f"{t.trade_seq}-0",
                      maxlen=self.history_prints, approximate=False)
            touched.add(key)
        for key in touched:
            pipe.expire(key, self.history_ttl)
        for p, trades in by_partition.items():
            pipe.spublish(quotes_channel(p), pb.ServerMessage(trades=pb.TradeBatch(trades=trades)).SerializeToString())


class RedisBooks(BookRow):
    """A ``BookSource`` fed from Redis (see the module docstring)."""

    def __init__(self, url: str, *, watched: Callable[[], npt.NDArray[np.int32]] | None = None,
                 trade_capacity: int = 65_536, history_prints: int = 10_000, history_seconds: float = 60.0) -> None:
        n = MAX_LOCATES
        self.redis = aioredis.from_url(url)
        bind_row(self, new_row(n))
        self.market = new_market()
        self._status_diff = StatusDiff()
        self.symbol_of: list[str | None] = [None] * n
        self.locate_of: dict[str, int] = {}
        self.partition: dict[int, int] = {}
        self.high_locate = 0
        self.counters: dict[str, int] = {"quotes_applied": 0, "status_applied": 0, "partitions_subscribed": 0,
                                         "seeded": 0, "trades_applied": 0}
        self._trades = TradeRing(trade_capacity)
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
        self._pubsub = self.redis.pubsub()
        self._directory_at = time.monotonic()
        self._directory_size = -1  # the directory's length when last read
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def trades_total(self) -> int:
        return self._trades.total

    def levels(self, locate: int, side: int, n: int) -> list[tuple[int, int]]:
        return []

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
        epoch, state, live = await self.redis.mget(FEED_EPOCH, FEED_STATE, QUOTES_LIVE)
        if epoch is not None:
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
        await self._pubsub.ssubscribe(MARKET_CHANNEL)
        h = await self.redis.hgetall(MARKET_STATUS)
        if h:
            self._apply_market(MarketStatusView.parse(h))
        await self.load_marks()
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self._listen())]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()

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

    async def _follow(self) -> None:
        """Subscribe to the partitions of watched symbols and seed new ones from their hashes."""
        while True:
            try:
                await self._follow_once()
            except Exception:
                log.warning("following Redis partitions failed", exc_info=True)
            await asyncio.sleep(0.05)

    async def _follow_once(self) -> None:
        if self.watched is None:
            return
        want = np.flatnonzero(self.watched()[: self.high_locate + 1] > 0).tolist()
        new = [loc for loc in want if loc not in self._seeded]
        parts = {self.partition[loc] for loc in new if loc in self.partition} - self._subscribed
        if parts:
            await self._pubsub.ssubscribe(*(quotes_channel(p) for p in sorted(parts)))
            self._subscribed |= parts
            self.counters["partitions_subscribed"] = len(self._subscribed)
        for loc in new:  # after subscribing, so no update falls between the seed and the stream
            sym = self.symbol_of[loc]
            if sym is None:  # a watched locate always has a ticker; nothing to seed otherwise
                continue
            h = await self.redis.hgetall(quote_key(sym))
            if h:
                self._apply_record(h, loc)
            h = await self.redis.hgetall(status_key(sym))
            if h:
                self._apply_status(SymbolStatusView.parse(h), loc)
            self._seeded.add(loc)
            self.counters["seeded"] += 1
        now = time.monotonic()
        if now - self._directory_at >= DIRECTORY_REFRESH:  # symbols listed later on the origin
            self._directory_at = now
            await self.load_directory()
            await self.load_marks()

    async def _listen(self) -> None:
        while True:
            msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None or msg.get("type") != "smessage":
                continue
            batch = pb.ServerMessage.FromString(msg["data"])
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
        self._trades.record(loc, t.price, t.size, t.exchange_time_ns, t.match_number, t.seq, t.trade_seq,
                            flags_from_names(t.aggressor, t.cross, t.printable))
        self.counters["trades_applied"] += 1

    def _apply_quote(self, q: pb.Quote) -> None:
        loc = self.locate_of.get(q.symbol)
        if loc is None or q.seq <= self.seq[loc]:
            return  # unknown yet, or older than what we hold (a seed raced the stream)
        QuoteView.from_pb(q).write(self, loc)
        self.counters["quotes_applied"] += 1

    def _apply_record(self, rec: Mapping[bytes | str, bytes | str], loc: int) -> None:
        """A ``quote:`` hash, unless it is older than what we hold."""
        view = QuoteView.parse(rec)
        if view.seq > self.seq[loc]:
            view.write(self, loc)
