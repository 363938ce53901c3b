"""The trading stack for tests that break its Redis: the order API over HTTP, an execution worker with its outbox
relay, and a fan-out node's orders relay with one connection per user (``Sink``), on one Redis URL (a server or a
cluster), beside a real PostgreSQL and the FIX market maker the caller starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from fanout.orders import OrderRelay
from order_api.api import create_app
from order_api.execution import ExecutionWorker
from order_api.limits import HttpLimits
from order_api.quotes import QuoteSource
from tests.conftest import eventually
from tickfan_proto import stream_pb2 as pb
from venue.marketmaker import MarketMaker
from vocab.redisconn import open_redis

from .conftest import ScopedLedger, quotes
from .test_api import KEY


@dataclass(eq=False)  # hashed by identity, as connections are
class Sink:
    """One WebSocket connection of a user, as the fan-out's orders relay sees it (``fanout.orders.OrdersSink``)."""

    json: bool = False
    ready: list[bool] = field(default_factory=list)
    updates: list[pb.OrderUpdate] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    accounts: list[pb.AccountUpdate] = field(default_factory=list)
    orders_wanted: bool = True

    def orders_ready(self, live: bool) -> None:
        self.ready.append(live)

    def account_frame(self, frame: bytes | str, version: int, snapshot: bool) -> None:
        assert isinstance(frame, bytes)
        self.accounts.append(pb.ServerMessage.FromString(frame).account)

    def order_frame(self, frame: bytes | str) -> None:
        assert isinstance(frame, bytes)
        msg = pb.ServerMessage.FromString(frame)
        if msg.WhichOneof("kind") == "order_update":
            self.updates.append(msg.order_update)
        else:
            self.errors.append(msg.error.code)


@dataclass
class Stack:
    http: httpx.AsyncClient
    worker: ExecutionWorker
    relay: OrderRelay
    sinks: dict[str, Sink]


@asynccontextmanager
async def stack(ledger: ScopedLedger, url: str, mm: MarketMaker, users: list[str],
                source: QuoteSource | None = None, *, subscribed: bool = True,
                stops: bool = False) -> AsyncIterator[Stack]:
    """The API (HTTP, no rate limit; prices from ``source``, else a fixed table), one execution worker with its
    outbox relay, and the orders relay of a fan-out node with one connection per user, all on the Redis at
    ``url`` (a server or a cluster). With ``subscribed``, it waits until every user's channel is live. With
    ``stops``, the worker's trigger watcher reads the API's prices (``source``) to fire stop orders."""
    # Other tests leave unpublished outbox rows in the shared test shards (test_batching's placeholder work among
    # them): this stack's relay would publish them as work. Mark them, as an operator clearing a backlog would.
    for pool in ledger.pools:
        await pool.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")
    worker_redis = open_redis(url)
    api_redis = open_redis(url)
    source = source or quotes()
    worker = ExecutionWorker(ledger, worker_redis, fix_port=mm.port, name="fo", claim_idle_ms=500,
                             reconcile_every=0.3, reconcile_age=1.0, quotes=source if stops else None)
    running = asyncio.create_task(worker.run())
    relay = OrderRelay(url, reconnect_min=0.05, reconnect_max=0.5, confirm_timeout=5.0, ping_interval=1.0)
    await relay.start()
    sinks = {u: Sink() for u in users}
    for u, sink in sinks.items():
        relay.add(u, sink)
    app = create_app(ledger, source, jwt_key=KEY, redis_client=api_redis, relay=False,
                     limits=HttpLimits(rate=0), ledger_check_interval=0)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            if subscribed:
                await eventually(lambda: all(s.ready == [True] for s in sinks.values()),
                                 what="every user's orders channel subscribed",
                                 state=lambda: {u: s.ready for u, s in sinks.items()})
            yield Stack(http, worker, relay, sinks)
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 10)
        await relay.close()
        await worker_redis.aclose()
        await api_redis.aclose()
