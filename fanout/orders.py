"""The orders channel of one fan-out node: Redis pub/sub in, each user's order updates out to their connections.

Contract with the trading side: after each committed order state change it SPUBLISHes (sharded pub/sub), on
``order_channel(user_id)`` (``tickfan:orders:{user_id}``), the serialized bytes of a complete ``ServerMessage``
whose ``order_update`` is set. This node forwards those bytes unchanged as one binary frame to every connection of
that user subscribed to ``orders`` (JSON clients get one conversion per message, shared by all of them).

``OrderRelay`` holds one pub/sub connection (on a Redis Cluster, one per master: ``order_links``) and SSUBSCRIBEs
to a user's channel only while at least one connection on this node wants that user's updates (reference
counted; SUNSUBSCRIBE when the last one leaves). One task owns those connections: it sends the (UN)SUBSCRIBEs,
reads messages and pings; the rest of the node only changes the wanted set and wakes it. A connection is told
(``OrdersSink.orders_ready(True)``) once Redis has confirmed its user's SSUBSCRIBE, so everything published after
the client's ``Subscribed`` ack reaches it.

The same channel carries the user's account updates (a ``ServerMessage`` whose ``account`` is set: the positions
channel), handed to ``account_frame`` of the connections subscribed to it with their version; ``snapshot`` reads
the user's newest one from Redis (``account_key``, SET by the outbox relay) for a connection whose positions
channel just went live, marked ``snapshot`` (version 0 and nothing else when the user has no account yet).

The same channel carries the user's revocations ("log out everywhere": a ``ServerMessage`` whose ``revoked`` is
set, written by the order API to its outbox in the transaction that bumps the user's token generation, so it is
published at least once). A node listens on the channel of every user with an authenticated connection
(``watch``), orders channel or not, and hands a revocation to ``on_revoked`` (the server closes the connections
whose token is older); it is never forwarded as an order frame.

Redis down or unanswering (on a cluster: any master this node subscribes on, e.g. killed until its replica is
promoted): prices are unaffected; every orders subscriber gets one ``orders_unavailable`` error frame per outage,
and the task reconnects with exponential backoff (reading the cluster's masters again) and re-subscribes every
wanted channel; the outage lasts until every connection took its SSUBSCRIBEs. When a user's channel is live
again its connections are told (``orders_ready(True)``; the client re-sends its ``Subscribed`` ack). Redis pub/sub
is at most once: an update published while this node was not subscribed is not replayed here; the order API
(``GET /v1/orders``) is the record to re-read after an ``orders_unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tickfan_proto import stream_pb2 as pb
from vocab.keys import ORDER_CHANNEL_PREFIX, account_key, order_channel
from vocab.redisconn import cancel_swallowed, open_redis

from .order_links import OrderLinks

log = logging.getLogger("tickfan.orders")

class OrdersSink(Protocol):
    """One connection subscribed to its user's orders (the server's client object)."""

    @property
    def json(self) -> bool: ...

    def orders_ready(self, live: bool) -> None:
        """After ``add``: Redis confirmed the user's SUBSCRIBE (``live``) or cannot now (not live: an
        ``orders_unavailable`` frame follows). Again with ``live`` when the channel is back after an outage."""

    def order_frame(self, frame: bytes | str) -> None:
        """Deliver one frame (an order update or an orders error): never dropped while the connection lives."""

    @property
    def orders_wanted(self) -> bool:
        """Whether order updates are wanted (a connection may want only its account updates)."""

    def account_frame(self, frame: bytes | str, version: int, snapshot: bool) -> None:
        """Deliver one account update (the positions channel); ``snapshot``: the current account on subscribe."""


@dataclass
class OrderStats:
    received: int = 0  # payloads read from Redis
    delivered: int = 0  # order updates handed to connections (one per connection per update)
    bad_payloads: int = 0  # not a ServerMessage carrying an order_update, account or revoked: dropped, counted
    account_updates: int = 0  # account updates handed to connections (one per connection per update)
    snapshot_errors: int = 0  # positions snapshots Redis could not give (the connection is told)
    revocations: int = 0  # "log out everywhere" messages received
    outages: int = 0  # lost or refused Redis connections
    up: bool = False


def _error(message: str, code: str = "orders_unavailable") -> tuple[bytes, str]:
    msg = pb.ServerMessage(error=pb.Error(code=code, message=message))
    return msg.SerializeToString(), json_format.MessageToJson(msg, indent=None)


class OrderRelay:
    def __init__(self, url: str, *, reconnect_min: float = 0.1, reconnect_max: float = 5.0,
                 ping_interval: float = 5.0, confirm_timeout: float = 2.0,
                 redis_kwargs: dict[str, Any] | None = None) -> None:
        """``reconnect_min``..``reconnect_max``: the backoff between attempts while Redis is down (doubling, with
        jitter). ``ping_interval``: a PING on the subscribed connection this often; no answer within two
        intervals counts as an outage. ``confirm_timeout``: a connection waits at most this long for its SUBSCRIBE
        to be confirmed before it is told ``orders_unavailable`` (its ack released; it is live when confirmed)."""
        kwargs: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_keepalive": True,
                                  "retry": Retry(NoBackoff(), 0)}  # this class does its own reconnecting
        kwargs.update(redis_kwargs or {})
        self.url = url
        self.redis = open_redis(url, **kwargs)
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.ping_interval = ping_interval
        self.confirm_timeout = confirm_timeout
        self.stats = OrderStats()
        self._sinks: dict[str, dict[OrdersSink, None]] = {}  # user -> its subscribed connections, in order
        self._watched: dict[str, int] = {}  # user -> authenticated connections listening for revocations
        # called with (user, revoked_before in Unix seconds) when the user logs out everywhere
        self.on_revoked: Callable[[str, float], None] = lambda user, before: None
        self._waiting: dict[OrdersSink, asyncio.TimerHandle] = {}  # ack held until the SUBSCRIBE is confirmed
        self._told_down: set[OrdersSink] = set()  # told orders_unavailable: tell them when live again
        # this session's connection state: channels SUBSCRIBEd (not since UNSUBSCRIBEd), and confirmed by Redis
        self._sent: dict[str, int] = {}  # channel -> SUBSCRIBE confirmations still to read
        self._confirmed: set[str] = set()
        self._down: bool | None = None  # None until the first attempt: neither known up nor known down
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._snapshots: set[asyncio.Task[None]] = set()  # positions snapshots being read
        self._error_down = _error("the order-update service (Redis) is unreachable; reconnecting. Orders are "
                                  "unaffected: re-read GET /v1/orders when a new `subscribed` ack arrives")

    # the node's side ------------------------------------------------------------------------------------------
    @property
    def subscribers(self) -> int:
        """Connections subscribed to the orders channel on this node."""
        return sum(len(s) for s in self._sinks.values())

    @property
    def users(self) -> int:
        """Users whose channel this node wants (one Redis subscription each): orders or revocations."""
        return len(self._sinks.keys() | self._watched.keys())

    def add(self, user: str, sink: OrdersSink) -> None:
        """Deliver ``user``'s order updates to ``sink``; calls ``sink.orders_ready`` now or later, exactly once."""
        sinks = self._sinks.setdefault(user, {})
        if sink in sinks:
            if sink not in self._waiting:
                sink.orders_ready(True)
            return
        sinks[sink] = None
        if order_channel(user) in self._confirmed:
            sink.orders_ready(True)
        elif self._down:
            self._told_down.add(sink)
            sink.orders_ready(False)
            self._send_error(sink, self._error_down)
        else:
            loop = asyncio.get_running_loop()
            self._waiting[sink] = loop.call_later(self.confirm_timeout, self._late, sink)
            self._wake.set()

    def remove(self, user: str, sink: OrdersSink) -> None:
        """Stop delivering to ``sink``; the user's channel is UNSUBSCRIBEd when no connection wants it."""
        sinks = self._sinks.get(user)
        if sinks is None or sink not in sinks:
            return
        del sinks[sink]
        timer = self._waiting.pop(sink, None)
        if timer is not None:
            timer.cancel()
        self._told_down.discard(sink)
        if not sinks:
            del self._sinks[user]
            self._wake.set()

    def watch(self, user: str) -> None:
        """An authenticated connection of ``user`` opened: keep the user's channel subscribed for revocations."""
        self._watched[user] = self._watched.get(user, 0) + 1
        if self._watched[user] == 1 and user not in self._sinks:
            self._wake.set()

    def unwatch(self, user: str) -> None:
        count = self._watched.get(user, 0) - 1
        if count > 0:
            self._watched[user] = count
            return
        self._watched.pop(user, None)
        if user not in self._sinks:
            self._wake.set()

    async def start(self) -> None:
        """Start the connection task; Redis need not be up (the task keeps trying, the node serves prices)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="orders-relay")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for snapshot in list(self._snapshots):
            snapshot.cancel()
        for timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    # the connection task ----------------------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.reconnect_min
        while True:
            links = OrderLinks(self.redis)
            connected = False
            try:
                await links.open()  # fails fast while Redis is down
                connected = True
                await self._session(links)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis.ConnectionError, TimeoutError, OSError, a protocol error: reconnect
                self._outage(exc)
            finally:
                self._sent.clear()
                self._confirmed.clear()
                await links.close()
            if cancel_swallowed():
                raise asyncio.CancelledError
            if connected:
                delay = self.reconnect_min  # this attempt got through: start the backoff over
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.reconnect_max)

    async def _session(self, links: OrderLinks) -> None:
        """One session's life: keep its subscriptions in step with the wanted set, read every connection, ping
        them; raise when any is lost."""
        readers: dict[Any, asyncio.Task[Any]] = {}  # connection -> its pending read
        waker: asyncio.Task[Any] | None = None
        pinged: dict[Any, float] = {}  # connection -> when its unanswered PING was sent
        next_ping = time.monotonic() + self.ping_interval
        try:
            while True:
                self._wake.clear()
                await self._sync(links)
                if not self.stats.up:
                    # up once every connection this session needs took its SSUBSCRIBEs: on a cluster, a dead
                    # master's slots answer the topology before its replica is promoted
                    if self._down:
                        log.warning("orders: Redis at %s is back; re-subscribing %d channel(s)", self.url,
                                    len(self._sent))
                    self._down = False
                    self.stats.up = True
                if self._sent:
                    for link in links.links():
                        if link not in readers:
                            readers[link] = asyncio.create_task(link.get_message(timeout=None))
                if waker is None:
                    waker = asyncio.create_task(self._wake.wait())
                pending: set[asyncio.Task[Any]] = {waker, *readers.values()}
                timeout = max(0.0, next_ping - time.monotonic()) if self._sent else None
                done, _ = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if waker in done:
                    waker = None
                for link, task in list(readers.items()):
                    if task not in done:
                        continue
                    del readers[link]
                    message = task.result()  # raises when the connection is lost
                    if message is not None:
                        if message.get("type") == "pong":
                            pinged.pop(link, None)
                        else:
                            self._handle(message)
                now = time.monotonic()
                if self._sent and now >= next_ping:
                    if pinged:
                        raise ConnectionError(f"no answer to PING in {now - min(pinged.values()):.1f} s")
                    for link in readers:
                        await link.ping()
                        pinged[link] = now
                    next_ping = now + self.ping_interval
                elif not self._sent:
                    pinged.clear()
                    next_ping = now + self.ping_interval
        finally:
            for running in [*readers.values(), *([waker] if waker is not None else [])]:
                running.cancel()
                with contextlib.suppress(BaseException):
                    await running

    async def _sync(self, links: OrderLinks) -> None:
        """Bring the subscriptions to the wanted set: SSUBSCRIBE new users, SUNSUBSCRIBE gone ones."""
        wanted = {order_channel(user) for user in (*self._sinks, *self._watched)}
        new = sorted(wanted - self._sent.keys())
        gone = sorted(self._sent.keys() - wanted)
        if gone:
            for channel in gone:
                del self._sent[channel]
                self._confirmed.discard(channel)
            await links.unsubscribe(gone)
        if new:
            for channel in new:
                self._sent[channel] = self._sent.get(channel, 0) + 1
            await links.subscribe(new)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "smessage":
            self._deliver(name, message.get("data"))
        elif kind == "ssubscribe" and name in self._sent:
            self._sent[name] -= 1
            if self._sent[name] <= 0:
                self._sent[name] = 0
                self._confirmed.add(name)
                self._live(name[len(ORDER_CHANNEL_PREFIX):])

    def _live(self, user: str) -> None:
        """The user's channel is confirmed: release held acks; tell connections that were told it was down."""
        for sink in list(self._sinks.get(user, ())):
            if sink in self._waiting:
                self._waiting.pop(sink).cancel()
                sink.orders_ready(True)
            elif sink in self._told_down:
                self._told_down.discard(sink)
                sink.orders_ready(True)

    def _deliver(self, channel: str, data: object) -> None:
        self.stats.received += 1
        user = channel[len(ORDER_CHANNEL_PREFIX):] if channel.startswith(ORDER_CHANNEL_PREFIX) else None
        if user is None or not isinstance(data, bytes):
            return
        try:
            msg = pb.ServerMessage.FromString(data)
            kind = msg.WhichOneof("kind")
        except DecodeError:
            kind = None
        if kind == "revoked":
            self.stats.revocations += 1
            self.on_revoked(user, msg.revoked.revoked_before_ns / 1e9)
            return
        ok = kind in ("order_update", "account")
        sinks = self._sinks.get(user)
        if not sinks:
            return  # a late message for a user no connection wants any more
        if kind == "account":
            self._deliver_account(msg, data, list(sinks), snapshot=False)
            return
        if not ok:
            self.stats.bad_payloads += 1
            log.warning("orders: dropped a payload on %s that is not a ServerMessage with an order_update "
                        "(%d bytes)", channel, len(data))
            return
        text: str | None = None
        for sink in list(sinks):
            if not sink.orders_wanted:
                continue
            if sink.json:
                if text is None:
                    text = json_format.MessageToJson(msg, indent=None)  # once per message, for all JSON clients
                sink.order_frame(text)
            else:
                sink.order_frame(data)  # the publisher's bytes, unchanged
            self.stats.delivered += 1

    def _deliver_account(self, msg: pb.ServerMessage, data: bytes, sinks: list[OrdersSink], *,
                         snapshot: bool) -> None:
        text: str | None = None
        for sink in sinks:
            if sink.json:
                if text is None:
                    text = json_format.MessageToJson(msg, indent=None)
                sink.account_frame(text, msg.account.version, snapshot)
            else:
                sink.account_frame(data, msg.account.version, snapshot)
            self.stats.account_updates += 1

    def snapshot(self, user: str, sink: OrdersSink) -> None:
        """Send ``sink`` the user's current account (the positions channel's snapshot), read from Redis."""
        task = asyncio.create_task(self._snapshot(user, sink), name="positions-snapshot")
        self._snapshots.add(task)
        task.add_done_callback(self._snapshots.discard)

    async def _snapshot(self, user: str, sink: OrdersSink) -> None:
        try:
            raw = await self.redis.get(account_key(user))
            msg = pb.ServerMessage(account=pb.AccountUpdate())  # no account yet: version 0
            if raw is not None:
                msg = pb.ServerMessage.FromString(raw.encode() if isinstance(raw, str) else raw)
        except Exception as exc:  # Redis away, or a payload that is not ours
            self.stats.snapshot_errors += 1
            log.warning("orders: no positions snapshot for a connection of %s: %s", user, exc)
            self._send_error(sink, _error("the account could not be read for the positions snapshot; updates "
                                          "follow, and GET /v1/account is the record", "positions_unavailable"))
            sink.account_frame(b"", -1, True)  # no snapshot: the updates waiting for it go through
            return
        if msg.WhichOneof("kind") != "account":
            msg = pb.ServerMessage(account=pb.AccountUpdate())
        msg.account.snapshot = True
        if sink in self._sinks.get(user, {}):
            self._deliver_account(msg, msg.SerializeToString(), [sink], snapshot=True)

    def _late(self, sink: OrdersSink) -> None:
        """A connection's SUBSCRIBE is not confirmed in time: release its ack with ``orders_unavailable``."""
        if self._waiting.pop(sink, None) is None:
            return
        self._told_down.add(sink)
        sink.orders_ready(False)
        self._send_error(sink, _error(f"the order-update service (Redis) did not confirm the subscription in "
                                      f"{self.confirm_timeout:g} s; a new `subscribed` ack follows when it does"))

    def _outage(self, exc: BaseException) -> None:
        first = self._down is not True
        self._down = True
        self.stats.up = False
        if not first:
            log.debug("orders: Redis at %s still unreachable: %s", self.url, exc)
            return
        self.stats.outages += 1
        log.warning("orders: Redis at %s unreachable (%s); order updates paused, reconnecting", self.url, exc)
        for sink in self._sinks_all():
            held = self._waiting.pop(sink, None)
            if held is not None:
                held.cancel()
                sink.orders_ready(False)
            if sink not in self._told_down:
                self._told_down.add(sink)
                self._send_error(sink, self._error_down)

    def _sinks_all(self) -> Iterable[OrdersSink]:
        return [s for sinks in self._sinks.values() for s in sinks]

    @staticmethod
    def _send_error(sink: OrdersSink, frames: tuple[bytes, str]) -> None:
        sink.order_frame(frames[1] if sink.json else frames[0])
