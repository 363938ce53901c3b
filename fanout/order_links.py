"""The orders relay's pub/sub connections: one to a single Redis server, or one per master of a Redis Cluster.

Order updates travel on sharded pub/sub (SPUBLISH/SSUBSCRIBE, ``vocab.keys.order_channel``): on a cluster a
user's channel is served by the master owning its hash slot alone, so the publisher's cost and the cluster bus
do not grow with the nodes (plain PUBLISH is copied to every node of a cluster). A subscriber must therefore
SSUBSCRIBE on that master: ``OrderLinks`` keeps one connection per master in use and says which one carries a
channel. One SSUBSCRIBE names channels of one slot only (CROSSSLOT otherwise), so on a cluster channels are
subscribed slot by slot; a single server takes them in one command.

One session's worth: the relay makes a new ``OrderLinks`` after any connection is lost (``open`` reads the
cluster's current masters, so a promoted replica is found), and a lost link is an outage of the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from vocab.redisconn import AnyRedis


class OrderLinks:
    def __init__(self, client: AnyRedis) -> None:
        self.client = client
        self._links: dict[str, PubSub] = {}  # node name ("" for a single server) -> its pub/sub connection
        self._clients: list[Redis] = []  # the per-master clients made here (a cluster's)
        self._where: dict[str, PubSub] = {}  # channel -> the connection it was subscribed on

    @property
    def cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    async def open(self) -> None:
        """Check Redis answers, and on a cluster learn its current masters (raises while it does not)."""
        if isinstance(self.client, RedisCluster):
            await self.client.initialize()  # the first time only: nodes and command key positions
            await self.client.nodes_manager.initialize()  # every time: the masters now (a replica promoted)
        else:
            await self.client.ping()

    def link_of(self, channel: str) -> PubSub:
        """The connection that carries ``channel`` (made on first use)."""
        where = self._where.get(channel)
        if where is not None:
            return where
        if not isinstance(self.client, RedisCluster):
            if "" not in self._links:
                self._links[""] = self.client.pubsub()
            return self._links[""]
        node = self.client.get_node_from_key(channel)  # SlotNotCoveredError mid-failover: an outage
        if node is None:
            raise ConnectionError(f"no master serves {channel!r} now")
        link = self._links.get(node.name)
        if link is None:
            # a plain client of that master, with the cluster's connection settings (auth, TLS, timeouts);
            # no retries: a lost link ends the session and the relay reconnects everything
            kwargs: dict[str, Any] = {**node.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
            pool = ConnectionPool(connection_class=node.connection_class, max_connections=2, **kwargs)
            client = Redis(connection_pool=pool)
            self._clients.append(client)
            link = self._links[node.name] = client.pubsub()
        return link

    def batches(self, channels: Iterable[str]) -> list[tuple[PubSub, list[str]]]:
        """``channels`` in (connection, channels) batches one SSUBSCRIBE/SUNSUBSCRIBE may name together."""
        groups: dict[tuple[int, int], tuple[PubSub, list[str]]] = {}
        for channel in channels:
            link = self.link_of(channel)
            slot = key_slot(channel.encode()) if self.cluster else 0
            groups.setdefault((id(link), slot), (link, []))[1].append(channel)
        return list(groups.values())

    async def subscribe(self, channels: Iterable[str]) -> None:
        for link, batch in self.batches(channels):
            for channel in batch:
                self._where[channel] = link
            await link.ssubscribe(*batch)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        for link, batch in self.batches(channels):
            for channel in batch:
                self._where.pop(channel, None)
            await link.sunsubscribe(*batch)

    def links(self) -> list[PubSub]:
        return list(self._links.values())

    async def close(self) -> None:
        for link in self._links.values():
            with contextlib.suppress(Exception):
                await link.aclose()  # type: ignore[no-untyped-call]
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._links.clear()
        self._clients.clear()
        self._where.clear()
