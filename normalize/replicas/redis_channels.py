"""Following sharded channels on one Redis server or a Redis Cluster, through a master's failover.

``PartitionSubscriber`` is the one lifecycle of every Redis-fed reader (``RedisBooks``, ``RedisBars``): it opens
the client (``vocab.redisconn.open_redis``: the URL picks a server or a cluster), runs the owner's ``follow``
coroutine every ``FOLLOW_EVERY`` (which calls ``subscribe`` for the partitions its clients newly watch), and
hands each published message's bytes to ``on_message``.

One subscription connection per node: on a single server, one; on a cluster, one per master that owns a
followed channel's slot (SSUBSCRIBE must reach the slot's owner), each read by its own task, so a quiet shard
never delays a busy one. redis-py's ``ClusterPubSub`` was not used for reading: its ``get_sharded_message``
polls the nodes one after another, each with the whole timeout (a message on the third master waited up to two
timeouts), and its resubscription runs only when a command of the same client happens to refresh the slot map.

**Failover.** A node's connection that fails (the master was killed) or a ``sunsubscribe`` the server sends
unasked (its slot moved away) makes that node's channels *lost*: ``lost`` holds them, ``on_lost`` is told at
once (the reader flags those partitions' symbols stale), and a repair task refreshes the cluster's slot map
every ``REPAIR_EVERY`` and subscribes each lost channel on its slot's current owner, which succeeds once a
replica has been promoted. ``on_regained`` is then awaited with the channels back (the reader re-seeds their
symbols from the hashes: what was published while nobody listened). ``heard`` holds each channel's last
message time (monotonic), for readers that judge silence (the publisher's keepalives make a quiet partition
still speak once a second).

**Live means confirmed.** redis-py's ``ssubscribe`` only sends the command; the server's confirmation comes back
later on the subscription connection. ``subscribe`` returns once Redis has confirmed every channel it was asked
for (also those another caller asked for just before), so whatever is read from Redis after it (a resume's
history stream) meets the channel's messages with nothing published between the two reaching neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster

from vocab.redisconn import AnyRedis, cancel_swallowed, open_redis

log = logging.getLogger("tickfan.redis")
FOLLOW_EVERY = 0.05  # seconds between the owner's follow rounds
REPAIR_EVERY = 0.25  # seconds between attempts to resubscribe lost channels
CONFIRM_TIMEOUT = 5.0  # seconds ``subscribe`` waits for Redis to confirm a channel, at most

OnChannels = Callable[[set[str]], Awaitable[None]]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for its end: its outcome is dropped, a cancellation of the caller is not."""
    task.cancel()
    await asyncio.wait([task])


class _NodeFeed:
    """One node's subscription connection and the task reading it."""

    def __init__(self, name: str, pubsub: PubSub, client: aioredis.Redis | None) -> None:
        self.name = name
        self.pubsub = pubsub
        self.client = client  # a cluster node's own client (closed with the feed); None: the server's client
        self.channels: set[str] = set()
        self.task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.task is not None and self.task is not asyncio.current_task():
            await _stop(self.task)
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()


class PartitionSubscriber:
    """Sharded channels followed on ``url`` (see the module docstring)."""

    def __init__(self, url: str, *, on_message: Callable[[bytes], None], follow: Callable[[], Awaitable[None]],
                 on_lost: OnChannels | None = None, on_regained: OnChannels | None = None,
                 what: str = "Redis partitions") -> None:
        self.redis: AnyRedis = open_redis(url)
        self.on_message = on_message
        self.follow = follow
        self.on_lost = on_lost
        self.on_regained = on_regained
        self.what = what
        self.channels: set[str] = set()  # every channel asked for
        self.lost: set[str] = set()      # asked for, but its node's subscription is gone (not yet repaired)
        self.heard: dict[str, float] = {}
        # per channel, done once Redis confirmed its latest SSUBSCRIBE (a new one for each resubscription)
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        # one SSUBSCRIBE round at a time: redis-py's PubSub opens its connection on its first command, and two
        # callers at once would each open one, the subscription sent on the first then read by nobody
        self._subscribing = asyncio.Lock()
        self.counters = {"messages": 0, "bad_messages": 0, "channels_lost": 0, "channels_regained": 0}
        self._feeds: dict[str, _NodeFeed] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._repair: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        await self.redis.ping()  # fail at start, not later, when Redis is not there
        self._tasks = [asyncio.create_task(self._follow())]

    async def close(self) -> None:
        self._closed = True  # a feed ending now starts no repair
        for t in [*self._tasks, *([self._repair] if self._repair else [])]:
            await _stop(t)
        for feed in list(self._feeds.values()):
            await feed.close()
        self._feeds.clear()
        await self.redis.aclose()

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Follow ``channels`` (those already followed are not asked again), returning once Redis confirmed
        each (or after ``CONFIRM_TIMEOUT``). One whose node cannot be reached now is lost at once (``on_lost``),
        and the repair task subscribes it when it can."""
        wanted = set(channels)
        new = wanted - self.channels
        if new:
            self.channels |= new
            try:
                async with self._subscribing:
                    await self._subscribe_on_owners(new)
            except Exception as e:
                log.warning("subscribing to %s failed: %s", self.what, e)
                await self._lose({ch for ch in new if not any(ch in f.channels for f in self._feeds.values())})
        await self._until_confirmed(wanted - self.lost)

    async def _until_confirmed(self, channels: set[str]) -> None:
        waiting = [f for ch in channels if (f := self._confirmed.get(ch)) is not None and not f.done()]
        if not waiting:
            return
        done, _ = await asyncio.wait(waiting, timeout=CONFIRM_TIMEOUT)
        if len(done) < len(waiting):
            log.warning("Redis did not confirm %d of the %s subscribed in %g s", len(waiting) - len(done),
                        self.what, CONFIRM_TIMEOUT)

    def confirmed(self, channel: str) -> bool:
        """Redis confirmed this channel's subscription, and it was not lost since."""
        f = self._confirmed.get(channel)
        return f is not None and f.done() and channel not in self.lost

    async def _subscribe_on_owners(self, channels: set[str]) -> None:
        by_node: dict[str, list[str]] = {}
        nodes: dict[str, ClusterNode | None] = {}
        for ch in sorted(channels):
            if isinstance(self.redis, RedisCluster):
                node = self.redis.get_node_from_key(ch)
                if node is None:
                    raise ConnectionError(f"no node of the cluster serves {ch}'s slot")
                by_node.setdefault(node.name, []).append(ch)
                nodes[node.name] = node
            else:
                by_node.setdefault("server", []).append(ch)
                nodes["server"] = None
        for name, chans in by_node.items():
            feed = self._feeds.get(name)
            if feed is None:  # registered before the first await: the follow and repair tasks share it
                feed = self._feeds[name] = self._open_feed(name, nodes[name])
            try:
                for ch in chans:  # one slot a command: a cluster node refuses SSUBSCRIBE across slots
                    old = self._confirmed.get(ch)
                    if old is None or old.done():
                        self._confirmed[ch] = asyncio.get_running_loop().create_future()
                    await feed.pubsub.ssubscribe(ch)
                    feed.channels.add(ch)
            except Exception:
                if not feed.channels and self._feeds.get(name) is feed:
                    del self._feeds[name]
                    await feed.close()
                raise
            if feed.task is None:
                feed.task = asyncio.create_task(self._listen(feed))

    def _open_feed(self, name: str, node: ClusterNode | None) -> _NodeFeed:
        if node is None:
            assert isinstance(self.redis, aioredis.Redis)
            return _NodeFeed(name, self.redis.pubsub(), None)
        kwargs: dict[str, Any] = dict(node.connection_kwargs)
        pool = aioredis.ConnectionPool(connection_class=node.connection_class, **kwargs)
        client = aioredis.Redis(connection_pool=pool)
        return _NodeFeed(name, client.pubsub(), client)

    # ------------------------------------------------------------------ the tasks
    async def _follow(self) -> None:
        while True:
            try:
                await self.follow()
            except Exception:
                log.warning("following %s failed", self.what, exc_info=True)
            if cancel_swallowed():
                raise asyncio.CancelledError
            await asyncio.sleep(FOLLOW_EVERY)

    async def _listen(self, feed: _NodeFeed) -> None:
        try:
            while True:
                msg = await feed.pubsub.get_message(timeout=1.0)
                if cancel_swallowed():
                    raise asyncio.CancelledError
                if msg is None:
                    continue
                kind = _text(msg.get("type", ""))
                channel = _text(msg.get("channel") or b"")
                if kind == "smessage":
                    self.heard[channel] = time.monotonic()
                    self.counters["messages"] += 1
                    try:
                        self.on_message(msg["data"])
                    except Exception:  # a malformed message is counted, never the end of the feed
                        self.counters["bad_messages"] += 1
                        log.warning("a message on %s could not be read", channel, exc_info=True)
                elif kind == "ssubscribe":
                    confirmed = self._confirmed.get(channel)
                    if confirmed is not None and not confirmed.done():
                        confirmed.set_result(None)
                elif kind == "sunsubscribe" and channel in feed.channels:
                    # unasked: the server no longer owns the channel's slot (migrated, or demoted in a failover)
                    feed.channels.discard(channel)
                    await self._lose({channel})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("the subscription to %s on %s was lost", self.what, feed.name, exc_info=True)
            if self._feeds.get(feed.name) is feed:
                del self._feeds[feed.name]
            channels = set(feed.channels)
            feed.channels.clear()
            await feed.close()
            await self._lose(channels)

    async def _lose(self, channels: set[str]) -> None:
        channels &= self.channels
        if not channels or self._closed:
            return
        self.lost |= channels
        self.counters["channels_lost"] += len(channels)
        if self.on_lost is not None:
            try:
                await self.on_lost(channels)
            except Exception:
                log.warning("on_lost failed", exc_info=True)
        if self._repair is None or self._repair.done():
            self._repair = asyncio.create_task(self._repairing())

    async def _repairing(self) -> None:
        """Until every lost channel is followed again: refresh the slot map, subscribe on the current owners."""
        while self.lost and not self._closed:
            await asyncio.sleep(REPAIR_EVERY)
            try:
                if isinstance(self.redis, RedisCluster):
                    await self.redis.nodes_manager.initialize()
                lost = set(self.lost)
                async with self._subscribing:
                    await self._subscribe_on_owners(lost)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the owner is still the dead master: the failover has not happened yet
                log.debug("resubscribing %s: %s", self.what, e)
                if cancel_swallowed():
                    raise asyncio.CancelledError from None
                continue
            self.lost -= lost
            self.counters["channels_regained"] += len(lost)
            log.info("resubscribed %d channel(s) of %s", len(lost), self.what)
            if self.on_regained is not None:
                try:
                    await self.on_regained(lost)
                except Exception:
                    log.warning("on_regained failed", exc_info=True)
