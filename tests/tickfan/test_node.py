"""A node is its roles: which ones each mode builds (no sockets), and one real plain node that starts and stops."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import websockets

from normalize import Books
from normalize.kernel import KernelBooks
from normalize.replicas.redis import RedisBooks
from normalize.replicas.shm import BookView, SharedBookState
from tests.conftest import eventually, free_port
from tickfan.node import Node, NodeConfig
from tickfan.roles import AttachedBooks, EdgeRole, IngestRole, RemoteBooks, build_roles

REDIS = "redis://127.0.0.1:6379/15"  # never connected to here: the roles only hold the URL until started


@pytest.fixture
def shm() -> Iterator[str]:
    state = SharedBookState.create()
    try:
        yield state.shm.name
    finally:
        state.close()


def test_plain_node_is_ingest_and_edge() -> None:
    node = Node(NodeConfig(batched=False))  # the plain engine, asked for (the default is the kernel)
    roles = node.roles
    assert isinstance(roles.source, IngestRole) and roles.ingest is roles.source
    assert type(node.books) is Books
    assert roles.publisher is None and isinstance(roles.edge, EdgeRole)
    assert node.fanout is roles.edge.fanout and node.fanout.books is node.books
    assert node.fanout.orders is None and node.fanout.config.poll_interval is None  # the feed notifies
    assert roles.ingest.notify == node.fanout.notify
    assert roles.in_order() == [roles.source, roles.edge]
    assert node.feed is None  # until started


def test_batched_node_applies_through_the_kernel() -> None:
    from normalize.kernel import KernelBooks

    node = Node(NodeConfig())  # the default
    assert isinstance(node.books, KernelBooks) and node.roles.edge is not None


def test_ingest_worker_publishes_into_shared_memory_and_serves_nothing(shm: str) -> None:
    roles = build_roles(NodeConfig(publish=shm, batched=True, orders_redis=REDIS))
    ingest = roles.ingest
    assert ingest is not None and ingest.shm_publisher is not None
    # batched: the kernel's books, whose rows ARE the shared block's (readers copy them from there)
    assert isinstance(ingest.books, KernelBooks)
    assert ingest.shared is not None and np.shares_memory(ingest.books.seq, ingest.shared.arrays["seq"])
    assert ingest.books is ingest.shm_publisher.books
    assert roles.edge is None and roles.publisher is None
    node = Node(NodeConfig(publish=shm), roles)
    assert node.fanout is None and node.extra_routes == []
    with pytest.raises(ValueError):
        node.extra_routes = []
    assert ingest.shared is not None
    ingest.shared.close()


def test_ingest_worker_can_also_publish_to_redis(shm: str) -> None:
    roles = build_roles(NodeConfig(publish=shm, redis=REDIS, batched=False))
    assert type(roles.source.books) is Books  # --plain: the plain engine
    assert roles.publisher is not None and roles.publisher.publisher.books is roles.source.books
    assert roles.in_order() == [roles.source, roles.publisher]
    if roles.ingest is not None and roles.ingest.shared is not None:
        roles.ingest.shared.close()


def test_reader_serves_the_shared_books_polled_and_synced(shm: str) -> None:
    node = Node(NodeConfig(attach=shm, reuse_port=True, serve_http=False, orders_redis=REDIS))
    roles = node.roles
    assert isinstance(roles.source, AttachedBooks) and roles.ingest is None
    assert isinstance(node.books, BookView)
    assert node.fanout is not None
    assert node.fanout.config.poll_interval == 0.005 and node.fanout.config.reuse_port
    assert node.fanout.before_flush == roles.source.sync  # the books' rows, then the bars of their prints
    assert node.fanout.hub.bars.source is roles.source.bars and roles.source.bars.books is node.books
    assert node.fanout.orders is not None  # the orders relay rides on the edge
    roles.source.shared.close()


def test_remote_node_follows_what_its_clients_watch() -> None:
    node = Node(NodeConfig(from_redis=REDIS))
    assert isinstance(node.roles.source, RemoteBooks) and isinstance(node.books, RedisBooks)
    assert node.fanout is not None and node.fanout.config.poll_interval == 0.005
    assert node.books.watched is not None
    node.fanout.hub.quotes.count[3] = 2  # a client watching locate 3 is what the Redis reader follows
    assert np.flatnonzero(node.books.watched()).tolist() == [3]
    assert node.feed is None and node.roles.publisher is None


def test_relay_node_reads_redis_and_publishes_books_it_ingests() -> None:
    roles = build_roles(NodeConfig(redis=REDIS, orders_redis=REDIS))
    assert roles.ingest is not None and roles.publisher is not None and roles.edge is not None
    assert roles.publisher.publisher.books is roles.ingest.books
    assert roles.edge.fanout.orders is not None
    assert roles.in_order() == [roles.source, roles.publisher, roles.edge]


def test_a_plain_node_starts_serves_and_stops() -> None:
    async def main() -> None:
        http, ws = free_port(), free_port()
        feed = free_port(socket.SOCK_DGRAM)
        node = Node(NodeConfig(feeds=[("127.0.0.1", feed)], http=("127.0.0.1", http), ws=("127.0.0.1", ws),
                               session="TICKFAN001"))
        await node.start()
        try:
            assert node.feed is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", timeout=5) as client:
                health = await client.get("/healthz")
                assert health.status_code == 200
                metrics = await client.get("/metrics")
                assert "tickfan_feed_events" in metrics.text and "tickfan_connections" in metrics.text
            async with websockets.connect(f"ws://127.0.0.1:{ws}/v1/stream?format=json"):
                fanout = node.fanout
                assert fanout is not None
                await eventually(lambda: fanout.stats.clients == 1, what="the WebSocket client is counted")
        finally:
            await node.close()
        with pytest.raises(httpx.ConnectError):  # the HTTP port is released
            httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=2)

    asyncio.run(main())
