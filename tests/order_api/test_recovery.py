"""The execution side's recovery paths against real servers (PostgreSQL, a private Redis that stays up, the FIX
market-maker simulator over TCP): a killed worker's pending entry claimed by another (XAUTOCLAIM), work
dead-lettered after its retries, a relay killed between publishing and marking its rows, and two relays on one
shard (the advisory-lock standby). In every one the order is executed exactly once and the ledger stays whole.

"Killed" means one of two things, named in each test: a real ``tickfan execute`` process sent SIGKILL, or an
in-process relay whose database sockets are closed (``Pool.terminate``) and whose task is cancelled in the same
step, so it sends nothing more: no cancel request, no unlock, no mark. A database session blocked on a lock does
not notice its client is gone until the lock is granted (and an autocommit UPDATE would then still commit), so
the tests end such a session with ``pg_terminate_backend``, as the server does once TCP reports the peer dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from typing import Any, cast

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from order_api.db import Ledger
from order_api.execution import DEAD_LETTER, GROUP, ExecutionWorker
from order_api.model import shard_of
from order_api.outbox import RELAY_LOCK, OutboxRelay, stream_of
from tests.conftest import PrivateRedis, eventually, free_port

from .conftest import QUOTES, TEST_DSNS, ScopedLedger
from .test_execution import all_done, executions_per_order, market, market_buy, worker

pytestmark = [pytest.mark.anyio, pytest.mark.ledger(max_size=20)]

DOLLAR = 10_000


async def work_for(client: aioredis.Redis, user: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The execution stream's entries for this user's orders, oldest first."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(stream_of(user)))
    return [(i, f) for i, f in entries if f[b"user_id"] == user.encode()]


async def unpublished(ledger: Ledger, user: str) -> int:
    return int(await ledger.pool_for(user).fetchval(
        "SELECT count(*) FROM outbox WHERE user_id = $1 AND published_at IS NULL", user))


async def end_sessions_blocked_by(conn: asyncpg.Connection) -> int:
    """End the database sessions waiting on a lock this connection holds (their clients were killed)."""
    return len(await conn.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"))


async def blocked_by(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                                    await conn.fetchval("SELECT pg_backend_pid()")))


async def kill_relay(relay_ledger: Ledger, task: asyncio.Task[None]) -> None:
    """Kill an in-process relay as a crash would: its sockets closed and its task gone, in one step (nothing it
    would do on the way out, such as cancelling its query or releasing its advisory lock, reaches the server)."""
    for pool in relay_ledger.pools:
        pool.terminate()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def test_a_killed_workers_pending_entry_is_claimed_by_another_and_executed_once(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    """Killed: a real ``tickfan execute`` process, SIGKILLed while it holds the order's stream entry pending
    (it read the entry and waits for the user's account row, which the test holds locked). Redis stays up, so
    the entry is still there, pending for a dead consumer: a second worker must claim it (XAUTOCLAIM, after
    ``claim_idle_ms``) and execute the order, once."""
    server = private_redis
    client = aioredis.from_url(server.url)
    async with market(ledger) as mm:
        u = ledger.user("claim")
        await ledger.deposit(u, 10_000 * DOLLAR)
        order, _ = await ledger.place(u, market_buy(3), QUOTES["AAPL"])  # its work waits in the outbox
        oid = order["order_id"]
        stream = stream_of(u)
        async with ledger.pool_for(u).acquire() as locker:
            held = locker.transaction()
            await held.start()
            await locker.execute("SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE", u)
            db = [a for d in TEST_DSNS for a in ("--db", d)]
            victim = subprocess.Popen(
                [sys.executable, "-m", "tickfan", "execute", *db, "--redis", server.url, "--market-maker",
                 f"127.0.0.1:{mm.port}", "--name", "victim", "--quiet"], env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                assert victim.stdout is not None and "execution worker victim" in victim.stdout.readline()

                async def victim_holds_it() -> bool:
                    with contextlib.suppress(aioredis.ResponseError):  # the group is not made yet
                        pending = await client.xpending_range(stream, GROUP, "-", "+", 100, consumername="victim")
                        ids = {p["message_id"] for p in pending}
                        return any(i in ids and f[b"order_id"] == str(oid).encode()
                                   for i, f in await work_for(client, u))
                    return False
                await eventually(victim_holds_it, what="the victim read the order's work and holds it pending")
                await eventually(lambda: blocked_by(locker), what="the victim waiting for the account row")
                victim.send_signal(signal.SIGKILL)
                victim.wait(10)
            finally:
                if victim.poll() is None:
                    victim.kill()
                    victim.wait(10)
            assert await end_sessions_blocked_by(locker) >= 1
            await held.rollback()
        assert (await ledger.get_order(u, oid))["status"] == "accepted"  # type: ignore[index]  # never routed
        async with worker(ledger, mm, server, "rescuer") as w:
            await eventually(lambda: all_done(ledger, [(u, oid)]), what="the rescuer executed the order")

            async def nothing_pending() -> bool:
                return int((await client.xpending(stream, GROUP))["pending"]) == 0
            await eventually(nothing_pending, what="every entry acknowledged")
            assert w.counters["claimed"] >= 1
        assert (await ledger.get_order(u, oid))["status"] == "filled"  # type: ignore[index]
        assert await executions_per_order(ledger, [(u, oid)]) == {oid: 3}
        assert w.counters["dead_lettered"] == 0
        assert await ledger.check() == []
    await client.aclose()


async def test_work_that_keeps_failing_is_dead_lettered_with_its_reason_and_nothing_is_lost(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    """A worker whose ledger shards cannot be reached retries the order's work ``max_attempts`` times, then
    moves it to the dead-letter stream with its reason and acknowledges it; the order stays, held, in the
    ledger (the source of truth), and a healthy worker's sweep executes it later, once."""
    server = private_redis
    client = aioredis.from_url(server.url)
    async with market(ledger) as mm:
        u = ledger.user("dead")
        await ledger.deposit(u, 10_000 * DOLLAR)
        order, _ = await ledger.place(u, market_buy(2), QUOTES["MSFT"])
        oid = order["order_id"]
        relay = OutboxRelay(ledger, client, poll_interval=0.05)
        relaying = asyncio.create_task(relay.run())
        await eventually(lambda: _has_work(client, u), what="the order's work in its stream")
        relay.stop()
        await asyncio.wait_for(relaying, 10)

        nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
        broken = Ledger([await asyncpg.create_pool(nowhere, min_size=0) for _ in TEST_DSNS])
        doomed = ExecutionWorker(broken, client, fix_port=mm.port, name="doomed", max_attempts=3, relay=False,
                                 claim_idle_ms=500, reconcile_every=0.3)
        task = asyncio.create_task(doomed.run())
        try:
            async def dead_lettered() -> list[dict[bytes, bytes]]:
                entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(DEAD_LETTER))
                return [f for _, f in entries if orjson.loads(f[b"body"]).get("order_id") == str(oid)]
            await eventually(dead_lettered, what="the order's work dead-lettered")
            (letter,) = await dead_lettered()
            assert letter[b"reason"] == b"retries_exhausted" and letter[b"worker"] == b"doomed"
            assert letter[b"detail"]  # the last error, for the operator
            body: dict[str, Any] = orjson.loads(letter[b"body"])
            assert body["action"] == "new" and body["user_id"] == u and body["stream"] == stream_of(u)
            assert doomed.counters["retries"] >= 3 and doomed.counters["dead_lettered"] >= 1
            assert int((await client.xpending(stream_of(u), GROUP))["pending"]) == 0  # acknowledged, not stuck
            # the reconciliation at logon failed too (no ledger): the FIX session keeper lives on regardless
            assert [t for t in asyncio.all_tasks() if t.get_name() == "fix" and not t.done()]
        finally:
            doomed.stop()
            await asyncio.wait_for(task, 10)
            await broken.close()
        # the ledger never saw the failed attempts: the order is accepted and holds its cash
        row = await ledger.get_order(u, oid)
        assert row is not None and row["status"] == "accepted" and int(row["held"]) > 0
        assert await ledger.check() == []
        async with worker(ledger, mm, server, "healthy") as w:
            await eventually(lambda: all_done(ledger, [(u, oid)]), what="the sweep found and executed the order")
        assert w.counters["requeued"] >= 1
        assert (await ledger.get_order(u, oid))["status"] == "filled"  # type: ignore[index]
        assert await executions_per_order(ledger, [(u, oid)]) == {oid: 2}
        assert await ledger.check() == []
    await client.aclose()


async def test_a_relay_killed_between_publishing_and_marking_publishes_again_and_nothing_is_applied_twice(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    """Killed: an in-process relay (see the module docstring) that has published the order's rows to Redis
    and waits to mark them (the test holds the rows locked). Its rows stay unpublished; the next relay
    publishes them again (at least once: the work is twice in the stream under one outbox id), and the worker
    executes the order once: the re-sent order has the same ClOrdID and fills are applied by ExecID."""
    server = private_redis
    client = aioredis.from_url(server.url)
    async with market(ledger) as mm:
        u = ledger.user("relay")
        await ledger.deposit(u, 10_000 * DOLLAR)
        order, _ = await ledger.place(u, market_buy(3), QUOTES["AAPL"])
        oid = order["order_id"]
        pending = await unpublished(ledger, u)
        assert pending == 4  # the deposit's and the hold's account updates, the order update, the execution work
        async with ledger.pool_for(u).acquire() as locker:
            held = locker.transaction()
            await held.start()
            await locker.execute("SELECT 1 FROM outbox WHERE user_id = $1 AND published_at IS NULL FOR UPDATE", u)
            first = await Ledger.connect(TEST_DSNS, max_size=2)
            relay = OutboxRelay(first, client, poll_interval=0.05)
            task = asyncio.create_task(relay.run())
            await eventually(lambda: _has_work(client, u), what="the first relay published the order's work")
            await eventually(lambda: blocked_by(locker), what="the first relay waiting to mark its rows")
            await kill_relay(first, task)
            assert await end_sessions_blocked_by(locker) >= 1
            await held.rollback()
        assert await unpublished(ledger, u) == pending  # killed before marking: nothing marked
        async with worker(ledger, mm, server, "after") as w:  # its relay publishes the rows again
            await eventually(lambda: all_done(ledger, [(u, oid)]), what="the order executed")
            # the new relay waits (a standby) until the killed one's sessions are gone, then publishes again
            await eventually(lambda: _all_marked(ledger, u), what="the rows published again and marked")
        work = await work_for(client, u)
        first_publish = [f for _, f in work if b"requeued" not in f]
        assert len(first_publish) == 2 and len({f[b"outbox_id"] for f in first_publish}) == 1
        assert await unpublished(ledger, u) == 0
        assert (await ledger.get_order(u, oid))["status"] == "filled"  # type: ignore[index]
        assert await executions_per_order(ledger, [(u, oid)]) == {oid: 3}
        assert w.counters["dead_lettered"] == 0
        assert await ledger.check() == []
    await client.aclose()


async def test_two_relays_on_one_shard_one_publishes_and_the_standby_takes_over_when_it_dies(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    """Two relays (separate processes' worth: separate pools, separate sessions) on the same shards: the one
    holding the shard's advisory lock publishes, the other waits; when the leader is killed (in process, see
    the module docstring: its sessions end, and the lock with them) the standby takes the lock and publishes
    what follows. Every row goes out once, in order."""
    server = private_redis
    client = aioredis.from_url(server.url)
    u = ledger.user("standby")
    shard = shard_of(u, len(ledger.pools))
    await ledger.deposit(u, 10_000 * DOLLAR)
    a_ledger = await Ledger.connect(TEST_DSNS, max_size=2)
    b_ledger = await Ledger.connect(TEST_DSNS, max_size=2)
    a, b = OutboxRelay(a_ledger, client, poll_interval=0.05), OutboxRelay(b_ledger, client, poll_interval=0.05)
    ta = asyncio.create_task(a.run())
    try:
        await eventually(lambda: all(a.leading), what="the first relay leads every shard")
        tb = asyncio.create_task(b.run())
        ids = [(await ledger.place(u, market_buy(1), QUOTES["AAPL"]))[0]["order_id"] for _ in range(3)]
        await eventually(lambda: _all_marked(ledger, u), what="three orders' rows published and marked")
        assert len(await work_for(client, u)) == 3
        assert b.published == 0 and not any(b.leading)
        holders = await ledger.pools[shard].fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            RELAY_LOCK + shard)
        assert holders == 1

        published_by_a = a.published
        await kill_relay(a_ledger, ta)
        await eventually(lambda: b.leading[shard], what="the standby took the shard's lock")
        ids += [(await ledger.place(u, market_buy(1), QUOTES["AAPL"]))[0]["order_id"] for _ in range(2)]
        await eventually(lambda: _all_marked(ledger, u), what="the standby published and marked the next orders")
        assert b.published >= 4 and a.published == published_by_a
        work = await work_for(client, u)
        assert [uuid.UUID(f[b"order_id"].decode()) for _, f in work] == ids  # once each, in order
        outbox_ids = [int(f[b"outbox_id"]) for _, f in work]
        assert outbox_ids == sorted(set(outbox_ids))
        b.stop()
        await asyncio.wait_for(tb, 10)
    finally:
        ta.cancel()
        with contextlib.suppress(BaseException):
            await ta
        b.stop()
        await a_ledger.close()
        await b_ledger.close()
        await client.aclose()
    assert await ledger.check() == []


async def _has_work(client: aioredis.Redis, user: str) -> bool:
    return bool(await work_for(client, user))


async def _all_marked(ledger: Ledger, user: str) -> bool:
    return await unpublished(ledger, user) == 0
