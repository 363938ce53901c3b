"""The outbox relay: rows committed with each ledger change are published to Redis, then marked published.

Execution work goes to Redis Streams ``tickfan:exec:{partition}`` (partition = CRC-32 of user_id, so one
user's events stay in order on one stream); order updates are SPUBLISHed (sharded pub/sub: on a Redis Cluster
only the channel's shard carries them) on the owner's channel for the fan-out nodes. Account updates (migration
012: JSON of the user's balances) are encoded here as ``ServerMessage{AccountUpdate}``, SET as the user's newest
(``account_key``, the positions channel's snapshot) and SPUBLISHed on the same channel, in one pipeline.
Delivery is at least once: a crash between publishing and marking publishes again, and the consumers are
idempotent. One relay per shard at a time (a PostgreSQL advisory lock), so the order of a shard's outbox is
the order of the stream.

Redis acknowledges a write before its replicas have it: a master that dies just after an XADD can take the
entry with it, the row already marked. PostgreSQL stays the record: an order still ``accepted`` a few seconds
after its work was published is published again by its execution worker's sweep (``order_api.execution``), and
a duplicate is harmless there (sent once by ``Ledger.mark_sending``, filled once by ExecID).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import orjson
import redis.exceptions

from order_api.account import AccountView, account_update_frame
from order_api.db import Ledger
from vocab.keys import EXEC_PARTITIONS, EXEC_STREAM, account_key, exec_stream, order_channel
from vocab.partition import crc32_partition
from vocab.redisconn import UNAVAILABLE, AnyRedis

log = logging.getLogger("tickfan.outbox")
STREAM = EXEC_STREAM
STREAM_PARTITIONS = EXEC_PARTITIONS
STREAM_MAXLEN = 1_000_000
RELAY_LOCK = 7470100  # + shard number
BATCH = 500
# No LISTEN/NOTIFY: a NOTIFY serialises every committing transaction (migration 004). The ledger of the process
# running the relay wakes it directly; rows from other processes (another API, an execution worker whose relay
# is a standby) are found by polling the pending-rows index, an empty index scan, this often.
POLL_INTERVAL = 0.02


def stream_of(user_id: str, partitions: int = STREAM_PARTITIONS) -> str:
    return exec_stream(crc32_partition(user_id, partitions))


class OutboxRelay:
    def __init__(self, ledger: Ledger, client: AnyRedis, *, partitions: int = STREAM_PARTITIONS,
                 poll_interval: float = POLL_INTERVAL) -> None:
        """``poll_interval``: how soon rows written by *other* processes are seen (this process's own ledger
        wakes the relay at once through ``Ledger.outbox_hooks``)."""
        self.ledger, self.redis, self.partitions = ledger, client, partitions
        self.poll_interval = poll_interval
        self.published = 0
        self.errors = 0  # failed attempts (Redis or PostgreSQL away); each is retried after a backoff
        # seconds the oldest row of the last batch waited in the outbox (0 once a poll finds none): the lag
        self.lag_seconds = 0.0
        self.leading = [False] * len(ledger.pools)  # per shard: holds the advisory lock (else a standby)
        self._stop = asyncio.Event()
        self._wake = [asyncio.Event() for _ in ledger.pools]
        ledger.outbox_hooks.append(self.wake)

    def wake(self, shard: int) -> None:
        """Outbox rows were committed on ``shard`` (called by the ledger after its transaction)."""
        self._wake[shard].set()

    def stop(self) -> None:
        self._stop.set()
        for event in self._wake:
            event.set()

    async def run(self) -> None:
        # a task group, not gather: if one shard's loop dies, the others stop too, so whoever restarts ``run``
        # does not end up with two loops for the same shard
        async with asyncio.TaskGroup() as group:
            for shard in range(len(self.ledger.pools)):
                group.create_task(self._run_shard(shard), name=f"outbox shard {shard}")

    async def _run_shard(self, shard: int) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                await self._relay(shard)
                backoff = 0.1
            except (asyncpg.PostgresError, asyncpg.InterfaceError, redis.exceptions.RedisError, *UNAVAILABLE) as e:
                # Redis away, or a cluster between a master's death and its replica's promotion (CLUSTERDOWN,
                # uncovered slots): the rows stay unmarked and go in the next attempt
                self.errors += 1
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
            wake = self._wake[shard]
            self.leading[shard] = True
            try:
                while not self._stop.is_set():
                    wake.clear()
                    while await self.drain(conn) == BATCH:
                        pass
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.poll_interval)
            finally:
                self.leading[shard] = False
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK + shard)

    async def drain(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch("SELECT id, user_id, topic, payload, "
                                "extract(epoch FROM clock_timestamp() - created_at)::float8 AS age "
                                "FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1", BATCH)
        if not rows:
            self.lag_seconds = 0.0
            return 0
        self.lag_seconds = max(0.0, float(rows[0]["age"]))
        pipe = self.redis.pipeline(transaction=False)
        for r in rows:
            if r["topic"] == "execution":
                fields = orjson.loads(r["payload"])
                fields["outbox_id"] = r["id"]
                pipe.xadd(stream_of(r["user_id"], self.partitions), fields, maxlen=STREAM_MAXLEN, approximate=True)
            elif r["topic"] == "account":
                # a user's rows are published in id order (one relay per shard), so the key ends at the newest
                frame = account_update_frame(AccountView.of(orjson.loads(r["payload"])))
                pipe.set(account_key(r["user_id"]), frame)
                pipe.spublish(order_channel(r["user_id"]), frame)
            else:
                pipe.spublish(order_channel(r["user_id"]), bytes(r["payload"]))
        await pipe.execute()
        await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                           [r["id"] for r in rows])
        self.published += len(rows)
        return len(rows)
