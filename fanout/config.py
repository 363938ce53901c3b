"""Every knob of one fan-out server, in one frozen value (pure).

``FanoutServer(books, FanoutConfig(port=0, flush_interval=0.01))``: what the server listens on, how often it
flushes, what it allows a client, and when it gives up on a slow one. Wiring that is not a setting (the books,
the token verifier, the orders relay, the shared-memory sync hook) is passed to the server beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vocab.origins import normalize_origin
from vocab.tls import TlsFiles

from .tiers import TierPolicy

WRITE_BUFFER_HIGH = 512 * 1024  # bytes queued in the transport before a client counts as slow (paused)
WRITE_BUFFER_MAX = 4 * 1024 * 1024  # a client whose queue passes this (replies it does not read) is dropped
SOCKET_SEND_BUFFER = 256 * 1024  # SO_SNDBUF per client connection
FLUSH_WINDOW = 0  # off: fresher prices (p50) but fewer frames a second, measured (benchmarks/RESULTS.md, item 2)
# order updates (and orders errors) held for a client that cannot be written to; never dropped: past this the
# client is disconnected (1008, "slow consumer: ...") rather than silently miss one
ORDER_QUEUE_MAX = 1000
MAX_FRAGMENTS = 128  # frames one client message may be split into
# the abuse limits (issue 10), exported as the ``tickfan_stream_limit{name=...}`` gauge and set by node flags
LIMITS = ("max_message_bytes", "max_symbols", "max_messages_per_second", "burst", "max_fragments",
          "max_fragments_per_second", "max_symbols_per_second", "symbol_burst", "max_connections",
          "max_connections_per_ip", "connection_rate_per_ip", "connection_burst_per_ip", "max_connections_per_user",
          "limit_loopback", "upgrade_timeout", "close_timeout", "write_buffer_max", "slow_client_timeout",
          "order_queue_max")


@dataclass(frozen=True, slots=True)
class FanoutConfig:
    # where: ``port`` 0 picks a free one (``FanoutServer.port`` tells which once started)
    host: str = "127.0.0.1"
    port: int = 8765
    path: str = "/v1/stream"
    # several worker processes can listen on one port (SO_REUSEPORT): the kernel spreads connections
    reuse_port: bool = False
    # wss://: the certificate chain and key served; ``tls.ca`` set: clients must present a certificate it signed
    tls: TlsFiles = TlsFiles()

    # flushing (seconds): at most ``flush_interval`` after a change, at least ``min_flush_interval`` apart when
    # busy; ``poll_interval`` (None: ``flush_interval``) flushes unprompted, for books written by other processes
    flush_interval: float = 0.05
    min_flush_interval: float = 0.002
    poll_interval: float | None = None
    heartbeat_interval: float = 5.0
    # a flush to more clients than this is made and written window by window (this many hub slots each), each
    # window's frames from the books as they are when its turn comes: the last client of a large node is not sent
    # prices as old as the whole flush (0: one window, every client's frames made at the flush's start)
    flush_window: int = FLUSH_WINDOW

    # what one client may send
    max_message_bytes: int = 65_536
    max_symbols: int = 1_000  # per channel
    max_messages_per_second: float = 20.0  # token bucket: ``burst`` at once, then this rate
    burst: int = 40
    # a fragmented message: past ``max_fragments`` frames it is closed with 1009; every fragment spends a token
    # of its own bucket (``max_fragments`` at once, then this rate), and a fragment with none left closes the
    # connection with 1008. Empty fragments count like any other (they cost a callback and a list entry each).
    max_fragments: int = MAX_FRAGMENTS
    max_fragments_per_second: float = 500.0
    # subscribe churn: symbols subscribed plus unsubscribed (per message, its distinct symbols), ``symbol_burst``
    # at once, then this rate; a request past it is refused whole with a ``symbol_rate_limited`` error
    max_symbols_per_second: float = 2_000.0
    symbol_burst: int = 2_000

    # who may connect (``fanout.limits``): in total (503 at the upgrade), per address and new connections per
    # address per second (429), authenticated connections per user (closed with 1008). Per-address limits skip
    # loopback clients unless ``limit_loopback`` (the load tools and tests open thousands of them).
    max_connections: int = 100_000
    max_connections_per_ip: int = 200
    connection_rate_per_ip: float = 20.0
    connection_burst_per_ip: int = 50
    max_connections_per_user: int = 50
    limit_loopback: bool = False
    # new connections a second from everyone, one second's worth at once; past it 503 ``server_busy`` (0: no
    # limit). The reconnect storm's brake: see ``fanout.limits``
    connection_rate: float = 0.0
    # a connection that has not completed its upgrade request within this many seconds is dropped
    upgrade_timeout: float = 5.0
    # connections the kernel queues before the node accepts them (capped by net.core.somaxconn): asyncio's
    # default of 100 turns a reconnect storm into dropped SYNs, retried by the clients' kernels 1, 3, 7, 15 s later
    listen_backlog: int = 4096
    # browser pages that may open the stream (``vocab.origins``): an upgrade whose Origin header is another is
    # refused with HTTP 403 ``origin_not_allowed``; one without an Origin header (not a browser) is accepted.
    # Empty: no browser page may (a node passes its own HTTP origins by default, ``--allowed-origin`` others)
    allowed_origins: tuple[str, ...] = ()

    # slow consumers: paused past ``write_buffer_high`` bytes queued; dropped past ``write_buffer_max`` bytes,
    # after ``slow_client_timeout`` seconds paused, or past ``order_queue_max`` order frames unread
    write_buffer_high: int = WRITE_BUFFER_HIGH
    write_buffer_max: int = WRITE_BUFFER_MAX
    socket_send_buffer: int = SOCKET_SEND_BUFFER  # 0: leave the kernel's autotuning
    slow_client_timeout: float = 10.0
    # after the server sends a close (a limit, a slow consumer), the client has this long to answer it before
    # the socket is cut; nothing else is sent to it meanwhile
    close_timeout: float = 5.0
    order_queue_max: int = ORDER_QUEUE_MAX
    # conflation tiers (``fanout.tiers``): when a client that falls behind moves to a slower flush period and back
    tiers: TierPolicy = TierPolicy()

    # resume (README "Trade prints, resume and liveness"). The tokens' signing secret: the same on every node
    # behind one load balancer (empty: TICKFAN_RESUME_SECRET, else derived from TICKFAN_JWT_SECRET, else random
    # per process: resume then only on the node that issued the token). Symbols a token names (a larger
    # subscription's first ones, sorted); prints replayed per symbol: the last ``resume_history_seconds`` or
    # ``resume_history_prints``, whichever is fewer, from a ring of ``resume_history_capacity`` prints of all
    # symbols (in Redis mode also from the publisher's history there)
    resume_secret: str = field(default="", repr=False)
    resume_max_symbols: int = 1_000
    resume_history_seconds: float = 60.0
    resume_history_prints: int = 10_000
    resume_history_capacity: int = 262_144
    # liveness: at most this many symbols' Liveness per heartbeat (a larger subscription rotates through them)
    heartbeat_max_symbols: int = 200

    # WebSocket pings (``fanout.keepalive``): a ping after this many idle seconds, the peer dropped without a pong
    # in as many
    ping_idle_timeout: float = 15.0
    ping_reply_timeout: float = 15.0

    def __post_init__(self) -> None:
        for name in ("flush_interval", "min_flush_interval", "heartbeat_interval", "max_messages_per_second",
                     "slow_client_timeout", "ping_idle_timeout", "ping_reply_timeout", "max_fragments_per_second",
                     "max_symbols_per_second", "connection_rate_per_ip", "upgrade_timeout", "close_timeout",
                     "resume_history_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"FanoutConfig.{name} must be positive, not {getattr(self, name)!r}")
        for name in ("max_message_bytes", "max_symbols", "burst", "write_buffer_high", "write_buffer_max",
                     "order_queue_max", "max_fragments", "symbol_burst", "max_connections", "max_connections_per_ip",
                     "connection_burst_per_ip", "max_connections_per_user", "resume_max_symbols", "listen_backlog",
                     "resume_history_prints", "resume_history_capacity", "heartbeat_max_symbols"):
            if getattr(self, name) < 1:
                raise ValueError(f"FanoutConfig.{name} must be at least 1, not {getattr(self, name)!r}")
        if self.flush_window < 0:
            raise ValueError(f"FanoutConfig.flush_window must be 0 (one window) or positive, not {self.flush_window!r}")
        if self.connection_rate < 0:
            raise ValueError(f"FanoutConfig.connection_rate must be 0 (no limit) or positive, not "
                             f"{self.connection_rate!r}")
        if self.symbol_burst < self.max_symbols:
            raise ValueError(f"FanoutConfig.symbol_burst ({self.symbol_burst}) must be at least max_symbols "
                             f"({self.max_symbols}): a full subscription must fit in one request")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"FanoutConfig.port out of range: {self.port}")
        for origin in self.allowed_origins:
            normalize_origin(origin)  # ValueError for anything that is not scheme://host[:port]
        if not self.path.startswith("/"):
            raise ValueError(f"FanoutConfig.path must start with '/': {self.path!r}")

    @property
    def coalesce_floor(self) -> float:
        """The shortest gap between two flushes: never longer than the longest."""
        return min(self.min_flush_interval, self.flush_interval)

    @property
    def poll_every(self) -> float:
        return self.poll_interval or self.flush_interval
