"""The outbox relay: rows committed with each ledger change are published to Redis, then marked published.

Execution work goes to Redis Streams ``tickfan:exec:{partition}`` (partition = CRC-32 of user_id, so one
user's events stay in order on one stream); order updates are PUBLISHed on the owner's channel for the
fan-out nodes. Delivery is at least once: a crash between publishing and marking publishes again, and the
consumers are idempotent. One relay per shard at a time (a PostgreSQL advisory lock), so the order of a
shard's outbox is the order of the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib

import asyncpg
import orjson
import redis.asyncio as aioredis

from order_api.db import NOTIFY_CHANNEL, Ledger
from order_api.views import order_channel

log = logging.getLogger("tickfan.outbox")
STREAM = "tickfan:exec:{}"
STREAM_PARTITIONS = 4
STREAM_MAXLEN = 1_000_000
RELAY_LOCK = 7470100  # + shard number
BATCH = 500


def stream_of(user_id: str, partitions: int = STREAM_PARTITIONS) -> str:
    return STREAM.format(zlib.crc32(user_id.encode()) % partitions)


class OutboxRelay:
    def __init__(self, ledger: Ledger, client: aioredis.Redis, *, partitions: int = STREAM_PARTITIONS,
                 poll_interval: float = 0.5) -> None:
        self.ledger, self.redis, self.partitions = ledger, client, partitions
        self.poll_interval = poll_interval
        self.published = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._run_shard(i) for i in range(len(self.ledger.pools))))

    async def _run_shard(self, shard: int) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                await self._relay(shard)
                backoff = 0.1
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, aioredis.ConnectionError,
                    aioredis.TimeoutError) as e:
                log.warning("outbox relay for shard %d: %s; retrying in %.1f s", shard, e, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)

    async def _relay(self, shard: int) -> None:
        pool = self.ledger.pools[shard]
        async with pool.acquire() as conn:
            # Only one relay per shard publishes; the others wait here as hot standbys.
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK + shard):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0)
                if self._stop.is_set():
                    return
            wake = asyncio.Event()

            def notified(*_: object) -> None:
                wake.set()

            await conn.add_listener(NOTIFY_CHANNEL, notified)
            try:
                while not self._stop.is_set():
                    wake.clear()
                    while await self.drain(conn) == BATCH:
                        pass
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.poll_interval)
            finally:
                with contextlib.suppress(Exception):
                    await conn.remove_listener(NOTIFY_CHANNEL, notified)
                    await conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK + shard)

    async def drain(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch("SELECT id, user_id, topic, payload FROM outbox WHERE published_at IS NULL "
                                "ORDER BY id LIMIT $1", BATCH)
        if not rows:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for r in rows:
            if r["topic"] == "execution":
                fields = orjson.loads(r["payload"])
                fields["outbox_id"] = r["id"]
                pipe.xadd(stream_of(r["user_id"], self.partitions), fields, maxlen=STREAM_MAXLEN, approximate=True)
            else:
                pipe.publish(order_channel(r["user_id"]), bytes(r["payload"]))
        await pipe.execute()
        await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                           [r["id"] for r in rows])
        self.published += len(rows)
        return len(rows)
