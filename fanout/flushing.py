"""The server's flushes (a mixin of ``fanout.server.FanoutServer``): when to flush, writing each client's frames
of a ``Hub.flush``, moving clients between conflation tiers (``fanout.tiers``: the policy decides, the hub paces),
cutting off clients stuck past ``slow_client_timeout``, and the heartbeats. Also the server's counters
(``FanoutStats``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from normalize.source import BookSource
from tickfan_proto import stream_pb2 as pb

from .config import FanoutConfig
from .encode import heartbeat_frame, liveness_entry, to_json
from .hub import Hub, Subscriber
from .tiers import TierLadder
from .wire import BINARY_HEADERS, TEXT_HEADERS, ws_frames

if TYPE_CHECKING:
    from .server import _Client

log = logging.getLogger("tickfan.fanout")
WRITE_BATCH = 1000  # clients written between two turns of the event loop in one flush


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


class Flushing:
    """The flush half of the server; the server gives it these."""

    config: FanoutConfig
    books: BookSource
    hub: Hub
    stats: FanoutStats
    tiers: TierLadder
    before_flush: Callable[[], object] | None
    feed_state: Callable[[], str]
    _changed: asyncio.Event
    _clients: dict[int, _Client]
    _paused: set[_Client]
    _heartbeats: int

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
        """Write this flush's frames, window by window (``FanoutConfig.flush_window`` hub slots each): each
        window's frames are made when its turn comes, from the books as they are then, and between two windows
        (and every ``WRITE_BATCH`` clients) the loop runs: the feed's datagrams must be read while tens of
        thousands of clients are written, or the receive buffer overflows."""
        hub = self.hub
        size = self.config.flush_window
        slots = len(hub.subscriber_of)
        if not size or slots <= size:
            await self._write_window(clients_of, None)
            return
        for lo in range(0, slots, size):
            if lo:
                await asyncio.sleep(0)
                if self.before_flush is not None:
                    self.before_flush()  # books another process writes: this window sees them as they are now
            await self._write_window(clients_of, (lo, lo + size))

    async def _write_window(self, clients_of: dict[int, _Client], window: tuple[int, int] | None) -> None:
        """One window's frames (``Hub.flush``), each client's framed here (``fanout.wire``) and all of them in
        one write straight to its stream transport: one system call per client when nothing is queued for it.
        Per client, only what must be per client: is it still here and open, the write, and the queue's size only
        for a client the transport has paused (the only kind whose queue can be past ``write_buffer_max``)."""
        stats, hub = self.stats, self.hub
        before = hub.stats.updates
        now = time.time_ns()  # the books' clock is Unix epoch ns too: one reading serves both
        result = hub.flush(now, send_time_ns=now, window=window)
        subs, frames_of = result.subs, result.frames
        limit = self.config.write_buffer_max
        every = self.config.write_buffer_high >= limit  # else only a paused client can be over the limit
        binary, text = BINARY_HEADERS, TEXT_HEADERS
        frames = payload = 0
        single = result.single
        for lo in range(0, len(subs), WRITE_BATCH):
            if lo:
                await asyncio.sleep(0)
            for sub, frame in zip(subs[lo:lo + WRITE_BATCH], frames_of[lo:lo + WRITE_BATCH], strict=True):
                client = clients_of.get(sub.id)
                if client is None or client.closing:
                    continue  # gone, or closed: nothing follows a close frame
                ws = client.transport
                if ws is None or ws.is_close_frame_sent:
                    continue  # picows closed it itself (a protocol error, a ping unanswered)
                try:
                    if single:
                        if type(frame) is not bytes:
                            frame = frame.encode()
                            data = text[len(frame)] + frame
                        else:
                            data = binary[len(frame)] + frame
                        frames += 1
                        payload += len(frame)
                    else:
                        data, n = ws_frames(frame)
                        frames += len(frame)
                        payload += n
                    transport = ws.underlying_transport
                    transport.write(data)
                    if (every or not sub.writable) and transport.get_write_buffer_size() > limit:
                        client.drop_slow(f"over {limit} bytes unread")
                except Exception:
                    stats.send_failures += 1
                    log.debug("send to client %d failed", sub.id, exc_info=True)
        stats.frames_sent += frames
        stats.bytes_sent += payload
        stats.updates_sent += hub.stats.updates - before
        stats.conflated_skips = hub.stats.conflated_skips

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
            locs = sorted(client.sub.locates())
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
