"""The WebSocket fan-out server: a thin picows adapter around ``Hub`` and ``ClientProtocol``.

It moves bytes: frames in go to the connection's ``ClientProtocol``, whose ``Reply`` it applies (hub
subscriptions, frames out, relay calls, close); each flush it reads the clock, asks the ``Hub`` for every
client's frames and writes them. picows' ``transport.send`` is a plain synchronous call, so a flush writes every
client's frame without a coroutine or task per client; its pause/resume-writing callbacks tell the hub which
clients can take more.

Who may connect is decided at the upgrade (``fanout.limits.ConnectionLimits``): past the total cap the answer is
HTTP 503, past the per-address cap or connection rate 429, each with a JSON body carrying a machine-readable
``code``; a connection authenticated as a user who already has ``max_connections_per_user`` is closed with 1008.
Before them, an upgrade from a browser page of an origin not in ``config.allowed_origins`` is refused with 403
``origin_not_allowed`` (``vocab.origins``); one without an ``Origin`` header (not a browser) passes.

Its halves live beside it: the flushes, tiers sweep, heartbeats and counters in ``fanout.flushing`` (a mixin of
``FanoutServer``), a connection's resume in ``fanout.resuming`` (a mixin of ``_Client``), the upgrade's picows
protocol and refusal answer in ``fanout.upgrade``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

from normalize.bar_feed import BarSource
from normalize.source import BookSource
from tickfan_proto import stream_pb2 as pb
from vocab.auth import AuthError, Claims, UsedTickets, Verifier, default_verifier
from vocab.limits import raise_open_files
from vocab.origins import OriginPolicy
from vocab.tls import server_context_of

from .config import FanoutConfig
from .flushing import FanoutStats, Flushing
from .follow import Follow, FollowGate
from .history import TradeHistory
from .hub import Hub, Subscriber
from .keepalive import NOT_PINGED, Keepalive
from .limits import PER_USER, ConnectionLimits
from .orders import OrderRelay
from .protocol import (
    CHANNELS,
    CLOSE_POLICY_VIOLATION,
    ClientProtocol,
    Reply,
    parse_upgrade,
)
from .resume import TokenCodec, resume_key
from .resuming import Resuming
from .tiers import TierLadder
from .upgrade import _PeerProtocol, _refusal_response, connection_log, release_handshake
from .upgrade import follow_root_log_level as follow_root_log_level  # still importable from here

log = logging.getLogger("tickfan.fanout")
CLOSE_SLOW_CONSUMER = 1008
# a history any node can read (Redis): (ticker, after trade_seq, feed epoch) -> the prints after it it holds
RemoteHistory = Callable[[str, int, int], Awaitable[list[pb.Trade]]]
OPEN_FILES_WANTED = 1 << 20  # a file per client: as many as the kernel allows this process
# picows' first read buffer per connection (it doubles when a message needs more; 2,048 is its minimum): clients
# send small requests, and 16 kB here was 14 kB of every connection's memory (benchmarks/bench_conn_memory.py)
READ_BUFFER = 2048


def _encode(message: pb.ServerMessage, json_mode: bool) -> bytes | str:
    if json_mode:
        return str(json_format.MessageToJson(message, indent=None))
    return bytes(message.SerializeToString())


class _Client(Resuming, WSListener):
    """One connection: picows callbacks in, ``ClientProtocol`` decides, this writes what it returns."""

    __slots__ = ("server", "peer", "counted", "counted_user", "closing", "sub", "protocol", "paused_since",
                 "transport", "_credentials", "_expiry", "_watched", "_token", "_gate", "heard", "pinged")

    def __init__(self, server: FanoutServer, json_mode: bool, authorization: str | None = None,
                 token: str | None = None, ticket: str | None = None, peer: str | None = None) -> None:
        self.server = server
        self.peer = peer  # the client's IP address (the per-address limits' key)
        self.counted = False  # in the server's connection limits (opened)
        self.counted_user: str | None = None  # in the per-user count, as this user
        self.closing = False  # a close was sent: waiting for the client's (the closing handshake)
        self.sub = Subscriber(next(server._ids), json=json_mode)
        self.protocol = ClientProtocol(server.resolve, server.config, json_mode=json_mode,
                                       verify=server.verify, redeem=server.redeem_ticket,
                                       orders_enabled=server.orders is not None, tokens=server.tokens)
        self.paused_since: float | None = None
        self.transport: WSTransport | None = None
        self.heard, self.pinged = server.keepalive.tick, NOT_PINGED  # ``fanout.keepalive``
        self._credentials = (authorization, token, ticket)
        self._expiry: asyncio.TimerHandle | None = None  # the token's expiry, while the connection lives
        self._watched: str | None = None  # the user whose revocations this connection listens for
        self._token: tuple[int, int, str] | None = None  # (what it was made from: version, epoch; the resume token)
        # a subscription whose symbols the book source fetches first holds it and the replies after it (None: the
        # source holds every symbol already, and replies are applied at once)
        self._gate = FollowGate(server.follow, self._writable, server._tasks) if server.follow is not None else None

    @property
    def json(self) -> bool:
        return self.sub.json

    # picows callbacks -----------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        release_handshake(transport)  # the credentials were taken at the upgrade (``_credentials``)
        server = self.server
        config = server.config
        transport.underlying_transport.set_write_buffer_limits(high=config.write_buffer_high)
        sock = transport.underlying_transport.get_extra_info("socket")
        if sock is not None and config.socket_send_buffer:
            # bound the kernel's memory per client too: autotuning would give each one megabytes
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, config.socket_send_buffer)
        server._clients[self.sub.id] = self
        server.tiers.join(self.sub.id)
        server.stats.clients = len(server._clients)
        server.stats.connections_total += 1
        server.limits.opened(self.peer)
        self.counted = True
        authorization, token, ticket = self._credentials
        self._credentials = (None, None, None)
        self._apply(transport, self.protocol.open(authorization, token, ticket))
        user = self.protocol.user
        if user is not None and user in server._revoked:
            self.revoke(server._revoked[user][0])  # a token older than a revocation this node has heard of
        if user is not None and not self.protocol.closed:
            self._watched = user
            server._by_user.setdefault(user, set()).add(self)
            if server.orders is not None:
                server.orders.watch(user)  # hear the user's revocations even without the orders channel
            self._count_user(transport, user)
        self._schedule_expiry()

    def _count_user(self, transport: WSTransport, user: str) -> None:
        """An authenticated connection counts against its user's cap; past it, it is closed (1008)."""
        refusal = self.server.limits.user_joined(user)
        if refusal is None:
            self.counted_user = user
            return
        log.info("client %d (user %s) refused: %s", self.sub.id, user, refusal.message)
        self._apply(transport, self.protocol.close_for(PER_USER, CLOSE_POLICY_VIOLATION, refusal.code,
                                                       refusal.message))

    def _schedule_expiry(self) -> None:
        """A timer at the token's expiry (again after a refresh): ``tick`` then closes the connection."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deadline = self.protocol.next_deadline()
        if deadline is not None:
            self._expiry = asyncio.get_running_loop().call_later(max(0.0, deadline - time.time()), self._expire)

    def _expire(self) -> None:
        self._expiry = None
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        reply = self.protocol.tick(time.time())
        if reply.close is not None:
            self.server.stats.token_expired_closes += 1
        self._apply(transport, reply)
        self._schedule_expiry()

    def revoke(self, before: float) -> None:
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        reply = self.protocol.revoke(before)
        if reply.close is not None:
            self.server.stats.token_revoked_closes += 1
        self._apply(transport, reply)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._detach()
        server = self.server
        server._closing.discard(self)
        if self.counted:
            self.counted = False
            server.limits.closed(self.peer)
        if self.counted_user is not None:
            server.limits.user_left(self.counted_user)
            self.counted_user = None

    def _detach(self) -> None:
        """Nothing more for this client: out of the hub, the flushes and the orders relay (idempotent)."""
        server = self.server
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._watched is not None:
            users = server._by_user.get(self._watched)
            if users is not None:
                users.discard(self)
                if not users:
                    del server._by_user[self._watched]
            if server.orders is not None:
                server.orders.unwatch(self._watched)
            self._watched = None
        server._clients.pop(self.sub.id, None)
        server.tiers.leave(self.sub.id)
        server._paused.discard(self)
        server.hub.remove(self.sub)
        server.stats.clients = len(server._clients)
        user = self.protocol.connection_lost()
        if user is not None and server.orders is not None:
            server.orders.remove(user, self)  # idempotent; also covers a subscription still unconfirmed

    def pause_writing(self) -> None:
        self.sub.writable = False
        self.paused_since = time.monotonic()
        self.server._paused.add(self)
        self.server.tiers.fell_behind(self.sub.id)  # conflation tiers: watched from now on

    def resume_writing(self) -> None:
        self.sub.writable = True
        self.paused_since = None
        self.server._paused.discard(self)
        self._write_orders()  # order updates first: the flush brings prices later

    def drop_slow(self, why: str) -> None:
        """Disconnect a client that does not read: it would otherwise hold memory and never catch up.

        Nothing more is queued for it; what was queued goes out, then a 1008 close saying why, so a client that
        reads again learns the reason (its own close ends the connection, as the closing handshake goes; closing
        the socket first, with its requests unread, would reset it and lose the queue). One that still does
        not read is cut off after ``slow_client_timeout``."""
        transport = self.transport
        if transport is None or transport.is_disconnected or self.closing:
            return
        self.server.stats.slow_disconnects += 1
        log.info("client %d disconnected: %s", self.sub.id, why)
        self._close(transport, CLOSE_SLOW_CONSUMER, f"slow consumer: {why}".encode()[:120])

    def _close(self, transport: WSTransport, code: int, reason: bytes) -> None:
        """Close the connection: nothing more is sent after the close frame, and the socket is closed when the
        client answers it (the closing handshake) or after ``close_timeout``. Closing the socket at once, with
        the client's later frames unread, would reset it, and the client would lose the close and what was
        queued before it."""
        if self.closing:
            return
        self.closing = True
        self._detach()
        server = self.server
        server._closing.add(self)
        transport.send_close(WSCloseCode(code), reason)
        asyncio.get_running_loop().call_later(server.config.close_timeout, transport.disconnect, False)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        self.heard = self.server.keepalive.tick
        if kind == WSMsgType.CLOSE:
            if not self.closing:  # else the client is answering the close it was sent
                transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        if kind == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())  # what picows' auto-pong did
            return
        if kind == WSMsgType.PONG:
            if self.pinged > 0:
                self.pinged = NOT_PINGED
            return
        protocol = self.protocol
        limited, symbols_limited = protocol.rate_limited, protocol.symbol_rate_limited
        claims = protocol.claims
        reply = protocol.receive_frame(frame.get_payload_as_bytes(), text=kind == WSMsgType.TEXT, fin=frame.fin,
                                       continuation=kind == WSMsgType.CONTINUATION, now=time.monotonic())
        stats = self.server.stats
        if protocol.rate_limited != limited:
            stats.rate_limited += 1
        if protocol.symbol_rate_limited != symbols_limited:
            stats.symbol_rate_limited += 1
        if reply.close is not None and protocol.closed_for is not None:
            stats.limit_closes[protocol.closed_for] = stats.limit_closes.get(protocol.closed_for, 0) + 1
            log.info("client %d closed: %s", self.sub.id, protocol.closed_for)
        self._apply(transport, reply)
        if protocol.claims is not claims:
            self._schedule_expiry()  # refreshed: the connection lives until the new token expires

    # the orders channel (OrdersSink, called by the OrderRelay) ----------------------------------------------
    def orders_ready(self, live: bool) -> None:
        transport = self.transport
        for reply in self.protocol.orders_ready(live):
            if transport is None or transport.is_disconnected:
                return
            self._apply(transport, reply)

    def order_frame(self, frame: bytes | str) -> None:
        if self.transport is None or self.transport.is_disconnected:
            return  # going: ``connection_lost`` follows
        drop = self.protocol.order_frame(frame)
        if drop is not None:
            self.server.stats.order_queue_disconnects += 1
            self.drop_slow(drop)
            return
        self._write_orders()

    @property
    def orders_wanted(self) -> bool:
        return self.protocol.orders

    def account_frame(self, frame: bytes | str, version: int, snapshot: bool) -> None:
        if self.transport is None or self.transport.is_disconnected:
            return
        drop = self.protocol.account_frame(frame, version, snapshot=snapshot)
        if drop is not None:
            self.server.stats.order_queue_disconnects += 1
            self.drop_slow(drop)
            return
        self._write_orders()

    # writing what the protocol says -------------------------------------------------------------------------
    def _write_orders(self) -> None:
        """Write waiting order frames while the client can take them (a write may pause it)."""
        transport, protocol, stats = self.transport, self.protocol, self.server.stats
        while self.sub.writable and transport is not None and not transport.is_disconnected:
            frame = protocol.take_order_frame()
            if frame is None:
                return
            stats.order_frames_sent += 1
            self._raw(transport, frame)

    def _apply(self, transport: WSTransport, reply: Reply) -> None:
        """Apply ``reply`` now, or, when it subscribes to symbols the book source must fetch first (a Redis edge
        seeding them), once they are here: its snapshots then carry the books, not empty rows. Later replies
        wait behind it, in order (``fanout.follow``)."""
        if self._gate is None:
            self._apply_now(transport, reply)
        else:
            self._gate.submit(reply.subscribed, lambda: self._apply_now(transport, reply))

    def _writable(self) -> bool:
        return self.transport is not None and not self.transport.is_disconnected and not self.closing

    def _apply_now(self, transport: WSTransport, reply: Reply) -> None:
        server = self.server
        if reply.orders_unsubscribe is not None and server.orders is not None:
            server.orders.remove(reply.orders_unsubscribe, self)
        for channel, locates in reply.unsubscribed.items():
            server.hub.unsubscribe(self.sub, channel, locates)
        for channel, locates in reply.subscribed.items():
            server.hub.subscribe(self.sub, channel, locates)
        if reply.max_rate_hz is not None:  # the client's own cap (``fanout.tiers``), said in the ack below
            server.tiers.request(self.sub.id, reply.max_rate_hz)
            server.repace(self.sub)
        for message in reply.messages:
            self._send(transport, message)
        for channel in ("quotes", "depth", "bars:1s", "bars:1m", "status"):
            new = reply.subscribed.get(channel)
            if new:
                self._raw(transport, server.hub.snapshot(self.sub, new, channel, send_time_ns=time.time_ns()))
        for message in reply.after:
            self._send(transport, message)
        if reply.resume is not None:
            self._resume(reply.resume)
        if reply.close is not None:
            code, reason = reply.close
            self._close(transport, code, reason.encode())
        if reply.orders_subscribe is not None and server.orders is not None:
            server.orders.add(reply.orders_subscribe, self)  # calls orders_ready now or soon
        if reply.account_snapshot is not None and server.orders is not None:
            server.orders.snapshot(reply.account_snapshot, self)  # calls account_frame soon

    def _send(self, transport: WSTransport, message: pb.ServerMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "subscribed":
            message.subscribed.resume_token = self.resume_token()
            tiers, key = self.server.tiers, self.sub.id
            message.subscribed.tier, message.subscribed.max_rate_hz = tiers.tier(key), tiers.rate_hz(key)
        if kind == "error":
            self.server.stats.errors_sent += 1
        self._raw(transport, _encode(message, self.sub.json))

    def _raw(self, transport: WSTransport, frame: bytes | str) -> None:
        if self.closing:
            return  # nothing follows a close frame (a flush may hold more frames for a client it just dropped)
        if isinstance(frame, str):
            data = frame.encode()
            transport.send(WSMsgType.TEXT, data)
        else:
            data = frame
            transport.send(WSMsgType.BINARY, data)
        stats = self.server.stats
        stats.frames_sent += 1
        stats.bytes_sent += len(data)
        if transport.underlying_transport.get_write_buffer_size() > self.server.config.write_buffer_max:
            self.drop_slow(f"over {self.server.config.write_buffer_max} bytes unread")


class FanoutServer(Flushing):
    def __init__(self, books: BookSource, config: FanoutConfig | None = None, *,
                 verifier: Verifier | None = None, verify: Callable[[str], Claims] | None = None,
                 orders: OrderRelay | None = None, before_flush: Callable[[], object] | None = None,
                 bars: BarSource | None = None, feed_state: Callable[[], str] | None = None,
                 remote_history: RemoteHistory | None = None, follow: Follow | None = None) -> None:
        """``config``: every setting (``FanoutConfig()`` when None). ``verifier``: the token configuration (the
        process's, ``vocab.auth.default_verifier()``, by default); ``verify`` overrides its bearer-token check
        (token -> ``Claims``). ``orders``: the orders channel's Redis relay (started and closed with the server;
        None: no orders channel); it also carries the users' revocations. ``before_flush`` runs first in every
        flush (a shared-memory reader syncs its books there). ``bars``: what the ``bars:1s``/``bars:1m`` channels
        serve (None: nothing). ``feed_state``: the feed session's state for the heartbeats' liveness ("in_sync",
        "recovering", "stale"; None: in_sync). ``remote_history``: a trade history other nodes write too (Redis),
        read on resume beside this node's own. ``follow``: a book source fed from elsewhere fetches a subscription's
        new symbols before their snapshots (``Follow``)."""
        self.books = books
        self.config = config = config or FanoutConfig()
        self.orders = orders
        self.verifier = verifier if verifier is not None else default_verifier()
        self.verify = verify or self.verifier.claims
        # tickets are single-use within this process (see README "Tokens and sessions")
        self.used_tickets = UsedTickets()
        # what every connection's protocol is given, made once (a bound method taken per connection is an object each)
        self.resolve, self.redeem_ticket = books.locate_of.get, self.redeem
        self._by_user: dict[str, set[_Client]] = {}  # authenticated connections, for revocations
        # revocations heard: user -> (revoked before, forget after): a revoked token cannot open a connection here
        # either, until it would have expired anyway (the verifier's maximum lifetime)
        self._revoked: dict[str, tuple[float, float]] = {}
        if orders is not None:
            orders.on_revoked = self.revoke
        self.before_flush = before_flush
        self._changed = asyncio.Event()
        self.hub = Hub(books, bars=bars)
        self.hub.history = TradeHistory(config.resume_history_capacity, per_symbol=config.resume_history_prints,
                                        max_age_ns=int(config.resume_history_seconds * 1e9))
        key, self.resume_key_source = resume_key(config.resume_secret)
        self.tokens = TokenCodec(key, CHANNELS, config.resume_max_symbols)
        # this process's epoch: a token from another (a restart, another node) says so in its verdicts
        self.node_epoch = secrets.randbits(63)
        self.feed_state = feed_state or (lambda: "in_sync")
        self.remote_history = remote_history
        self.follow = follow
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeats = 0
        self.stats = FanoutStats()
        self.tiers = TierLadder(config.tiers)  # each client's conflation tier (``fanout.tiers``)
        self.keepalive = Keepalive(config.ping_idle_timeout, config.ping_reply_timeout)
        self._keepalive: asyncio.Task[None] | None = None
        self.limits = ConnectionLimits(
            max_connections=config.max_connections, max_connections_per_ip=config.max_connections_per_ip,
            connection_rate_per_ip=config.connection_rate_per_ip,
            connection_burst_per_ip=config.connection_burst_per_ip,
            max_connections_per_user=config.max_connections_per_user, limit_loopback=config.limit_loopback,
            connection_rate=config.connection_rate)
        self.origins = OriginPolicy.of(config.allowed_origins)
        self._ids = itertools.count(1)
        self._clients: dict[int, _Client] = {}
        self._paused: set[_Client] = set()  # clients whose transport asked us to stop writing
        self._closing: set[_Client] = set()  # sent a close, waiting for the client's answer (out of _clients)
        self._server: asyncio.Server | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._port = config.port

    def feed_epoch(self) -> int:
        """The trade_seq numbering the books are in (a ``Books``' life; a Redis publisher's, on a Redis reader)."""
        return int(getattr(self.books, "session_epoch", 0))

    def redeem(self, ticket: str) -> Claims:
        """A ticket's bearer claims, once: a ticket presented again (on this process) is refused."""
        now = time.time()
        try:
            claims, jti, expires = self.verifier.ticket(ticket, now)
            if not self.used_tickets.use(jti, expires, now):
                raise AuthError("ticket_used", "this ticket was used before; ask POST /v1/ws-ticket for another")
        except AuthError:
            self.stats.tickets_refused += 1
            raise
        self.stats.tickets_redeemed += 1
        return claims

    def revoke(self, user: str, before: float) -> None:
        """``user`` logged out everywhere at ``before``: close their connections with older tokens."""
        now = time.time()
        if len(self._revoked) >= 100_000:
            self._revoked = {u: r for u, r in self._revoked.items() if r[1] > now}
        self._revoked[user] = (before, before + self.verifier.max_lifetime)
        for client in list(self._by_user.get(user, ())):
            client.revoke(before)

    @property
    def port(self) -> int:
        """The port listened on: the bound one once started (``config.port`` 0 picks a free one)."""
        return self._port

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.tls.enabled else "ws"
        return f"{scheme}://{self.config.host}:{self.port}{self.config.path}"

    def _listener(self, request: WSUpgradeRequest, peer: str | None = None
                  ) -> _Client | WSUpgradeResponseWithListener | None:
        upgrade = parse_upgrade(request.path.decode("latin-1"), self.config.path)
        if upgrade is None:
            return None  # picows answers 404
        origin = request.headers.get("Origin")
        if not self.origins.admit(origin):
            assert origin is not None
            log.info("connection from %s refused: origin %r not allowed", peer, origin[:100])
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
                403, self.origins.refusal_body(origin), {"Content-Type": "application/json"}), None)
        refusal = self.limits.admit(peer, time.monotonic())
        if refusal is not None:
            log.info("connection from %s refused: %s", peer, refusal.message)
            return _refusal_response(refusal)
        return _Client(self, json_mode=upgrade.json_mode, authorization=request.headers.get("Authorization"),
                       token=upgrade.token, ticket=upgrade.ticket, peer=peer)

    async def start(self) -> None:
        config = self.config
        raise_open_files(OPEN_FILES_WANTED)
        follow_root_log_level()
        # what ``picows.ws_create_server`` does, with a protocol that knows its peer at the upgrade
        # the logger never goes below DEBUG: picows logs whole upgrade requests (credentials) at level 9; no auto-ping
        # nor auto-pong: a task per connection for them, ``fanout.keepalive`` does it for all from one timer
        protocol_args = (connection_log, True, config.upgrade_timeout, False,
                         config.ping_idle_timeout, config.ping_reply_timeout, WSAutoPingStrategy.PING_WHEN_IDLE,
                         False, max(4 * config.max_message_bytes, 1 << 22), None, READ_BUFFER)

        def protocol() -> _PeerProtocol:
            return _PeerProtocol(self, *protocol_args)

        loop = asyncio.get_running_loop()
        tls = server_context_of(config.tls)  # None: plain TCP
        # plain TCP: the loop's own transport (uvloop's in a node): ~5 kB less per connection than aiofastnet's and
        # the same cost per write (picows makes the send call itself either way; benchmarks/RESULTS.md, "The
        # write path and memory per connection"); TLS: picows' own choice, aiofastnet's when it is installed
        aiofastnet: Any = None
        if tls is not None:
            with contextlib.suppress(ImportError):
                import aiofastnet
        if aiofastnet is None:
            self._server = await loop.create_server(protocol, config.host, config.port, ssl=tls,
                                                    reuse_port=config.reuse_port or None,
                                                    backlog=config.listen_backlog)
        else:
            self._server = await aiofastnet.create_server(loop, protocol, config.host, config.port, ssl=tls,
                                                          reuse_port=config.reuse_port or None,
                                                          backlog=config.listen_backlog)
        if self._server.sockets:
            self._port = int(self._server.sockets[0].getsockname()[1])
        self._flusher = asyncio.create_task(self._flush_loop())
        self._keepalive = asyncio.create_task(self.keepalive.run(self._clients.values))
        if self.orders is not None:
            await self.orders.start()

    async def close(self) -> None:
        # Python 3.11's wait_for swallows a cancel that lands as its awaitable completes (a flush woken by a notify
        # at that moment): the flush loop then runs on. Cancel again until it has stopped.
        while self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            await asyncio.wait([self._flusher], timeout=0.5)
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._server is not None:
            self._server.close()
        for client in list(self._clients.values()):
            if client.transport is not None:
                client.transport.send_close(WSCloseCode.GOING_AWAY, b"server shutting down")
                client.transport.disconnect()
        for client in list(self._closing):  # their close is already sent
            if client.transport is not None:
                client.transport.disconnect(graceful=False)
        if self._server is not None:
            await self._server.wait_closed()
        if self.orders is not None:
            await self.orders.close()

    def notify(self) -> None:
        """The books changed (the feed handler calls this after each packet): flush soon."""
        self._changed.set()

    def latency_percentiles(self) -> tuple[float, float]:
        return self.hub.latency_percentiles()
