"""One way to open Redis for every process: a single server or a Redis Cluster, chosen by the URL.

- ``redis://HOST:PORT/DB``, ``rediss://...``, ``unix://...``: one server (the default everywhere);
- ``redis+cluster://HOST:PORT[,HOST:PORT...]``, ``rediss+cluster://...``: a Redis Cluster, reached through any
  of the listed nodes (redis-py's ``RedisCluster`` learns the rest, follows MOVED/ASK and a failover's new
  masters). A cluster has no databases: a path other than ``/`` or ``/0`` is refused.

Callers write their commands once: both clients take the same commands, and a non-transactional pipeline
(``pipeline(transaction=False)``) is split per node by the cluster client. What a caller must know about a
cluster is in the key names (``vocab.keys``): keys that one command or one transaction touches together share
a hash tag.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster

AnyRedis: TypeAlias = "aioredis.Redis | RedisCluster"

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The start-up nodes a cluster URL names (``ValueError`` when there is none or one is malformed)."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a cluster URL (redis+cluster://HOST:PORT[,HOST:PORT]): {url!r}")
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"a Redis Cluster has one database: drop {parts.path!r} from {url!r}")
    hostports = parts.netloc.rpartition("@")[2]
    nodes: list[tuple[str, int]] = []
    for item in hostports.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isascii() or not port.isdigit():
            raise ValueError(f"cluster node {item!r} is not HOST:PORT in {url!r}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def open_redis(url: str, **kwargs: Any) -> AnyRedis:
    """A client for ``url`` (see the module's docstring); ``kwargs`` go to the redis-py client."""
    if not is_cluster(url):
        return aioredis.Redis.from_url(url, **kwargs)
    parts = urlsplit(url)
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    options.update(kwargs)
    if parts.username:
        options.setdefault("username", parts.username)
    if parts.password:
        options.setdefault("password", parts.password)
    if CLUSTER_SCHEMES[parts.scheme] == "rediss":
        options.setdefault("ssl", True)
    nodes = [ClusterNode(host, port) for host, port in cluster_nodes(url)]
    return RedisCluster(startup_nodes=nodes, **options)


# Redis failing in a way a later attempt may not: down, timed out, or a cluster between a master's death and its
# replica's promotion (CLUSTERDOWN, TRYAGAIN, a slot no node covers yet). What callers retry or degrade on.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError, redis.exceptions.RedisClusterException, OSError)


def cancel_swallowed() -> bool:
    """True when the running task was asked to stop and is still running: redis-py can swallow a cancellation
    inside a call that then returns or fails normally (a read racing a connection's teardown while Redis
    restarts), and a ``while True`` loop around that call would go on forever and hang whoever waits for it to
    end. Loops that call redis-py check this before going round again and raise ``CancelledError`` if so."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
