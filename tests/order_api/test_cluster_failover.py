"""The trading stack on a real Redis Cluster (three masters, three replicas, ``redis_cluster``): the order API over
HTTP, an execution worker with its outbox relay, the FIX market maker over TCP, and a fan-out orders relay
(the user's order updates), all against real PostgreSQL.

- Orders flow while the masters holding the execution stream partitions are killed, one after the other: every
  accepted order reaches a terminal state once, is routed once (the market maker never sees a ClOrdID twice),
  filled once, the ledger's invariants hold, and each user's order updates resume after the failover.
- The ACL of deploy/redis-acl.conf lets the trading and edge users do their part on a cluster.
- Work the stream lost (a master acknowledged the XADD, then died before its replica had it; here the streams
  and their group deleted after the relay marked the rows published): the sweep publishes it again from the
  ledger, and it is executed once.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis.exceptions
from redis.crc import key_slot

from fanout.order_links import OrderLinks
from order_api.execution import GROUP, read_groups
from order_api.outbox import STREAM_PARTITIONS, stream_of
from tests.conftest import WAIT, LocalCluster, eventually
from venue.marketmaker import Faults
from vocab.keys import account_key, exec_stream, order_channel
from vocab.redisconn import open_redis

from .conftest import ScopedLedger
from .test_api import auth, order
from .test_execution import executions_per_order, market, statuses
from .trading_stack import stack

pytestmark = [pytest.mark.anyio, pytest.mark.ledger(max_size=20), pytest.mark.timeout(120)]

DOLLAR = 10_000
QTY = 2
ACL_FILE = Path(__file__).resolve().parents[2] / "deploy" / "redis-acl.conf"


def master_of(cluster: LocalCluster, key: str) -> int:
    """The port of the master serving ``key``'s slot now."""
    slot = key_slot(key.encode())
    for port, ranges in cluster.masters().items():
        for r in ranges.split():
            low, _, high = r.partition("-")
            if int(low) <= slot <= int(high or low):
                return port
    raise AssertionError(f"no master serves slot {slot}")


def users_everywhere(ledger: ScopedLedger, cluster: LocalCluster) -> list[str]:
    """Users whose work covers every execution stream partition and whose order channels live on every master:
    whichever master dies, some user's work and some user's updates were on it."""
    partitions: set[str] = set()
    masters: set[int] = set()
    users = []
    while len(partitions) < STREAM_PARTITIONS or len(masters) < 3:
        u = ledger.user("fo")
        where = master_of(cluster, order_channel(u))
        if stream_of(u) not in partitions or where not in masters:
            partitions.add(stream_of(u))
            masters.add(where)
            users.append(u)
    return users


async def test_orders_flow_through_master_failovers_and_each_is_routed_and_filled_once(
        ledger: ScopedLedger, redis_cluster: LocalCluster) -> None:
    cluster = redis_cluster
    streams = [exec_stream(p) for p in range(STREAM_PARTITIONS)]
    holders = {master_of(cluster, s) for s in streams}
    assert len(holders) == 3  # the partitions are spread over every master
    async with market(ledger, Faults(latency_ms=20, max_fill_qty=1)) as mm:
        users = users_everywhere(ledger, cluster)
        for u in users:
            await ledger.deposit(u, 100_000 * DOLLAR)
        async with stack(ledger, cluster.url, mm, users) as st:
            http, worker, relay, sinks = st.http, st.worker, st.relay, st.sinks
            assert len(read_groups(worker.redis, worker.streams)) == STREAM_PARTITIONS  # one read per slot
            placed: list[tuple[str, uuid.UUID]] = []
            refused: list[int] = []
            stop = asyncio.Event()

            async def place() -> None:
                """Orders, round robin over the users, until told to stop: placing needs PostgreSQL only."""
                i = 0
                while not stop.is_set():
                    u = users[i % len(users)]
                    r = await http.post("/v1/orders", json=order(qty=QTY, symbol="AAPL" if i % 2 else "MSFT"),
                                        headers=auth(u))
                    if r.status_code == 201:
                        placed.append((u, uuid.UUID(r.json()["order_id"])))
                    else:
                        refused.append(r.status_code)
                    i += 1
                    await asyncio.sleep(0.02)

            placer = asyncio.create_task(place())
            try:
                async def filled(at_least: int) -> bool:
                    done = [s for s, _, _ in await statuses(ledger, list(placed))]
                    return done.count("filled") >= at_least

                await eventually(lambda: filled(8), what="orders filling before the failover")
                # the masters of the two busiest partitions' slots, one after the other, mid-flow
                busiest = sorted(holders, key=lambda port: -sum(master_of(cluster, s) == port for s in streams))
                for k, victim in enumerate(busiest[:2], start=1):
                    before = len(placed)
                    cluster.kill_master(victim)

                    async def promoted(victim: int = victim) -> bool:
                        # redis-cli in a thread: the event loop carries the FIX sessions' heartbeats
                        masters = await asyncio.to_thread(cluster.masters)
                        return victim not in masters and len(masters) == 3

                    def live_again(k: int = k) -> bool:
                        return relay.stats.up and relay.stats.outages >= k and \
                            all(s.ready.count(True) >= k + 1 for s in sinks.values())

                    def more_placed(before: int = before) -> bool:
                        return len(placed) >= before + 8

                    await eventually(promoted, what=f"a replica promoted in place of {victim}", interval=0.2)
                    # the users' updates resume: each told of the outage, then live again on the new master
                    await eventually(live_again, what=f"every user's orders channel live again after failover {k}",
                                     state=lambda: (relay.stats, {u: s.ready for u, s in sinks.items()}))
                    await eventually(more_placed, what="orders placed after the failover")
            finally:
                stop.set()
                await placer
            assert not refused, refused

            async def all_terminal() -> bool:
                return all(s in ("filled", "cancelled", "rejected") for s, _, _ in await statuses(ledger, placed))

            async def open_ones() -> object:
                """What is stuck and why: the open orders' partitions, the worker's counters, the tasks' stacks."""
                stuck = [(stream_of(u), s) for (u, _), s in zip(placed, await statuses(ledger, placed), strict=True)
                         if s[0] not in ("filled", "cancelled", "rejected")]
                stacks = {t.get_name(): [f"{f.f_code.co_name}:{f.f_lineno}" for f in t.get_stack()]
                          for t in asyncio.all_tasks()}
                return stuck, worker.counters, worker.connected, stacks
            await eventually(all_terminal, timeout=60, what="every accepted order terminal", state=open_ones)
            assert {s for s, _, _ in await statuses(ledger, placed)} == {"filled"}
            assert set((await executions_per_order(ledger, placed)).values()) == {QTY}  # filled once, exactly
            # routed once: one NewOrderSingle per order, never a second one under the same ClOrdID
            assert worker.counters["sent"] == len(placed), worker.counters
            assert mm.engine.counters["orders"] == len(placed) and mm.engine.counters["duplicates"] == 0
            assert worker.counters["dead_lettered"] == 0, worker.counters
            assert await ledger.check() == []

            # the users' order updates resumed: an order each user places now is seen filled on its channel (an
            # update published while a channel was down is gone, by design: pub/sub; the client was told
            # orders_unavailable and re-reads GET /v1/orders, so the orders placed mid-failover prove nothing here)
            last: dict[str, str] = {}
            for u in sinks:
                r = await http.post("/v1/orders", json=order(qty=QTY), headers=auth(u))
                assert r.status_code == 201, r.text
                last[u] = str(r.json()["order_id"])

            def seen_filled() -> bool:
                return all(any(x.order_id == last[u] and x.status == "filled" for x in s.updates)
                           for u, s in sinks.items())
            await eventually(seen_filled, what="each user's new order seen filled on its orders channel",
                             state=lambda: {u: [(x.order_id, x.status) for x in s.updates[-3:]]
                                            for u, s in sinks.items()})
            assert all("orders_unavailable" in s.errors for s in sinks.values())  # they were told of the outage


async def test_work_the_stream_lost_is_published_again_and_executed_once(
        ledger: ScopedLedger, redis_cluster: LocalCluster) -> None:
    """A master acknowledged the XADDs (the outbox rows are marked published) and died before its replica had
    them, the group with them: here the streams are deleted under a running worker. PostgreSQL still says the
    orders are ``accepted``; the worker's sweep publishes them again, and each is routed and filled once."""
    async with market(ledger) as mm:
        users = users_everywhere(ledger, redis_cluster)
        for u in users:
            await ledger.deposit(u, 100_000 * DOLLAR)
        await mm.set_down(True)  # the worker cannot route yet: the work waits in the streams
        async with stack(ledger, redis_cluster.url, mm, users) as st:
            http, worker = st.http, st.worker
            placed = []
            for u in users:
                r = await http.post("/v1/orders", json=order(qty=QTY), headers=auth(u))
                assert r.status_code == 201, r.text
                placed.append((u, uuid.UUID(r.json()["order_id"])))

            async def published() -> bool:
                return all([await ledger.pool_for(u).fetchval(
                    "SELECT count(*) FROM outbox WHERE user_id = $1 AND published_at IS NULL", u) == 0
                    for u in users])
            await eventually(published, what="the outbox rows marked published")
            assert worker.relay is not None
            for p in range(STREAM_PARTITIONS):
                assert await worker.redis.delete(exec_stream(p)) == 1  # the entries and the group: gone
            await mm.set_down(False)

            async def all_filled() -> bool:
                return {s for s, _, _ in await statuses(ledger, placed)} == {"filled"}
            await eventually(all_filled, what="the lost work published again and executed",
                             state=lambda: statuses(ledger, placed))
        assert worker.counters["requeued"] >= len(placed)
        assert worker.counters["sent"] == len(placed) and mm.engine.counters["duplicates"] == 0
        assert set((await executions_per_order(ledger, placed)).values()) == {QTY}
        assert await ledger.check() == []


async def test_the_acl_lets_the_trading_and_edge_users_work_on_a_cluster(redis_cluster: LocalCluster) -> None:
    """deploy/redis-acl.conf on every node: the cluster client needs CLUSTER SLOTS and COMMAND (key positions);
    the trading user writes and reads the streams and SPUBLISHes updates, the edge user SSUBSCRIBEs them and may
    not publish one."""
    for line in ACL_FILE.read_text().splitlines():
        rule = line.split()
        if len(rule) > 2 and rule[1] in ("trading", "edge"):
            rule = [f">{rule[1]}-pw" if r.startswith(">") else r for r in rule]
            for port in redis_cluster.ports:
                assert redis_cluster.cli(port, "ACL", "SETUSER", *rule[1:]).strip() == "OK"
    as_user = redis_cluster.url.replace("redis+cluster://", "redis+cluster://{0}:{0}-pw@")
    trading, edge = open_redis(as_user.format("trading")), open_redis(as_user.format("edge"))
    links = OrderLinks(edge)
    try:
        for p in range(STREAM_PARTITIONS):
            await trading.xgroup_create(exec_stream(p), GROUP, id="0", mkstream=True)
            await trading.xadd(exec_stream(p), {"action": "new"})
        for group in read_groups(trading, [exec_stream(p) for p in range(STREAM_PARTITIONS)]):
            assert await trading.xreadgroup(GROUP, "w", dict.fromkeys(group, ">"), count=10)
            assert (await trading.xautoclaim(group[0], GROUP, "w2", 0, "0-0"))[1]  # a dead worker's, taken over
        await links.open()
        await links.subscribe([order_channel("acl")])
        (link,) = links.links()
        assert (await link.get_message(timeout=WAIT))["type"] == "ssubscribe"
        assert await trading.spublish(order_channel("acl"), b"update") == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            await edge.spublish(order_channel("acl"), b"a fake update")
        # the positions snapshot: the outbox relay SETs a user's newest account update, an edge reads it only
        assert await trading.set(account_key("acl"), b"account")
        assert await edge.get(account_key("acl")) == b"account"
        with pytest.raises(redis.exceptions.NoPermissionError):
            await edge.set(account_key("acl"), b"a fake account")
    finally:
        await links.close()
        await trading.aclose()
        await edge.aclose()
