"""The parts a node is made of, and the one place that picks them for a configuration.

A node is a short list of roles started in order and closed in reverse:

=================  ==============================================================  =========================
role               what it is                                                       when
=================  ==============================================================  =========================
``IngestRole``     feed handler -> books (``KernelBooks``, ``Books`` when --plain,  a feed: not --attach,
                   a shared-memory ``ShmPublisher``'s books when --publish)          not --from-redis
``AttachedBooks``  a ``BookView`` over the books ingest workers publish in shm      --attach
``RemoteBooks``    ``RedisBooks``: the books another host publishes to Redis        --from-redis
``RedisPublish``   ``RedisPublisher``: the book source's changes out to Redis       --redis
``EdgeRole``       fan-out (WebSocket, orders relay) + HTTP (snapshots, /metrics)  not --publish
=================  ==============================================================  =========================

Exactly one of the first three is the node's book source; the publisher reads it, the edge serves it. Roles
know nothing of each other: ``build_roles`` wires the few hooks between them (the feed tells the fan-out
that books changed; the Redis reader asks the fan-out which symbols its clients watch).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from prometheus_client.registry import Collector
from starlette.routing import Route

from fanout.config import FanoutConfig
from fanout.follow import Follow
from fanout.orders import OrderRelay
from fanout.server import FanoutServer
from ingest.handler import FeedHandler, open_feeds
from ingest.messages import Message
from ingest.partition import PartitionFilter, PartitionMap
from ingest.recovery import DEFAULT_MAX_HELD_BYTES
from ingest.session import DEFAULT_MAX_GAP
from normalize import Books
from normalize.bar_feed import BarFeed, BarSource, PrintSource
from normalize.replicas.redis import RedisBooks, RedisPublisher
from normalize.replicas.redis_bars import RedisBars
from normalize.replicas.redis_depth import RedisDepth
from normalize.replicas.shm import BookView, SharedBookState, ShmPublisher
from normalize.source import BookSource
from snapshots.http import create_app
from tickfan.health import CheckResult, FeedReadiness, Health, redis_check
from tickfan.httpserver import EmbeddedHTTPServer, serve_embedded, uvicorn_tls
from tickfan.metrics import OriginCollector, metrics_endpoint
from tickfan.web import WebApp, stream_sources
from vocab.clock import session_date, today_eastern
from vocab.origins import OriginGuard, OriginPolicy
from vocab.tls import TlsFiles

log = logging.getLogger("tickfan.node")


@dataclass
class NodeConfig:
    feeds: list[tuple[str, int]] = field(default_factory=lambda: [("127.0.0.1", 30001)])
    rewinder: tuple[str, int] | None = None
    snapshot: tuple[str, int] | None = None
    recovery_timeout: float = 2.0
    http: tuple[str, int] = ("127.0.0.1", 8000)
    ws: tuple[str, int] = ("127.0.0.1", 8765)
    flush_interval: float = 0.05
    # the MoldUDP64 session to accept; None: pinned from the first snapshot (``snapshot`` is then required)
    session: str | None = None
    # the trading day the feed's ITCH stamps count from; None: the date the session's name carries (a replay's),
    # else today in New York, decided at the first packet
    session_date: dt.date | None = None
    interface: str = "127.0.0.1"
    # the addresses feed datagrams are taken from, (host, port or None for any); None: any source
    feed_sources: list[tuple[str, int | None]] | None = None
    # a sequence farther than this from the stream is ignored as implausible (ingest.session.DEFAULT_MAX_GAP)
    max_gap: int = DEFAULT_MAX_GAP
    # payload held beyond a hole while it is recovered, at most
    max_held_bytes: int = DEFAULT_MAX_HELD_BYTES
    # (map, this node's partition) when ingest is split over several processes
    partition: tuple[PartitionMap, int] | None = None
    # shared-memory books: a worker publishes into them (no HTTP/WebSocket), a reader serves them (no feed)
    publish: str | None = None
    attach: str | None = None
    # a fan-out worker among several on one port; only the first serves HTTP
    reuse_port: bool = False
    serve_http: bool = True
    # across hosts: publish book changes to Redis, or serve books that another host publishes there
    redis: str | None = None
    from_redis: str | None = None
    # apply in-sequence packets through the batched decoder and numba book kernel (False: --plain, the
    # message-at-a-time engine)
    batched: bool = True
    # the WebSocket `orders` channel: users' order updates from this Redis (tickfan:orders:{user}); None: off
    orders_redis: str | None = None
    # https:// and wss:// on the edge (certificate, key; ``ca``: clients must present a certificate it signed)
    tls: TlsFiles = field(default_factory=TlsFiles)
    # the fan-out's other settings (its abuse limits: ``tickfan node --help``); where it listens, its flush
    # interval, port sharing and TLS are the fields above
    stream: FanoutConfig = field(default_factory=FanoutConfig)
    # bars (normalize.bars): closed bars kept per symbol and interval, prints kept to resolve broken trades
    bars_history_1s: int = 3_600
    bars_history_1m: int = 390
    bars_print_log: int = 1 << 18
    # how often quiet symbols' bars are closed on the feed's clock (seconds)
    bar_tick: float = 0.1
    # the web app's static files on GET / (None: the package's web/dist if built, else a placeholder page); the
    # browser origins allowed on HTTP are the stream's (``stream.allowed_origins``)
    web_root: Path | None = None
    # /readyz: a feed gap may be recovered for this long, and the feed silent (no packet, no heartbeat) for this
    # long, before the node stops being ready (tickfan.health.FeedReadiness)
    ready_max_recovering: float = 10.0
    ready_max_silence: float = 10.0


def bar_feed(config: NodeConfig, books: PrintSource) -> BarFeed:
    # no time offset: a node's books store every time as Unix epoch ns already (``Books.set_session_date``)
    return BarFeed(books, history_1s=config.bars_history_1s,
                   history_1m=config.bars_history_1m, print_log=config.bars_print_log)


class Role(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


class IngestRole:
    """Feed handler -> books, and (``--publish``) the shared-memory publisher the books live in."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.shared: SharedBookState | None = None
        self.shm_publisher: ShmPublisher | None = None
        # this node's share of the symbols: the feed session's filter (plain), or the kernel's (batched: it
        # filters undecoded blocks); the same object cuts a snapshot down, so both learn the same directory
        self.partition = self._partition_filter()
        kernel_partition = self.partition if config.batched else None
        if config.publish:  # a worker's books are rows of the shared block
            self.shared = SharedBookState.attach(config.publish)
            self.shm_publisher = ShmPublisher(self.shared, config.partition[1] if config.partition else 0,
                                              batched=config.batched, partition=kernel_partition)
            self.books: Books = self.shm_publisher.books
        elif config.batched:
            from normalize.kernel import KernelBooks, warm_up

            warm_up()  # compile or load the kernels now, not on the first packet
            self.books = KernelBooks(partition=kernel_partition)
        else:
            self.books = Books()
        if config.session_date is not None:
            self.books.set_session_date(config.session_date)
        self.notify: Callable[[], None] = lambda: None  # set by the builder: the edge's "books changed"
        self.feed: FeedHandler | None = None
        # bars from the books' prints: after each packet (or batch of packets), and on a timer for quiet symbols;
        # a shared-memory worker builds none (its readers build them from the prints it copies there)
        self.bars: BarFeed | None = None if config.publish else bar_feed(config, self.books)
        self._bar_timer: asyncio.Task[None] | None = None

    def date_books(self) -> dt.date:
        """The session's date, for the books' clock: configured, else the one the MoldUDP64 session's name
        carries (``tickfan replay`` names its sessions after the file's date), else today in New York."""
        session = self.feed.session.session if self.feed is not None else None
        day = (self.config.session_date or (session_date(session) if session else None)) or today_eastern()
        self.books.set_session_date(day)
        return day

    async def start(self) -> None:
        c = self.config
        # a shared-memory worker applies through its publisher, which brackets each packet for the readers
        target: Books | ShmPublisher = self.shm_publisher or self.books
        apply, notify, books = target.apply_batch, self.notify, self.books
        pump: Callable[[], object] = self.bars.pump if self.bars is not None else lambda: None

        # the date is settled at the first packet with messages, once the session's name is known
        def sink(messages: list[Message]) -> None:
            if books.session_date is None:
                self.date_books()
            apply(messages)
            pump()
            notify()

        raw_sink = None
        # batched: whole blocks to the kernel (a shared-memory worker's through its publisher, which brackets
        # each block for the readers)
        apply_bytes = getattr(target if self.shm_publisher is not None and c.batched else self.books,
                              "apply_bytes", None)
        if apply_bytes is not None:
            def raw_sink(blocks: bytes) -> None:
                if books.session_date is None:
                    self.date_books()
                apply_bytes(blocks)
                pump()
                notify()

        def rebuild(snapshot: list[Message]) -> None:
            if books.session_date is None:
                self.date_books()
            target.rebuild(snapshot)

        self.feed = await open_feeds(
            c.feeds, sink, session=c.session, interface=c.interface, rewinder=c.rewinder,
            on_stale=target.set_stale_all, recovery_timeout=c.recovery_timeout, snapshot=c.snapshot,
            on_snapshot=rebuild, partition=self.partition,
            raw_sink=raw_sink, sources=c.feed_sources, max_gap=c.max_gap, max_held_bytes=c.max_held_bytes,
            adopt_session=False,
        )
        if c.feed_sources is None:
            log.warning("feed: datagrams accepted from any source (no --feed-source given)")
        if c.session is None:
            log.warning("feed: no --session given; the session is pinned from the first snapshot")
        if self.bars is not None:
            self._bar_timer = asyncio.create_task(self._close_quiet_bars(self.bars))

    def _partition_filter(self) -> PartitionFilter | None:
        """The worker's share of the symbols; none for a batched worker that has them all (one partition): its
        blocks go to the kernel unfiltered (a filter refuses a locate until its directory entry)."""
        part = self.config.partition
        if part is None or (self.config.batched and part[0].partitions == 1):
            return None
        return PartitionFilter(*part)

    async def _close_quiet_bars(self, bars: BarFeed) -> None:
        """Close the bars the feed's clock has passed, for symbols with no print since (the builder's clock
        only moves with prints otherwise)."""
        while True:
            await asyncio.sleep(self.config.bar_tick)
            try:
                if bars.tick():
                    self.notify()
            except Exception:  # a timer must not die: bars would stop closing
                log.exception("closing bars failed")

    async def close(self) -> None:
        if self._bar_timer is not None:
            self._bar_timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bar_timer
        if self.feed is not None:
            self.feed.close()
        if self.shared is not None:
            self.shared.close()


class AttachedBooks:
    """A reader of the books ingest workers publish in shared memory: synced before every fan-out flush.

    Bars are built here, from the prints the workers copy into shared memory (the builder is deterministic:
    every reader of the same prints holds the same bars), so history and stream come from one builder."""

    polled = True  # no feed tells the fan-out about changes: it polls

    def __init__(self, name: str, config: NodeConfig | None = None) -> None:
        self.shared = SharedBookState.attach(name)
        self.books = BookView(self.shared)
        self.bars = bar_feed(config or NodeConfig(), self.books)

    def sync(self) -> None:
        """Before each flush: the books' changed rows, then the bars of the prints they carried."""
        self.books.sync()
        self.bars.tick()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.shared.close()


class RemoteBooks:
    """The books (with their depth, and bars) another host publishes to Redis, followed for the symbols this node's
    clients watch."""

    polled = True

    def __init__(self, url: str, stream: FanoutConfig | None = None) -> None:
        stream = stream or FanoutConfig()
        self.books = RedisBooks(url, history_prints=stream.resume_history_prints,
                                history_seconds=stream.resume_history_seconds)
        self.depth = RedisDepth(self.books, url)
        self.bars = RedisBars(self.books, url)

    def follow(self, subscribed: dict[str, list[int]]) -> Awaitable[None] | None:
        """The fan-out's ``Follow``: a subscription's symbols not followed yet are fetched (subscribed to and
        seeded) before its snapshots; None when every one is followed already."""
        bars = self.bars.unfollowed(loc for ch, locs in subscribed.items() if ch.startswith("bars:") for loc in locs)
        depth = self.depth.unfollowed(subscribed.get("depth", []))
        rows = self.books.unfollowed(sorted({loc for ch, locs in subscribed.items() if not ch.startswith("bars:")
                                             for loc in locs}))
        if not (rows or depth or bars):
            return None
        return self._follow(rows, depth, bars)

    async def _follow(self, rows: list[int], depth: list[int], bars: list[int]) -> None:
        await asyncio.gather(self.books.follow(rows), self.depth.follow(depth), self.bars.follow(bars))

    async def start(self) -> None:
        await self.books.start()
        await self.depth.start()
        await self.bars.start()

    async def close(self) -> None:
        await self.bars.close()
        await self.depth.close()
        await self.books.close()


class RedisPublish:
    """The book source's changes (and its bars, if it builds them) out to Redis, for fan-out nodes on other
    hosts."""

    def __init__(self, books: BookSource, url: str, bars: BarSource | None = None,
                 config: NodeConfig | None = None, feed_state: Callable[[], str] | None = None) -> None:
        c = config or NodeConfig()
        self.publisher = RedisPublisher(books, url, bars=bars, bars_history=(c.bars_history_1s, c.bars_history_1m),
                                        history_prints=c.stream.resume_history_prints,
                                        history_seconds=c.stream.resume_history_seconds, feed_state=feed_state)

    async def start(self) -> None:
        await self.publisher.start()

    async def close(self) -> None:
        await self.publisher.close()


class EdgeRole:
    """WebSocket fan-out (with the orders relay) and, unless ``serve_http`` is off, the snapshot HTTP app."""

    def __init__(self, config: NodeConfig, books: BookSource, *, polled: bool,
                 before_flush: Callable[[], object] | None = None,
                 feed: Callable[[], FeedHandler | None] = lambda: None, bars: BarSource | None = None,
                 feed_state: Callable[[], str] | None = None, follow: Follow | None = None) -> None:
        """``follow``: a book source fed from elsewhere fetches what a subscription needs before its snapshots."""
        self.config = config
        self.books = books
        self.bars = bars
        self._feed = feed
        self.fanout = FanoutServer(
            books,
            dataclasses.replace(config.stream, host=config.ws[0], port=config.ws[1],
                                flush_interval=config.flush_interval, poll_interval=0.005 if polled else None,
                                reuse_port=config.reuse_port, tls=config.tls),
            before_flush=before_flush,
            orders=OrderRelay(config.orders_redis) if config.orders_redis else None,
            bars=bars,
            feed_state=feed_state,
            remote_history=books.fetch_trades if isinstance(books, RedisBooks) else None,
            follow=follow,
        )
        self.extra_routes: list[Route] = []  # served beside the snapshots (the demo mounts the order API here)
        self.extra_collectors: list[Collector] = []  # on /metrics beside the node's own (the demo's ledger check)
        # browsers on HTTP: the same origins as on the stream, counted apart
        self.http_origins = OriginPolicy.of(config.stream.allowed_origins)
        self.web = WebApp.configured(config.web_root, stream_sources(
            config.stream.allowed_origins, config.ws[1], tls=config.tls.enabled),
            stream_port=config.ws[1], tls=config.tls.enabled)
        # /livez and /readyz: the builder adds the checks this node's configuration calls for
        self.health = Health()
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._http: EmbeddedHTTPServer | None = None
        self._http_task: asyncio.Task[None] | None = None

    @property
    def feed(self) -> FeedHandler | None:
        """The feed behind the books, if this process has one (what /metrics reports)."""
        return self._feed()

    async def start(self) -> None:
        await self.fanout.start()
        if not self.config.serve_http:
            return
        origins = OriginCollector({"stream": self.fanout.origins, "http": self.http_origins})
        metrics = Route("/metrics", metrics_endpoint(self, [*self.extra_collectors, origins]))
        app = create_app(self.books, [metrics, *self.health.routes(), *self.extra_routes, *self.web.routes()],
                         bars=self.bars)
        self._http, self._http_task = await serve_embedded(
            OriginGuard(app, self.http_origins), self.config.http[0], self.config.http[1],
            **uvicorn_tls(self.config.tls))

    def add_redis_check(self, name: str, url: str) -> None:
        check, close = redis_check(url)
        self.health.add(name, check)
        self._closers.append(close)

    async def close(self) -> None:
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_task, 5)
        await self.fanout.close()
        for close in self._closers:
            with contextlib.suppress(Exception):
                await close()


@dataclass
class Roles:
    """One node's roles: its book source, and whichever of publisher and edge its configuration asks for."""

    source: IngestRole | AttachedBooks | RemoteBooks
    publisher: RedisPublish | None = None
    edge: EdgeRole | None = None

    @property
    def ingest(self) -> IngestRole | None:
        return self.source if isinstance(self.source, IngestRole) else None

    def in_order(self) -> list[Role]:
        """Start order: books before anything reads them, the edge last (it binds the ports clients use)."""
        return [r for r in (self.source, self.publisher, self.edge) if r is not None]


def feed_state_of(feed: FeedHandler | None) -> str:
    """The feed session's state as the heartbeats' liveness says it: in_sync, recovering (a gap being
    re-requested, or a snapshot being fetched), stale (a gap given up on)."""
    if feed is None:
        return "in_sync"
    state = feed.session.state.value
    return "recovering" if state == "rebuilding" else state


def build_roles(config: NodeConfig) -> Roles:
    """The one place that decides what a node is, from its configuration."""
    source: IngestRole | AttachedBooks | RemoteBooks
    if config.from_redis:
        source = RemoteBooks(config.from_redis, config.stream)
    elif config.attach:
        source = AttachedBooks(config.attach, config)
    else:
        source = IngestRole(config)
    ingest = source if isinstance(source, IngestRole) else None
    feed_state: Callable[[], str] | None = None
    if ingest is not None:
        feed_state = lambda: feed_state_of(ingest.feed)  # noqa: E731
    elif isinstance(source, RemoteBooks):
        feed_state = source.books.feed_state
    source_bars = source.bars if not isinstance(source, RemoteBooks) else None
    publisher = (RedisPublish(source.books, config.redis, source_bars, config, feed_state)
                 if config.redis else None)
    if config.publish:
        return Roles(source, publisher)  # a worker: its books are served by a reader node
    edge = EdgeRole(config, source.books, polled=not isinstance(source, IngestRole),
                    before_flush=source.sync if isinstance(source, AttachedBooks) else None,
                    feed=(lambda: ingest.feed) if ingest is not None else lambda: None,
                    bars=source.bars, feed_state=feed_state,
                    follow=source.follow if isinstance(source, RemoteBooks) else None)
    add_health_checks(config, source, edge)
    if isinstance(source, IngestRole):
        source.notify = edge.fanout.notify
    elif isinstance(source, RemoteBooks):
        hub = edge.fanout.hub
        # follow only the symbols this node's clients watch, for quotes, depth (its frames carry the row's
        # exchange time and flags), trades or status; their depth only for the depth channel
        source.books.watched = lambda: hub.quotes.count + hub.depth.count + hub.trade_count + hub.status.count
        source.depth.watched = lambda: hub.depth.count
        bar_watchers = edge.fanout.hub.bars.watchers
        source.bars.watched = lambda: [loc for _, loc in bar_watchers]
    return Roles(source, publisher, edge)


def add_health_checks(config: NodeConfig, source: IngestRole | AttachedBooks | RemoteBooks, edge: EdgeRole) -> None:
    """What /readyz asks of this node: its feed (in sync or recovering within bound, heard from lately), or the
    Redis its books come from (and the publisher's liveness there), and every Redis it uses."""
    import time

    judge = FeedReadiness(max_recovering=config.ready_max_recovering, max_silence=config.ready_max_silence,
                          now=time.monotonic())
    if isinstance(source, IngestRole):
        ingest = source

        def feed() -> CheckResult:
            return judge.observe_state(feed_state_of(ingest.feed), time.monotonic())

        def books() -> CheckResult:
            if ingest.feed is None:
                return CheckResult(False, "feed not open")
            counters = ingest.feed.session.counters
            return judge.observe_traffic(counters["packets"] + counters["heartbeats"], time.monotonic())

        edge.health.add_sync("feed", feed)
        edge.health.add_sync("books", books)
    elif isinstance(source, RemoteBooks):
        remote = source.books

        def remote_feed() -> CheckResult:  # "stale" too when the publisher has not been live for a while
            return judge.observe_state(remote.feed_state(), time.monotonic())

        edge.health.add_sync("feed", remote_feed)
        assert config.from_redis is not None
        edge.add_redis_check("redis_books", config.from_redis)
    if config.redis:
        edge.add_redis_check("redis_publish", config.redis)
    if config.orders_redis:
        edge.add_redis_check("redis_orders", config.orders_redis)
