"""The WebSocket fan-out server: a thin picows adapter around ``Hub`` and ``ClientProtocol``.

picows' ``transport.send`` is a plain synchronous call, so a flush writes every client's frame without a
coroutine or task per client; its pause/resume-writing callbacks tell the hub which clients can take more.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from google.protobuf import json_format
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_create_server,
)

from normalize.source import BookSource
from tickfan_proto import stream_pb2 as pb
from vocab.auth import verify_token
from vocab.limits import raise_open_files

from .hub import Hub, Subscriber
from .orders import OrderRelay
from .protocol import ClientProtocol, Reply, error_message

log = logging.getLogger("tickfan.fanout")
WRITE_BUFFER_HIGH = 512 * 1024  # bytes queued in the transport before a client counts as slow (paused)
WRITE_BUFFER_MAX = 4 * 1024 * 1024  # a client whose queue passes this (replies it does not read) is dropped
SOCKET_SEND_BUFFER = 256 * 1024  # SO_SNDBUF per client connection
CLOSE_SLOW_CONSUMER = 1008
WRITE_BATCH = 1000  # clients written between two turns of the event loop in one flush
# order updates (and orders errors) held for a client that cannot be written to; never dropped: past this the
# client is disconnected (1008, "slow consumer: ...") rather than silently miss one
ORDER_QUEUE_MAX = 1000
OPEN_FILES_WANTED = 1 << 20  # a file per client: as many as the kernel allows this process


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


def _encode(message: pb.ServerMessage, json_mode: bool) -> bytes | str:
    if json_mode:
        return str(json_format.MessageToJson(message, indent=None))
    return bytes(message.SerializeToString())


class _Client(WSListener):
    def __init__(self, server: FanoutServer, json_mode: bool, authorization: str | None = None,
                 token: str | None = None) -> None:
        self.server = server
        self.sub = Subscriber(next(server._ids), json=json_mode)
        self.protocol = ClientProtocol(server.books.locate_of.get, json_mode=json_mode,
                                       max_message_bytes=server.max_message_bytes, max_symbols=server.max_symbols,
                                       max_messages_per_second=server.max_messages_per_second,
                                       verify=server.verify, orders_enabled=server.orders is not None)
        self.paused_since: float | None = None
        self.transport: WSTransport | None = None
        self._parts: list[bytes] = []
        self._parts_size = 0
        self._parts_type: WSMsgType | None = None
        self._credentials = (authorization, token)
        # replies waiting behind an orders subscription that Redis has not confirmed yet (see ``_apply``)
        self._held: list[Reply] | None = None
        self._order_queue: deque[bytes | str] = deque()  # order frames for while the client is paused

    @property
    def json(self) -> bool:
        return self.sub.json

    # picows callbacks -----------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        server = self.server
        transport.underlying_transport.set_write_buffer_limits(high=server.write_buffer_high)
        sock = transport.underlying_transport.get_extra_info("socket")
        if sock is not None and server.socket_send_buffer:
            # bound the kernel's memory per client too: autotuning would give each one megabytes
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, server.socket_send_buffer)
        self.server._clients[self.sub.id] = self
        self.server.stats.clients = len(self.server._clients)
        self.server.stats.connections_total += 1
        authorization, token = self._credentials
        self._credentials = (None, None)
        self._apply(transport, self.protocol.open(authorization, token))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server._clients.pop(self.sub.id, None)
        self.server._paused.discard(self)
        self.server.hub.remove(self.sub)
        self.server.stats.clients = len(self.server._clients)
        self._held = None
        self._order_queue.clear()
        user, orders = self.protocol.user, self.server.orders
        if user is not None and orders is not None:
            orders.remove(user, self)  # idempotent; also covers a subscription still held

    def pause_writing(self) -> None:
        self.sub.writable = False
        self.paused_since = time.monotonic()
        self.server._paused.add(self)

    def resume_writing(self) -> None:
        self.sub.writable = True
        self.paused_since = None
        self.server._paused.discard(self)
        queue, transport = self._order_queue, self.transport
        while queue and self.sub.writable and transport is not None and not transport.is_disconnected:
            self._order_raw(transport, queue.popleft())  # order updates first: the flush brings prices later

    def drop_slow(self, why: str) -> None:
        """Disconnect a client that does not read: it would otherwise hold memory and never catch up."""
        if self.transport is None or self.transport.is_disconnected:
            return
        self.server.stats.slow_disconnects += 1
        log.info("client %d disconnected: %s", self.sub.id, why)
        self.transport.send_close(WSCloseCode(CLOSE_SLOW_CONSUMER), f"slow consumer: {why}".encode()[:120])
        self.transport.disconnect(graceful=False)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        if kind in (WSMsgType.PING, WSMsgType.PONG):
            return  # picows answers pings itself
        if kind == WSMsgType.CONTINUATION or not frame.fin:
            # A fragmented message: collect it, within the size limit, until the final fragment.
            if kind != WSMsgType.CONTINUATION:
                self._parts_type = kind
            self._parts.append(frame.get_payload_as_bytes())
            self._parts_size += frame.payload_size
            if self._parts_size > self.server.max_message_bytes:
                size = self._parts_size
                self._parts, self._parts_size, self._parts_type = [], 0, None
                self._apply(transport, self.protocol.too_large(size))
                return
            if not frame.fin:
                return
            payload = b"".join(self._parts)
            kind = self._parts_type or WSMsgType.BINARY
            self._parts, self._parts_size, self._parts_type = [], 0, None
        else:
            payload = frame.get_payload_as_bytes()
        if kind == WSMsgType.TEXT:
            try:
                self._message(transport, payload.decode("utf-8"))
            except UnicodeDecodeError:
                self._send(transport, error_message("bad_message", "text frame is not UTF-8"))
        else:
            self._message(transport, payload)

    # protocol glue ---------------------------------------------------------------
    def _message(self, transport: WSTransport, payload: bytes | str) -> None:
        limited = self.protocol.rate_limited
        self._apply(transport, self.protocol.receive(payload, time.monotonic()))
        if self.protocol.rate_limited != limited:
            self.server.stats.rate_limited += 1

    def _apply(self, transport: WSTransport, reply: Reply) -> None:
        """Act on a reply. One that subscribes to orders is held, with every later one, until Redis confirms the
        user's SUBSCRIBE (``orders_ready``): the ``Subscribed`` ack then means no later update can be missed."""
        if self._held is not None:
            self._held.append(reply)
            return
        orders = self.server.orders
        if reply.orders_subscribe is not None and orders is not None:
            self._held = [reply]
            orders.add(reply.orders_subscribe, self)  # calls orders_ready now or soon
            return
        self._apply_now(transport, reply)

    def _apply_now(self, transport: WSTransport, reply: Reply) -> None:
        server = self.server
        if reply.orders_unsubscribe is not None and server.orders is not None:
            server.orders.remove(reply.orders_unsubscribe, self)
        for channel, locates in reply.unsubscribed.items():
            server.hub.unsubscribe(self.sub, channel, locates)
        for channel, locates in reply.subscribed.items():
            server.hub.subscribe(self.sub, channel, locates)
        for message in reply.messages:
            self._send(transport, message)
        for channel in ("quotes", "depth"):
            new = reply.subscribed.get(channel)
            if new:
                self._raw(transport, server.hub.snapshot(self.sub, new, channel))
        if reply.close is not None:
            code, reason = reply.close
            transport.send_close(WSCloseCode(code), reason.encode())
            transport.disconnect()

    # the orders channel (OrdersSink, called by the OrderRelay) ----------------------------------------------
    def orders_ready(self, live: bool) -> None:
        """Redis confirmed (or cannot now confirm) this user's channel: release the held replies; when the channel
        is live again after an outage, re-send the ``Subscribed`` ack to say so."""
        transport = self.transport
        if transport is None or transport.is_disconnected:
            self._held = None
            return
        held, self._held = self._held, None
        if held is None:
            if live and self.protocol.orders:
                self._send(transport, self.protocol.subscribed_message())
            return
        self._apply_now(transport, held[0])
        for reply in held[1:]:
            self._apply(transport, reply)  # may hold again (a later orders subscription)

    def order_frame(self, frame: bytes | str) -> None:
        """One orders-channel frame: written now, or queued while the client is paused; never dropped while
        the client is connected (past ``order_queue_max`` queued, the client is disconnected instead)."""
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        if self.sub.writable and not self._order_queue:
            self._order_raw(transport, frame)
        elif len(self._order_queue) >= self.server.order_queue_max:
            self.server.stats.order_queue_disconnects += 1
            self.drop_slow(f"over {self.server.order_queue_max} order updates unread")
        else:
            self._order_queue.append(frame)

    def _order_raw(self, transport: WSTransport, frame: bytes | str) -> None:
        self.server.stats.order_frames_sent += 1
        self._raw(transport, frame)

    def _send(self, transport: WSTransport, message: pb.ServerMessage) -> None:
        if message.WhichOneof("kind") == "error":
            self.server.stats.errors_sent += 1
        self._raw(transport, _encode(message, self.sub.json))

    def _raw(self, transport: WSTransport, frame: bytes | str) -> None:
        if isinstance(frame, str):
            data = frame.encode()
            transport.send(WSMsgType.TEXT, data)
        else:
            data = frame
            transport.send(WSMsgType.BINARY, data)
        self.server.stats.frames_sent += 1
        self.server.stats.bytes_sent += len(data)
        if transport.underlying_transport.get_write_buffer_size() > self.server.write_buffer_max:
            self.drop_slow(f"over {self.server.write_buffer_max} bytes unread")


class FanoutServer:
    def __init__(self, books: BookSource, *, host: str = "127.0.0.1", port: int = 8765, path: str = "/v1/stream",
                 flush_interval: float = 0.05, max_message_bytes: int = 65_536, max_symbols: int = 1_000,
                 heartbeat_interval: float = 5.0, max_messages_per_second: float = 20.0,
                 slow_client_timeout: float = 10.0, write_buffer_high: int = WRITE_BUFFER_HIGH,
                 write_buffer_max: int = WRITE_BUFFER_MAX, socket_send_buffer: int = SOCKET_SEND_BUFFER,
                 min_flush_interval: float = 0.002, before_flush: Callable[[], object] | None = None,
                 poll_interval: float | None = None, reuse_port: bool = False, orders: OrderRelay | None = None,
                 verify: Callable[[str], str] = verify_token, order_queue_max: int = ORDER_QUEUE_MAX) -> None:
        """``before_flush`` runs first in every flush (a shared-memory reader syncs its books there);
        ``poll_interval`` flushes that often without being notified (books written by other processes).
        ``orders``: the orders channel's Redis relay (started and closed with the server; None: no orders
        channel); ``verify``: bearer token -> user id (``vocab.auth.verify_token``)."""
        self.books = books
        self.orders = orders
        self.verify = verify
        self.order_queue_max = order_queue_max
        self.host = host
        self.port = port
        self.path = path
        self.flush_interval = flush_interval
        self.max_message_bytes = max_message_bytes
        self.max_symbols = max_symbols
        self.heartbeat_interval = heartbeat_interval
        self.max_messages_per_second = max_messages_per_second
        self.slow_client_timeout = slow_client_timeout
        self.min_flush_interval = min(min_flush_interval, flush_interval)
        self.before_flush = before_flush
        self.poll_interval = poll_interval or flush_interval
        # several worker processes can listen on one port (SO_REUSEPORT): the kernel spreads connections
        self.reuse_port = reuse_port
        self._changed = asyncio.Event()
        self.write_buffer_high = write_buffer_high
        self.write_buffer_max = write_buffer_max
        self.socket_send_buffer = socket_send_buffer
        self.hub = Hub(books)
        self.stats = FanoutStats()
        self._ids = itertools.count(1)
        self._clients: dict[int, _Client] = {}
        self._paused: set[_Client] = set()  # clients whose transport asked us to stop writing
        self._server: asyncio.Server | None = None
        self._flusher: asyncio.Task[None] | None = None

    @property
    def bound_port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def _listener(self, request: WSUpgradeRequest) -> _Client | None:
        url = urlsplit(request.path.decode("latin-1"))
        if url.path != self.path:
            return None  # picows answers 404
        query = parse_qs(url.query, keep_blank_values=True)
        fmt = query.get("format", ["protobuf"])[0]
        token = query.get("token", [None])[0]
        return _Client(self, json_mode=fmt == "json", authorization=request.headers.get("Authorization"),
                       token=token)

    async def start(self) -> None:
        raise_open_files(OPEN_FILES_WANTED)
        self._server = await ws_create_server(
            self._listener, self.host, self.port,
            max_frame_size=max(4 * self.max_message_bytes, 1 << 22),
            enable_auto_ping=True, auto_ping_idle_timeout=15, auto_ping_reply_timeout=15,
            reuse_port=self.reuse_port or None,
        )
        if self.port == 0:
            self.port = self.bound_port
        self._flusher = asyncio.create_task(self._flush_loop())
        if self.orders is not None:
            await self.orders.start()

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        if self._server is not None:
            self._server.close()
        for client in list(self._clients.values()):
            if client.transport is not None:
                client.transport.send_close(WSCloseCode.GOING_AWAY, b"server shutting down")
                client.transport.disconnect()
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
        next_heartbeat = time.monotonic() + self.heartbeat_interval
        last_flush = 0.0
        cost = 0.0
        changed = self._changed
        while True:
            try:
                await asyncio.wait_for(changed.wait(), self.poll_interval)
            except TimeoutError:
                pass
            changed.clear()
            gap = min(self.flush_interval, max(self.min_flush_interval, 2 * cost))
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
                    self.hub.flush()  # keep versions current so a first subscriber starts from now
                now = time.monotonic()
                cost = now - started
                self._drop_stuck(now)
                if now >= next_heartbeat:
                    next_heartbeat = now + self.heartbeat_interval
                    self._heartbeat()
            except Exception:  # the flush loop is the node's heartbeat: never let it die
                log.exception("flush failed")

    async def _write(self, clients_of: dict[int, _Client]) -> None:
        """Write this flush's frames; every ``WRITE_BATCH`` clients, let the loop run (the feed's datagrams
        must be read while tens of thousands of clients are written, or the receive buffer overflows)."""
        stats = self.stats
        before = self.hub.stats.updates
        for i, (sub, frames) in enumerate(self.hub.flush()):
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

    def _drop_stuck(self, now: float) -> None:
        limit = self.slow_client_timeout
        for client in [c for c in self._paused if c.paused_since is not None]:
            assert client.paused_since is not None
            if now - client.paused_since > limit:
                client.drop_slow(f"not reading for {limit:g} s")

    def _heartbeat(self) -> None:
        message = pb.ServerMessage(heartbeat=pb.Heartbeat(server_time_ns=time.time_ns()))
        binary = message.SerializeToString()
        text = json_format.MessageToJson(message, indent=None)
        for client in list(self._clients.values()):
            if client.transport is not None and client.sub.writable:
                try:
                    client._raw(client.transport, text if client.sub.json else binary)
                except Exception:
                    self.stats.send_failures += 1

    def latency_percentiles(self) -> tuple[float, float]:
        return self.hub.latency_percentiles()
