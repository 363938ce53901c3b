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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # not in picows' stubs

from normalize.bar_feed import BarSource
from normalize.source import BookSource
from tickfan_proto import stream_pb2 as pb
from vocab.auth import AuthError, Claims, UsedTickets, Verifier, default_verifier
from vocab.limits import raise_open_files
from vocab.origins import OriginPolicy
from vocab.tls import server_context_of

from .config import FanoutConfig
from .encode import heartbeat_frame, liveness_entry, to_json, trade_message
from .follow import FOLLOW_TIMEOUT, Follow, FollowGate
from .history import TradeHistory
from .hub import Hub, Subscriber
from .limits import PER_USER, ConnectionLimits, Refusal
from .orders import OrderRelay
from .protocol import (
    CHANNELS,
    CLOSE_POLICY_VIOLATION,
    ClientProtocol,
    Reply,
    ResumeRequest,
    parse_upgrade,
    recovered_message,
)
from .resume import NOT_RECOVERABLE, ResumeState, TokenCodec, plan_replay, resume_key
from .tiers import TierLadder

log = logging.getLogger("tickfan.fanout")
# picows logs whole upgrade requests (the query string's ?token= and ?ticket=, the Authorization header) at its
# level 9, through a child logger per connection: its logger for our server never goes below DEBUG, whatever the
# root logger's level, so they never are.
_picows_log = logging.getLogger("picows.tickfan")
_picows_log.setLevel(logging.DEBUG)


def follow_root_log_level() -> None:
    """picows' logger at the root's level, never below DEBUG (see above). Left at DEBUG it logged a line per
    connection accepted and closed under a root at WARNING: 10,000 lines in a reconnect storm, on the connect
    path. Called when a server starts, after the command has configured logging."""
    _picows_log.setLevel(max(logging.DEBUG, logging.getLogger().getEffectiveLevel()))
CLOSE_SLOW_CONSUMER = 1008
REPLAY_BATCH = 500  # replayed prints per TradeBatch frame
# a history any node can read (Redis): (ticker, after trade_seq, feed epoch) -> the prints after it it holds
RemoteHistory = Callable[[str, int, int], Awaitable[list[pb.Trade]]]
WRITE_BATCH = 1000  # clients written between two turns of the event loop in one flush
OPEN_FILES_WANTED = 1 << 20  # a file per client: as many as the kernel allows this process
# picows' first read buffer per connection (it doubles when a message needs more; 2,048 is its minimum): clients
# send small requests, and 16 kB here was 14 kB of every connection's memory (benchmarks/bench_conn_memory.py)
READ_BUFFER = 2048


@dataclass
class FanoutStats:
    clients: int = 0
    connections_total: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    updates_sent: int = 0
    errors_sent: int = 0
    send_failures: int = 0
    slow_disconnects: int = 0
    rate_limited: int = 0
    # updates a paused (slow) client was not given in a flush: it gets the newest state when it drains
    conflated_skips: int = 0
    order_frames_sent: int = 0  # orders-channel frames written (order updates and orders errors)
    order_queue_disconnects: int = 0  # clients cut off with more than ``order_queue_max`` order frames unread
    symbol_rate_limited: int = 0  # subscribe/unsubscribe requests refused by the symbol budget
    # connections a limit of their own closed, by ``ClientProtocol.closed_for`` (too_large, too_many_fragments, ...)
    limit_closes: dict[str, int] = field(default_factory=dict)
    token_expired_closes: int = 0  # connections closed (4001) when their token expired unrefreshed
    token_revoked_closes: int = 0  # connections closed (4003) when their user logged out everywhere
    tickets_redeemed: int = 0  # upgrades authenticated by a single-use ticket
    tickets_refused: int = 0  # tickets refused: invalid, expired, or used before
    # resume: verdicts sent by kind, and prints replayed
    resumes: dict[str, int] = field(default_factory=dict)
    prints_replayed: int = 0


def _encode(message: pb.ServerMessage, json_mode: bool) -> bytes | str:
    if json_mode:
        return str(json_format.MessageToJson(message, indent=None))
    return bytes(message.SerializeToString())


class _Client(WSListener):
    """One connection: picows callbacks in, ``ClientProtocol`` decides, this writes what it returns."""

    def __init__(self, server: FanoutServer, json_mode: bool, authorization: str | None = None,
                 token: str | None = None, ticket: str | None = None, peer: str | None = None) -> None:
        self.server = server
        self.peer = peer  # the client's IP address (the per-address limits' key)
        self.counted = False  # in the server's connection limits (opened)
        self.counted_user: str | None = None  # in the per-user count, as this user
        self.closing = False  # a close was sent: waiting for the client's (the closing handshake)
        self.sub = Subscriber(next(server._ids), json=json_mode)
        self.protocol = ClientProtocol(server.books.locate_of.get, server.config, json_mode=json_mode,
                                       verify=server.verify, redeem=server.redeem,
                                       orders_enabled=server.orders is not None, tokens=server.tokens)
        self.paused_since: float | None = None
        self.transport: WSTransport | None = None
        self._credentials = (authorization, token, ticket)
        self._expiry: asyncio.TimerHandle | None = None  # the token's expiry, while the connection lives
        self._watched: str | None = None  # the user whose revocations this connection listens for
        self._token: tuple[tuple[int, int], str] | None = None  # (what it was made from, the resume token)
        # a subscription whose symbols the book source fetches first holds it and the replies after it
        self._gate = FollowGate(server.follow, self._writable, server._tasks)

    @property
    def json(self) -> bool:
        return self.sub.json

    # picows callbacks -----------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
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
        if kind == WSMsgType.CLOSE:
            if not self.closing:  # else the client is answering the close it was sent
                transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        if kind in (WSMsgType.PING, WSMsgType.PONG):
            return  # picows answers pings itself
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

    # resume -------------------------------------------------------------------------------------------------
    def _resume(self, req: ResumeRequest) -> None:
        """Replay what a valid token's connection missed, then one Recovered per symbol of its trades channel.

        In Redis mode the history any node can read is fetched first (a task): until it is back, live prints of
        those symbols are held from this client (a floor no print passes), and whatever a flush passed meanwhile
        is in this node's own history, so nothing falls between the two."""
        server = self.server
        node_changed = req.node_epoch != server.node_epoch
        server.hub.sync_epoch()  # before any floor is set (``Hub.sync_epoch``)
        if req.feed_epoch != server.feed_epoch():
            for sym in sorted(s for s, _ in req.trades.values()):
                self._verdict(recovered_message(
                    sym, NOT_RECOVERABLE, epoch_changed=True,
                    reason="the feed session changed since the token (trade_seq restarted at 1)"))
            return
        if server.remote_history is None or not req.trades:
            self._replay(req, {}, node_changed)
            return
        for loc in req.trades:
            self.sub.trade_floor[loc] = 1 << 62
        task = asyncio.create_task(self._resume_remote(req, node_changed))
        server._tasks.add(task)
        task.add_done_callback(server._tasks.discard)

    async def _resume_remote(self, req: ResumeRequest, node_changed: bool) -> None:
        fetch = self.server.remote_history
        assert fetch is not None
        # the history is read only once the edge follows these symbols' partitions (Redis confirmed them): a
        # print published before is in the stream, one after reaches the live feed; the gate waited for this
        # already, unless it gave up, so this is usually nothing to wait for
        pending = self.server.follow({"trades": list(req.trades)}) if self.server.follow is not None else None
        if pending is not None:
            try:
                await asyncio.wait_for(pending, FOLLOW_TIMEOUT)
            except Exception:
                log.warning("following the partitions of a resume's symbols failed", exc_info=True)
        remote: dict[int, list[pb.Trade]] = {}
        for loc, (sym, seen) in req.trades.items():
            try:
                remote[loc] = await fetch(sym, seen, req.feed_epoch)
            except Exception:  # Redis down: what this node holds is still replayed; the verdict says the rest
                log.warning("reading the trade history of %s failed", sym, exc_info=True)
                remote[loc] = []
        if self.transport is None or self.transport.is_disconnected or self.closing:
            return
        self._replay(req, remote, node_changed)

    def _replay(self, req: ResumeRequest, remote: dict[int, list[pb.Trade]], node_changed: bool) -> None:
        server, hub, sub = self.server, self.server.hub, self.sub
        hub.sync_epoch()
        now = time.time_ns()
        local = hub.history.windows({loc: (seen, int(hub.last_trade_seq[loc]))
                                     for loc, (_, seen) in req.trades.items()}, now) if hub.history else {}
        for loc, (sym, seen) in sorted(req.trades.items(), key=lambda kv: kv[1][0]):
            held: dict[int, pb.Trade] = {t.trade_seq: t for t in remote.get(loc, ()) if t.trade_seq > seen}
            prints = local.get(loc)
            if prints is not None:
                for i in range(len(prints.locate)):
                    held.setdefault(int(prints.trade_seq[i]), trade_message(sym, prints, i))
            upto = max(int(hub.last_trade_seq[loc]), max(held, default=0))
            plan = plan_replay(seen, upto, sorted(held))
            replay = [held[n] for n in range(plan.replay_from, plan.upto + 1)]
            for i in range(0, len(replay), REPLAY_BATCH):
                self._send_now(pb.ServerMessage(trades=pb.TradeBatch(trades=replay[i:i + REPLAY_BATCH],
                                                                     send_time_ns=time.time_ns())))
            server.stats.prints_replayed += len(replay)
            if loc in sub.channels["trades"]:
                sub.trade_seen[loc] = max(seen, upto)
                sub.trade_floor[loc] = max(seen, upto)
                sub.version += 1
            self._verdict(recovered_message(sym, plan.verdict, missing=plan.missing, epoch_changed=node_changed,
                                            reason="" if plan.missing is None else
                                            "older than the trade history kept (see missing_*_trade_seq)"))

    def _verdict(self, message: pb.ServerMessage) -> None:
        stats = self.server.stats
        verdict = message.recovered.verdict
        stats.resumes[verdict] = stats.resumes.get(verdict, 0) + 1
        self._send_now(message)

    def _send_now(self, message: pb.ServerMessage) -> None:
        transport = self.transport
        if transport is not None and not transport.is_disconnected:
            self._send(transport, message)

    def resume_token(self) -> str:
        """What this connection has been sent, signed: its subscriptions, and per trades symbol the last
        trade_seq. Made again only when that changed (most clients' heartbeats reuse it)."""
        server = self.server
        key = (self.sub.version, server.feed_epoch())
        if self._token is not None and self._token[0] == key:
            return self._token[1]
        bits: dict[str, int] = {}
        for i, channel in enumerate(CHANNELS):
            for sym in self.protocol.subscriptions[channel]:
                bits[sym] = bits.get(sym, 0) | 1 << i
        seen = self.sub.trade_seen
        trades = self.protocol.subscriptions["trades"]
        symbols = {sym: (b, seen.get(trades[sym], 0) if sym in trades else 0) for sym, b in bits.items()}
        token = server.tokens.encode(ResumeState(server.feed_epoch(), server.node_epoch, symbols))
        self._token = (key, token)
        return token

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


class _PeerProtocol(WSProtocol):  # type: ignore[misc]  # picows' protocol has no stubs
    """picows' server protocol, one per connection, telling the listener factory the client's address.

    picows calls the factory with the upgrade request alone, but the per-address limits must refuse at the
    upgrade (an HTTP 429 before any WebSocket frame), so each connection gets a factory bound to its own
    protocol, which learnt the peer in ``connection_made``. Arguments after the factory are ``WSProtocol``'s own,
    as ``picows.ws_create_server`` passes them.
    """

    def __init__(self, server: FanoutServer, *args: Any) -> None:
        self.peer: str | None = None
        super().__init__(None, None, False, self._listener, *args)
        self._server = server

    def _listener(self, request: WSUpgradeRequest) -> _Client | WSUpgradeResponseWithListener | None:
        return self._server._listener(request, self.peer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else None
        super().connection_made(transport)


def _refusal_response(refusal: Refusal) -> WSUpgradeResponseWithListener:
    body = json.dumps({"error": {"code": refusal.code, "message": refusal.message}}).encode()
    return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
        refusal.status, body, {"Content-Type": "application/json", "Retry-After": str(refusal.retry_after)}), None)


class FanoutServer:
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
        # the logger never goes below DEBUG: picows logs whole upgrade requests (credentials) at level 9
        protocol_args = (_picows_log, True, config.upgrade_timeout, True,
                         config.ping_idle_timeout, config.ping_reply_timeout, WSAutoPingStrategy.PING_WHEN_IDLE,
                         True, max(4 * config.max_message_bytes, 1 << 22), None, READ_BUFFER)

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
        if self.orders is not None:
            await self.orders.start()

    async def close(self) -> None:
        # Python 3.11's wait_for swallows a cancel that lands as its awaitable completes (a flush woken by a notify
        # at that moment): the flush loop then runs on. Cancel again until it has stopped.
        while self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            await asyncio.wait([self._flusher], timeout=0.5)
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

    async def _flush_loop(self) -> None:
        """Adaptive flushing: at once when idle, batched when busy, never later than ``flush_interval``.

        After a change, the loop waits only as long as the coalescing gap: twice what the last flush cost,
        at least ``min_flush_interval``, at most ``flush_interval``. A quiet feed is delivered immediately;
        a busy one is batched so the flush never takes more than about a third of the core.
        """
        config = self.config
        heartbeat, flush_interval, poll, floor = (config.heartbeat_interval, config.flush_interval,
                                                  config.poll_every, config.coalesce_floor)
        next_heartbeat = time.monotonic() + heartbeat
        last_flush = 0.0
        cost = 0.0
        changed = self._changed
        while True:
            try:
                await asyncio.wait_for(changed.wait(), poll)
            except TimeoutError:
                pass
            changed.clear()
            gap = min(flush_interval, max(floor, 2 * cost))
            since = time.monotonic() - last_flush
            if since < gap:
                await asyncio.sleep(gap - since)
            started = time.monotonic()
            last_flush = started
            try:
                if self.before_flush is not None:
                    self.before_flush()
                if self._clients:
                    await self._write(self._clients)
                else:
                    unix_ns = time.time_ns()  # keep versions current: a first subscriber starts now
                    self.hub.flush(unix_ns, send_time_ns=unix_ns)
                now = time.monotonic()
                cost = now - started
                if self.tiers.due(now):  # first: a client falling behind is moved down before it is dropped
                    self._sweep_tiers(now)
                self._drop_stuck(now)
                if now >= next_heartbeat:
                    next_heartbeat = now + heartbeat
                    self._heartbeat()
            except Exception:  # the flush loop is the node's heartbeat: never let it die
                log.exception("flush failed")

    async def _write(self, clients_of: dict[int, _Client]) -> None:
        """Write this flush's frames; every ``WRITE_BATCH`` clients, let the loop run (the feed's datagrams
        must be read while tens of thousands of clients are written, or the receive buffer overflows)."""
        stats = self.stats
        before = self.hub.stats.updates
        now = time.time_ns()  # the books' clock is Unix epoch ns too: one reading serves both
        for i, (sub, frames) in enumerate(self.hub.flush(now, send_time_ns=now)):
            if i and not i % WRITE_BATCH:
                await asyncio.sleep(0)
            client = clients_of.get(sub.id)
            if client is None or client.transport is None:
                continue
            try:
                for frame in frames:
                    client._raw(client.transport, frame)
            except Exception:
                stats.send_failures += 1
                log.debug("send to client %d failed", sub.id, exc_info=True)
        stats.updates_sent += self.hub.stats.updates - before
        stats.conflated_skips = self.hub.stats.conflated_skips

    # conflation tiers (``fanout.tiers``): the policy decides, the hub paces -----------------------------------
    def _sweep_tiers(self, now: float) -> None:
        for move in self.tiers.sweep(now, self._backlog):
            client = self._clients[move.key]
            self.repace(client.sub)
            log.info("client %d moved %s to conflation tier %d", move.key, "down" if move.down else "up", move.tier)

    def _backlog(self, key: int) -> tuple[int, bool] | None:
        """A watched client's bytes not yet written to its socket, and whether it is paused (None: gone)."""
        client = self._clients.get(key)
        if client is None or client.transport is None or client.closing:
            return None
        return client.transport.underlying_transport.get_write_buffer_size(), not client.sub.writable

    def repace(self, sub: Subscriber) -> None:
        self.hub.pace(sub, round(self.tiers.period(sub.id) * 1e9))

    def _drop_stuck(self, now: float) -> None:
        limit = self.config.slow_client_timeout
        for client in [c for c in self._paused if c.paused_since is not None]:
            assert client.paused_since is not None
            if now - client.paused_since > limit:
                client.drop_slow(f"not reading for {limit:g} s")

    def _heartbeat(self) -> None:
        """Each client's heartbeat: the server's clock, its resume token, and per subscribed symbol (at most
        ``heartbeat_max_symbols``, rotating through a larger subscription) its liveness, each symbol's entry
        encoded once for all clients."""
        books, cap = self.books, self.config.heartbeat_max_symbols
        now = time.time_ns()
        self._heartbeats += 1
        node_state = self.feed_state()
        entries: dict[int, tuple[bytes, str]] = {}
        for client in list(self._clients.values()):
            if client.transport is None or not client.sub.writable:
                continue
            locs = sorted(set().union(*client.sub.channels.values()))
            if len(locs) > cap:
                start = (self._heartbeats - 1) * cap % len(locs)
                locs = (locs + locs)[start:start + cap]
            parts = []
            for loc in locs:
                e = entries.get(loc)
                if e is None:
                    state = "stale" if books.stale[loc] else node_state
                    msg = pb.Liveness(symbol=books.symbol_of[loc] or "", seq=int(books.seq[loc]),
                                      last_event_time_ns=int(books.exchange_time[loc]), feed_state=state)
                    e = entries[loc] = liveness_entry(msg), to_json(msg)
                parts.append(e)
            json_mode = client.sub.json
            key = client.sub.id
            frame = heartbeat_frame(now, client.resume_token(), [p[1] if json_mode else p[0] for p in parts],
                                    json_mode, self.tiers.tier(key), self.tiers.rate_hz(key))
            try:
                client._raw(client.transport, frame)
            except Exception:
                self.stats.send_failures += 1

    def latency_percentiles(self) -> tuple[float, float]:
        return self.hub.latency_percentiles()
