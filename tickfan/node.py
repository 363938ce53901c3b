"""A market-data node: feed handler -> books -> snapshot HTTP and WebSocket fan-out, in one process.

``tickfan node`` listens to an outside feed (or the simulator that ``tickfan demo`` starts beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from prometheus_client.registry import Collector
from starlette.routing import Route

from fanout.config import FanoutConfig
from fanout.server import FanoutServer
from ingest.handler import FeedHandler
from ingest.partition import PartitionFilter, PartitionMap
from ingest.recovery import DEFAULT_MAX_HELD_BYTES
from ingest.session import DEFAULT_MAX_GAP
from normalize.source import BookSource
from tickfan.args import add_tls_arguments, date_arg, hostport, source, tls_files
from tickfan.health import Health
from tickfan.metrics import NodeCollector
from tickfan.metrics_share import SharedMetrics, add_metrics_dir_arguments, writer_of
from tickfan.roles import NodeConfig, Roles, build_roles
from vocab.origins import normalize_origin, own_origins

__all__ = ["Node", "NodeConfig", "StatusLine", "add_arguments", "add_node_arguments", "node_config",
           "print_endpoints", "run_until_stopped", "stream_limit_flags"]

log = logging.getLogger("tickfan.node")


class Node:
    """A node is its roles (``tickfan.roles``), started in order and closed in reverse; nothing else.

    ``build_roles`` picks them from the configuration; pass ``roles`` to run a hand-made set instead.
    """

    def __init__(self, config: NodeConfig, roles: Roles | None = None) -> None:
        self.config = config
        self.roles = roles if roles is not None else build_roles(config)

    @property
    def books(self) -> BookSource:
        return self.roles.source.books

    @property
    def feed(self) -> FeedHandler | None:
        ingest = self.roles.ingest
        return ingest.feed if ingest is not None else None

    @property
    def fanout(self) -> FanoutServer | None:
        return self.roles.edge.fanout if self.roles.edge is not None else None

    @property
    def extra_routes(self) -> list[Route]:
        """Routes served beside the snapshots (the demo mounts the order API here); set before ``start``."""
        return self.roles.edge.extra_routes if self.roles.edge is not None else []

    @extra_routes.setter
    def extra_routes(self, routes: list[Route]) -> None:
        if self.roles.edge is None:
            raise ValueError("this node serves no HTTP (an ingest worker): no routes to add")
        self.roles.edge.extra_routes = routes

    @property
    def extra_collectors(self) -> list[Collector]:
        """Metric collectors served on the node's ``/metrics`` beside its own; set before ``start``."""
        return self.roles.edge.extra_collectors if self.roles.edge is not None else []

    @extra_collectors.setter
    def extra_collectors(self, collectors: list[Collector]) -> None:
        if self.roles.edge is None:
            raise ValueError("this node serves no HTTP (an ingest worker): no metrics to add")
        self.roles.edge.extra_collectors = collectors

    @property
    def health(self) -> Health | None:
        """/livez and /readyz's checks (None: this node serves no HTTP); add to them before or after ``start``."""
        return self.roles.edge.health if self.roles.edge is not None else None

    async def start(self) -> None:
        for role in self.roles.in_order():
            await role.start()

    async def close(self) -> None:
        for role in reversed(self.roles.in_order()):
            await role.close()

    def endpoints(self) -> dict[str, str]:
        hh, hp = self.config.http
        wh, wp = self.config.ws
        lines = ", ".join(f"udp://{h}:{p}" for h, p in self.config.feeds)
        rewinder = self.config.rewinder
        http, ws = ("https", "wss") if self.config.tls.enabled else ("http", "ws")
        return {
            "feed (UDP, MoldUDP64/ITCH 5.0)": lines,
            "feed sources": (", ".join(f"{h}:{p or '*'}" for h, p in self.config.feed_sources)
                             if self.config.feed_sources is not None else "ANY (no --feed-source)"),
            "rewinder (MoldUDP64 re-request)": f"udp://{rewinder[0]}:{rewinder[1]}" if rewinder else "none",
            "book snapshots (GLIMPSE-style)": (f"tcp://{self.config.snapshot[0]}:{self.config.snapshot[1]}"
                                               if self.config.snapshot else "none"),
            "web app (browser)": f"{http}://{hh}:{hp}/",
            "snapshots (HTTP)": f"{http}://{hh}:{hp}/v1/quotes?symbols=AAPL,TSLA",
            "metrics (Prometheus)": f"{http}://{hh}:{hp}/metrics",
            "health (liveness, readiness)": f"{http}://{hh}:{hp}/livez, /readyz",
            "stream (WebSocket, Protobuf)": f"{ws}://{wh}:{wp}/v1/stream",
            "stream (WebSocket, JSON)": f"{ws}://{wh}:{wp}/v1/stream?format=json",
            **({"orders channel (from Redis)": self.config.orders_redis} if self.config.orders_redis else {}),
        }

class StatusLine:
    """Rates from counter deltas between two calls: what the demo prints once a second."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._last = self._sample()

    def _sample(self) -> tuple[float, int, int, int]:
        feed = self.node.feed
        messages = feed.session.counters.get("messages", 0) if feed is not None else 0
        fanout = self.node.fanout
        if fanout is None:  # an ingest worker: nothing fans out here
            return time.monotonic(), messages, 0, 0
        return time.monotonic(), messages, fanout.stats.updates_sent, fanout.stats.frames_sent

    def render(self) -> str:
        now = self._sample()
        dt = max(now[0] - self._last[0], 1e-9)
        msg_rate = (now[1] - self._last[1]) / dt
        upd_rate = (now[2] - self._last[2]) / dt
        frame_rate = (now[3] - self._last[3]) / dt
        self._last = now
        fanout = self.node.fanout
        clients = fanout.stats.clients if fanout is not None else 0
        p50, p99 = fanout.latency_percentiles() if fanout is not None else (0.0, 0.0)
        feed = self.node.feed
        counters = feed.session.counters if feed is not None else {}
        state = feed.session.state.value if feed is not None else "-"
        return (
            f"feed {msg_rate:>9,.0f} msg/s {state} | gaps {counters.get('gaps', 0)} "
            f"recovered {counters.get('messages_recovered', 0):,} malformed {counters.get('malformed_packets', 0)}"
            f" jumps {counters.get('implausible_jump', 0)} foreign {counters.get('foreign_source', 0)}"
            f" | out {upd_rate:>9,.0f} upd/s "
            f"{frame_rate:>6,.0f} frames/s | clients {clients} | e2e p50 {p50:.1f} ms p99 {p99:.1f} ms"
        )


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feed", type=hostport, action="append", metavar="HOST:PORT",
                        help="UDP address to receive MoldUDP64 on; a multicast group is joined; repeat for "
                             "redundant lines A and B, the first copy of each message wins "
                             "(default 127.0.0.1:30001)")
    parser.add_argument("--rewinder", type=hostport, default=None, metavar="HOST:PORT",
                        help="MoldUDP64 re-request server to recover gaps from (default: none; "
                             "the demo's simulator serves one)")
    parser.add_argument("--snapshot", type=hostport, default=None, metavar="HOST:PORT",
                        help="TCP snapshot server to rebuild stale books from (default: none; the demo's "
                             "simulator serves one)")
    parser.add_argument("--session", default=None, metavar="NAME",
                        help="the MoldUDP64 session to accept; packets of any other are counted "
                             "(unknown_session) and dropped. Required unless --snapshot is given, whose first "
                             "snapshot then names it; never taken from the first packet seen")
    parser.add_argument("--feed-source", type=source, action="append", default=None, metavar="HOST[:PORT]",
                        dest="feed_sources",
                        help="take feed datagrams only from this sender (any port if none given); repeat for "
                             "several; others are counted (foreign_source) and dropped. Default: ANY source "
                             "is accepted (said in a warning at startup)")
    parser.add_argument("--max-gap", type=int, default=DEFAULT_MAX_GAP, metavar="MESSAGES",
                        help="a packet whose sequence lies farther than this from the stream is implausible: "
                             "counted (implausible_jump) and ignored, not taken for a gap (default %(default)s)")
    parser.add_argument("--max-held-mib", type=int, default=DEFAULT_MAX_HELD_BYTES >> 20, metavar="MIB",
                        help="payload held beyond a hole while it is recovered, at most (default %(default)s); "
                             "beyond it packets are dropped (pending_overflow) and asked for again")
    parser.add_argument("--recovery-timeout", type=float, default=2.0, metavar="SECONDS",
                        help="give up on a gap after this long and mark the books stale (default %(default)s)")
    parser.add_argument("--http", type=hostport, default=("127.0.0.1", 8000), metavar="HOST:PORT",
                        help="snapshot HTTP listen address (default %(default)s)")
    parser.add_argument("--ws", type=hostport, default=("127.0.0.1", 8765), metavar="HOST:PORT",
                        help="WebSocket fan-out listen address (default %(default)s)")
    parser.add_argument("--interface", default="127.0.0.1",
                        help="local interface address to join a multicast feed on (default %(default)s)")
    parser.add_argument("--flush-ms", type=float, default=50.0,
                        help="upper bound of the conflation flush interval in ms (default %(default)s)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop cleanly after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--quiet", action="store_true", help="no live status line")
    parser.add_argument("--plain", "--no-batched", action="store_true", dest="plain",
                        help="apply one decoded message at a time (the plain engine, ~170k msg/s per core) instead "
                             "of the default batched path (numpy decoder + numba book kernel, ~2M msg/s per core, "
                             "--publish workers too, partitioned or not)")
    # not exclusive with --plain: a config file's old ``batched = true`` must not conflict with TICKFAN_PLAIN
    parser.add_argument("--batched", action="store_true",
                        help="accepted for old scripts and configs: the batched path is the default (no effect; "
                             "--plain wins)")
    parser.add_argument("--session-date", type=date_arg, default=None, metavar="YYYY-MM-DD",
                        help="the trading day the feed's ITCH timestamps count from (ns since its midnight US "
                             "Eastern); every time sent is converted to ns since the Unix epoch with it and the "
                             "America/New_York zone (default: the date the session's name carries, as `tickfan "
                             "replay` names its sessions, e.g. 20190130RP; else today in New York)")
    parser.add_argument("--redis", default=None, metavar="URL",
                        help="publish book changes to Redis (quote:{SYM} hashes, sharded channels by partition) "
                             "for fan-out nodes on other hosts, e.g. redis://127.0.0.1:6379/0, or a Redis Cluster: "
                             "redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
    bars = parser.add_argument_group("bars", "the bars:1s/bars:1m channels and GET /v1/bars")
    bars.add_argument("--bars-history-1s", type=int, default=3_600, metavar="BARS",
                      help="closed 1-second bars kept per symbol for history and revisions (default %(default)s)")
    bars.add_argument("--bars-history-1m", type=int, default=390, metavar="BARS",
                      help="closed 1-minute bars kept per symbol (default %(default)s: a trading day)")
    bars.add_argument("--bars-print-log", type=int, default=1 << 18, metavar="PRINTS",
                      help="prints kept to resolve broken trades, 81 bytes each, allocated at start; a break of "
                           "an older print changes no bar (breaks_unknown) (default %(default)s)")
    ready = parser.add_argument_group("health", "GET /livez (process up) and GET /readyz (ready for traffic) on "
                                      "--http; /readyz answers 503 naming the failing check")
    ready.add_argument("--ready-max-recovering", type=float, default=10.0, metavar="SECONDS",
                       help="/readyz fails once a feed gap has been recovering for longer (default %(default)s)")
    ready.add_argument("--ready-max-silence", type=float, default=10.0, metavar="SECONDS",
                       help="/readyz fails (books stale) once no packet or heartbeat has arrived for this long "
                            "(default %(default)s)")
    add_stream_limit_arguments(parser)
    add_resume_arguments(parser)
    add_browser_arguments(parser)


def add_browser_arguments(parser: argparse.ArgumentParser) -> None:
    """What browsers may do here (README, Security: "Browsers: origins, CSP, the development token")."""
    group = parser.add_argument_group("browsers", "which web pages may use the stream and the HTTP APIs, and the "
                                                  "web app served on GET /")
    group.add_argument("--allowed-origin", action="append", default=None, metavar="ORIGIN", dest="allowed_origin",
                       help="a browser origin (scheme://host[:port]) whose pages may open the WebSocket and call "
                            "the HTTP APIs; repeat for several. Others are refused (403 origin_not_allowed); "
                            "clients sending no Origin header (not browsers) are always accepted. Default: this "
                            "node's own HTTP origin(s), e.g. http://127.0.0.1:8000 and http://localhost:8000")
    group.add_argument("--web-root", type=Path, default=None, metavar="DIR",
                       help="serve the web app's static files from DIR on GET / (default: the package's web/dist "
                            "if it was built, else a page saying the web app is not built)")


# the FanoutConfig fields set by the "stream limits" flags (a flag's name is its field's, but --message-burst)
LIMIT_FLAGS = ("max_connections", "max_connections_per_ip", "connection_rate_per_ip", "connection_burst_per_ip",
               "connection_rate", "listen_backlog",
               "max_connections_per_user", "max_fragments", "max_fragments_per_second", "max_symbols_per_second",
               "symbol_burst", "upgrade_timeout", "close_timeout", "max_message_bytes", "max_symbols",
               "max_messages_per_second", "burst", "write_buffer_high", "write_buffer_max", "slow_client_timeout",
               "order_queue_max", "socket_send_buffer", "flush_window", "ping_idle_timeout",
               "ping_reply_timeout")
RESUME_FLAGS = ("resume_history_seconds", "resume_history_prints", "resume_history_capacity", "resume_max_symbols",
                "heartbeat_max_symbols", "heartbeat_interval")


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    """Resume and liveness (``FanoutConfig``; README, "Trade prints, resume and liveness"). The tokens' secret is
    not a flag (a command line is visible to every user of the host): TICKFAN_RESUME_SECRET, else one derived
    from TICKFAN_JWT_SECRET."""
    d = FanoutConfig()
    group = parser.add_argument_group(
        "resume and liveness", "reconnecting clients get the trade prints they missed; the resume tokens are signed "
                               "with TICKFAN_RESUME_SECRET, else a key derived from TICKFAN_JWT_SECRET: set the same "
                               "one on every node behind a load balancer")
    group.add_argument("--resume-history-seconds", type=float, default=d.resume_history_seconds, metavar="SECONDS",
                       help="prints older than this are not replayed (default %(default)s)")
    group.add_argument("--resume-history-prints", type=int, default=d.resume_history_prints, metavar="N",
                       help="prints kept per symbol for replay (default %(default)s)")
    group.add_argument("--resume-history-capacity", type=int, default=d.resume_history_capacity, metavar="N",
                       help="prints of all symbols this node keeps in memory for replay (default %(default)s)")
    group.add_argument("--resume-max-symbols", type=int, default=d.resume_max_symbols, metavar="N",
                       help="symbols a resume token names; a larger subscription's others are not restored "
                            "(default %(default)s)")
    group.add_argument("--heartbeat-max-symbols", type=int, default=d.heartbeat_max_symbols, metavar="N",
                       help="symbols' liveness per heartbeat; a larger subscription rotates (default %(default)s)")
    group.add_argument("--heartbeat-interval", type=float, default=d.heartbeat_interval, metavar="SECONDS",
                       help="seconds between a client's heartbeats, which carry its symbols' liveness "
                            "(default %(default)s)")


def add_stream_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The WebSocket stream's abuse limits (``FanoutConfig``; README, Security: "Abuse limits on the stream")."""
    d = FanoutConfig()
    group = parser.add_argument_group(
        "stream limits", "what one WebSocket client may do; per-address limits skip loopback clients unless "
                         "--limit-loopback")
    group.add_argument("--max-connections", type=int, default=d.max_connections, metavar="N",
                       help="open connections in all; past it an upgrade gets HTTP 503 (default %(default)s)")
    group.add_argument("--max-connections-per-ip", type=int, default=d.max_connections_per_ip, metavar="N",
                       help="open connections per client address (an IPv6 client: per /64); past it an upgrade "
                            "gets HTTP 429 (default %(default)s)")
    group.add_argument("--connection-rate-per-ip", type=float, default=d.connection_rate_per_ip, metavar="PER_S",
                       help="new connections a second per address, after --connection-burst-per-ip at once; past "
                            "it HTTP 429 with Retry-After (default %(default)s)")
    group.add_argument("--connection-burst-per-ip", type=int, default=d.connection_burst_per_ip, metavar="N",
                       help="new connections per address at once (default %(default)s)")
    group.add_argument("--connection-rate", type=float, default=d.connection_rate, metavar="PER_S",
                       help="new connections a second to this node from everyone (loopback too), one second's "
                            "worth at once; past it HTTP 503 server_busy with Retry-After. The brake on a "
                            "reconnect storm; 0: no limit (default %(default)s)")
    group.add_argument("--max-connections-per-user", type=int, default=d.max_connections_per_user, metavar="N",
                       help="authenticated connections per user; a newer one is closed with 1008 "
                            "(default %(default)s)")
    group.add_argument("--limit-loopback", action="store_true",
                       help="apply the per-address limits to loopback clients too (default: they are exempt, "
                            "for load tools and tests)")
    group.add_argument("--max-fragments", type=int, default=d.max_fragments, metavar="N",
                       help="frames one client message may be split into; past it the connection is closed with "
                            "1009 (default %(default)s)")
    group.add_argument("--max-fragments-per-second", type=float, default=d.max_fragments_per_second,
                       metavar="PER_S",
                       help="fragments a second per connection, after --max-fragments at once; past it the "
                            "connection is closed with 1008 (default %(default)s)")
    group.add_argument("--max-symbols-per-second", type=float, default=d.max_symbols_per_second, metavar="PER_S",
                       help="symbols subscribed plus unsubscribed a second per connection, after --symbol-burst "
                            "at once; past it a request gets a symbol_rate_limited error (default %(default)s)")
    group.add_argument("--symbol-burst", type=int, default=d.symbol_burst, metavar="N",
                       help="symbols subscribed plus unsubscribed at once, at least the 1,000 of a full "
                            "subscription (default %(default)s)")
    group.add_argument("--listen-backlog", type=int, default=d.listen_backlog, metavar="N",
                       help="connections the kernel queues before the node accepts them, capped by "
                            "net.core.somaxconn; too few turns a reconnect storm into dropped SYNs the clients "
                            "retry seconds later (default %(default)s)")
    group.add_argument("--upgrade-timeout", type=float, default=d.upgrade_timeout, metavar="SECONDS",
                       help="drop a connection that has not sent its upgrade request by then (default %(default)s)")
    group.add_argument("--close-timeout", type=float, default=d.close_timeout, metavar="SECONDS",
                       help="after the server closes a connection (a limit, a slow consumer), cut the socket if the "
                            "client has not answered the close by then (default %(default)s)")
    group.add_argument("--max-message-bytes", type=int, default=d.max_message_bytes, metavar="BYTES",
                       help="largest client message; a larger one closes the connection with 1009 "
                            "(default %(default)s)")
    group.add_argument("--max-symbols", type=int, default=d.max_symbols, metavar="N",
                       help="symbols one connection may subscribe per channel, at most --symbol-burst "
                            "(default %(default)s)")
    group.add_argument("--max-messages-per-second", type=float, default=d.max_messages_per_second, metavar="PER_S",
                       help="client messages a second per connection, after --message-burst at once "
                            "(default %(default)s)")
    group.add_argument("--message-burst", type=int, default=d.burst, metavar="N", dest="burst",
                       help="client messages per connection at once (default %(default)s)")
    group.add_argument("--write-buffer-high", type=int, default=d.write_buffer_high, metavar="BYTES",
                       help="bytes queued to a client before it counts as slow: it then skips to the latest state "
                            "(default %(default)s)")
    group.add_argument("--write-buffer-max", type=int, default=d.write_buffer_max, metavar="BYTES",
                       help="bytes queued to a client (replies it does not read) past which it is dropped "
                            "(default %(default)s)")
    group.add_argument("--slow-client-timeout", type=float, default=d.slow_client_timeout, metavar="SECONDS",
                       help="a client that stays slow (paused) this long is dropped (default %(default)s)")
    group.add_argument("--order-queue-max", type=int, default=d.order_queue_max, metavar="N",
                       help="order updates held for a client that cannot be written to; past it the client is "
                            "disconnected rather than miss one (default %(default)s)")
    group.add_argument("--socket-send-buffer", type=int, default=d.socket_send_buffer, metavar="BYTES",
                       help="SO_SNDBUF of each client connection; 0 leaves the kernel's autotuning "
                            "(default %(default)s)")
    group.add_argument("--flush-window", type=int, default=d.flush_window, metavar="CLIENTS",
                       help="a flush to more clients than this makes and writes their frames this many at a time, "
                            "each window from the books as they are then; 0: all at once (default %(default)s)")
    group.add_argument("--ping-idle-timeout", type=float, default=d.ping_idle_timeout, metavar="SECONDS",
                       help="a WebSocket ping after this long without traffic from the client (default %(default)s)")
    group.add_argument("--ping-reply-timeout", type=float, default=d.ping_reply_timeout, metavar="SECONDS",
                       help="drop a client that has not answered a ping by then (default %(default)s)")


def allowed_origins(args: argparse.Namespace) -> tuple[str, ...]:
    """The browser origins the flags allow (``--allowed-origin``), else the node's own HTTP origin(s)."""
    given = getattr(args, "allowed_origin", None)
    try:
        if given:
            return tuple(dict.fromkeys(normalize_origin(o) for o in given))
        return own_origins(args.http[0], args.http[1], tls=tls_files(args).enabled)
    except ValueError as exc:
        raise SystemExit(f"tickfan: --allowed-origin: {exc}") from None


def stream_limit_flags(args: argparse.Namespace) -> list[str]:
    """The stream-limit flags of ``args`` as a command line, for the fan-out workers a command starts (with the
    allowed origins resolved here: a worker serves no HTTP, so it has no origin of its own)."""
    flags: list[str] = [a for o in allowed_origins(args) for a in ("--allowed-origin", o)]
    for dest in (*LIMIT_FLAGS, *RESUME_FLAGS):
        if hasattr(args, dest):
            flags += ["--message-burst" if dest == "burst" else "--" + dest.replace("_", "-"),
                      str(getattr(args, dest))]
    return flags + (["--limit-loopback"] if args.limit_loopback else [])


def stream_config(args: argparse.Namespace) -> FanoutConfig:
    """The fan-out's limits from the flags (listen address and flushing are set by the node's roles)."""
    try:
        return FanoutConfig(
            limit_loopback=args.limit_loopback, allowed_origins=allowed_origins(args),
            **{name: getattr(args, name) for name in (*LIMIT_FLAGS, *RESUME_FLAGS) if hasattr(args, name)})
    except ValueError as exc:
        raise SystemExit(f"tickfan: bad stream limit: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_node_arguments(parser)
    parser.add_argument("--partitions", type=int, default=None, metavar="N",
                        help="ingest is split over N processes by symbol; this node applies only --partition's "
                             "symbols (default: one process applies everything)")
    parser.add_argument("--partition", type=int, default=0, metavar="K", help="this node's partition, 0..N-1")
    parser.add_argument("--hot", default=None, metavar="SYM,SYM",
                        help="symbols that get a partition each, in order (default: TSLA,NVDA,AAPL, as many as "
                             "leave half the partitions for the rest)")
    parser.add_argument("--publish", default=None, metavar="NAME",
                        help="worker mode: publish this partition's books into shared memory NAME (made by a "
                             "reader or the demo) instead of serving HTTP and WebSocket")
    parser.add_argument("--attach", default=None, metavar="NAME",
                        help="reader mode: serve the books ingest workers publish in shared memory NAME (no feed)")
    parser.add_argument("--from-redis", default=None, metavar="URL",
                        help="a fan-out node with no feed: serve the books another node publishes to Redis "
                             "(redis://... or redis+cluster://HOST:PORT,HOST:PORT)")
    parser.add_argument("--reuse-port", action="store_true",
                        help="share the WebSocket port with other fan-out workers (SO_REUSEPORT)")
    parser.add_argument("--no-http", action="store_true", help="serve no HTTP (another worker does)")
    parser.add_argument("--orders-redis", default=None, metavar="URL",
                        help="serve the WebSocket `orders` channel: users' order updates published on this Redis "
                             "(tickfan:orders:{user}), e.g. redis://127.0.0.1:6379/0 (default: off)")
    parser.add_argument("--partition-map", type=Path, default=None, metavar="FILE",
                        help='JSON partition map, e.g. {"partitions": 4, "hot": ["TSLA", "NVDA"]}')
    add_tls_arguments(parser, "serve https:// and wss://")
    add_metrics_dir_arguments(parser)


def node_config(args: argparse.Namespace) -> NodeConfig:
    if args.flush_ms <= 0:
        raise SystemExit("tickfan: --flush-ms must be positive")
    if args.max_gap <= 0 or args.max_held_mib <= 0:
        raise SystemExit("tickfan: --max-gap and --max-held-mib must be positive")
    if min(args.bars_history_1s, args.bars_history_1m, args.bars_print_log) <= 0:
        raise SystemExit("tickfan: --bars-history-1s, --bars-history-1m and --bars-print-log must be positive")
    has_feed = not getattr(args, "attach", None) and not getattr(args, "from_redis", None)
    if has_feed and args.session is None and args.snapshot is None:
        raise SystemExit("tickfan: --session NAME is required (the MoldUDP64 session to accept), unless "
                         "--snapshot is given to learn it from")
    if args.session is not None and not 0 < len(args.session) <= 10:
        raise SystemExit("tickfan: --session must be 1 to 10 characters")
    partition = None
    try:
        if getattr(args, "partition_map", None) is not None:
            partition = (PartitionMap.from_file(args.partition_map), getattr(args, "partition", 0))
        elif getattr(args, "partitions", None):
            hot = args.hot.split(",") if args.hot else None
            pmap = PartitionMap(args.partitions, hot) if hot is not None else PartitionMap.default(args.partitions)
            partition = (pmap, getattr(args, "partition", 0))
        if partition is not None:
            PartitionFilter(*partition)  # validates K against N
    except (ValueError, KeyError, OSError) as exc:
        raise SystemExit(f"tickfan: bad partition map: {exc}") from None
    return NodeConfig(partition=partition, publish=getattr(args, "publish", None),
                      reuse_port=getattr(args, "reuse_port", False), serve_http=not getattr(args, "no_http", False),
                      redis=getattr(args, "redis", None), from_redis=getattr(args, "from_redis", None),
                      batched=not getattr(args, "plain", False), orders_redis=getattr(args, "orders_redis", None),
                      attach=getattr(args, "attach", None), feeds=args.feed or [("127.0.0.1", 30001)],
                      rewinder=args.rewinder,
                      snapshot=args.snapshot,
                      recovery_timeout=args.recovery_timeout, http=args.http, ws=args.ws,
                      flush_interval=args.flush_ms / 1000.0,
                      session=args.session, session_date=args.session_date, interface=args.interface,
                      feed_sources=args.feed_sources, max_gap=args.max_gap, max_held_bytes=args.max_held_mib << 20,
                      tls=tls_files(args), stream=stream_config(args), bars_history_1s=args.bars_history_1s,
                      bars_history_1m=args.bars_history_1m, bars_print_log=args.bars_print_log,
                      web_root=getattr(args, "web_root", None),
                      ready_max_recovering=args.ready_max_recovering, ready_max_silence=args.ready_max_silence)


async def run_until_stopped(node: Node, *, duration: float | None, quiet: bool,
                            on_tick: Any = None) -> None:
    """Serve until Ctrl-C, SIGTERM or the duration ends, printing the status line once a second."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    status = StatusLine(node)
    tty = sys.stderr.isatty()
    ticks = 0
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        ticks += 1
        if on_tick is not None:
            on_tick()
        if not quiet:
            line = status.render()
            if tty:
                print("\r" + line, end="", file=sys.stderr, flush=True)
            elif ticks % 5 == 0:
                print(line, file=sys.stderr, flush=True)
    if tty and not quiet:
        print(file=sys.stderr)


def print_endpoints(node: Node) -> None:
    for name, url in node.endpoints().items():
        print(f"  {name:<34} {url}", flush=True)


async def _main(args: argparse.Namespace) -> int:
    node = Node(node_config(args))
    # --metrics-dir: the process serving HTTP serves what the others write there; a worker (ingest, or a fan-out
    # worker serving no HTTP) writes its own metrics there
    serves_http = not node.config.publish and node.config.serve_http
    if serves_http and getattr(args, "metrics_dir", None):
        node.extra_collectors = [*node.extra_collectors, SharedMetrics(args.metrics_dir)]
    try:
        await node.start()
    except OSError as exc:
        print(f"tickfan node: cannot start: {exc}", file=sys.stderr)
        return 1
    writer = None if serves_http else writer_of(args, "ingest" if node.config.publish else "node",
                                                [NodeCollector(node)])
    if writer is not None:
        writer.start()
    try:
        return await _serve(args, node)
    finally:
        if writer is not None:
            await writer.close()


async def _serve(args: argparse.Namespace, node: Node) -> int:
    if node.config.publish:
        pmap, k = node.config.partition or (PartitionMap(1), 0)
        print(f"tickfan ingest worker is up: partition {k} of {pmap.partitions}, publishing into shared "
              f"memory {node.config.publish}", flush=True)
        try:
            await run_until_stopped(node, duration=args.duration, quiet=True)
        finally:
            await node.close()
        return 0
    print("tickfan node is up:", flush=True)
    if node.config.partition is not None:
        pmap, k = node.config.partition
        print(f"  partition {k} of {pmap.partitions} ({pmap.describe()})", flush=True)
    print_endpoints(node)
    try:
        await run_until_stopped(node, duration=args.duration, quiet=args.quiet)
    finally:
        await node.close()
    return 0


def main(args: argparse.Namespace) -> int:
    import uvloop

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return uvloop.run(_main(args))
