"""The outbox relay against real PostgreSQL and a real (private) Redis: published in order, nothing lost
while Redis is down, each row marked once it is out."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import cast

import pytest
import redis.asyncio as aioredis

from order_api.model import OrderRequest
from order_api.outbox import OutboxRelay, stream_of
from tests.conftest import PrivateRedis, eventually
from tickfan_proto import stream_pb2
from vocab.keys import order_channel
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, ScopedLedger


def buy(key: str) -> OrderRequest:
    return OrderRequest("AAPL", "buy", 1 * S, "market", None, "day", key)


@pytest.mark.anyio
async def test_relay_publishes_streams_and_updates_and_survives_a_redis_restart(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    server = private_redis
    client = aioredis.from_url(server.url)
    relay = OutboxRelay(ledger, client, poll_interval=0.05)
    task = asyncio.create_task(relay.run())
    u = ledger.user()
    pubsub = client.pubsub()
    try:
        await ledger.deposit(u, 10_000 * 10_000)
        await pubsub.ssubscribe(order_channel(u))
        o, _ = await ledger.place(u, buy(uuid.uuid4().hex), QUOTES["AAPL"])
        stream = stream_of(u)
        # other tests' pending outbox rows go out too: look for this user's work only
        await eventually(lambda: _has_work(client, stream, u, 1), what="the first order's work in its stream")
        (fields,) = await _work_of(client, stream, u)
        assert fields[b"action"] == b"new" and fields[b"order_id"] == str(o["order_id"]).encode()
        # the channel also carries the user's account updates (the positions channel): the placement's hold
        # gives one beside the order update (the deposit's, version 1, may come first)
        kinds: dict[str, stream_pb2.ServerMessage] = {}
        while "order_update" not in kinds or kinds["account"].account.version != 2:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is not None:
                parsed = stream_pb2.ServerMessage.FromString(msg["data"])
                kinds[str(parsed.WhichOneof("kind"))] = parsed
            kinds.setdefault("account", stream_pb2.ServerMessage())
        update = kinds["order_update"].order_update
        assert kinds["account"].account.cash == "10000.0000" and kinds["account"].account.buying_power != "10000.0000"
        assert update.order_id == str(o["order_id"]) and update.status == "accepted" and update.version == 1

        # Redis goes away: orders are still accepted (the ledger is the source of truth) and wait.
        server.stop()
        failed = relay.errors
        o2, _ = await ledger.place(u, buy(uuid.uuid4().hex), QUOTES["AAPL"])
        await eventually(lambda: relay.errors > failed, what="the relay tried to publish and failed")
        pool = ledger.pool_for(u)
        pending = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE user_id = $1 AND published_at IS NULL", u)
        assert pending == 3  # the second order's update, its execution work and the account update
        server.start()  # an empty Redis, as after a restart of a server that keeps nothing on disk
        await eventually(lambda: _has_work(client, stream, u, 1), what="the second order's work after the restart")
        (fields,) = await _work_of(client, stream, u)
        assert fields[b"order_id"] == str(o2["order_id"]).encode()
        await eventually(lambda: _none_pending(pool, u), what="nothing left in the outbox")
        assert await ledger.check() == []
    finally:
        relay.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        with contextlib.suppress(Exception):
            await pubsub.aclose()
        await client.aclose()


async def _work_of(client: aioredis.Redis, stream: str, u: str) -> list[dict[bytes, bytes]]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(stream))
    return [f for _, f in entries if f[b"user_id"] == u.encode()]


async def _has_work(client: aioredis.Redis, stream: str, u: str, n: int) -> bool:
    try:
        return len(await _work_of(client, stream, u)) >= n
    except aioredis.ConnectionError:
        return False


async def _none_pending(pool, u: str) -> bool:
    return not await pool.fetchval("SELECT count(*) FROM outbox WHERE user_id = $1 AND published_at IS NULL", u)
