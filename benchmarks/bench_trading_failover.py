"""How long trading stalls when a Redis Cluster master dies under it, and what the recovery costs.

A real cluster (scripts/redis-cluster.sh: three masters, three replicas, cluster-node-timeout 1000 ms), the
ledger on the local PostgreSQL (two bench shards), the FIX market-maker simulator, one execution worker with its
outbox relay (its default sweep: reconcile every 2 s, orders `accepted` for 5 s re-published), and a fan-out
node's orders relay with one connection per user, all in this process. Orders are placed at ``--rate`` for the
whole run; after ``--before`` seconds the master holding the most execution-stream partitions is SIGKILLed.
Per run:

- promoted: kill -> the cluster lists three masters again (a replica took the slots);
- updates live: kill -> every user's orders channel SSUBSCRIBEd again on its (new) master;
- routing back: kill -> the first order placed after the kill on a dead master's partition is sent on FIX;
- worst routing delay: the longest placed -> sent among orders placed from 1 s before the kill on;
- requeued: orders the sweep published again (their work lost with the master, or late).

Every order is checked filled exactly once and the ledger invariants at the end. Usage:
.venv/bin/python benchmarks/bench_trading_failover.py --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import Any

import asyncpg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from redis.crc import key_slot  # noqa: E402

from fanout.orders import OrderRelay  # noqa: E402
from order_api.db import Ledger, migrate  # noqa: E402
from order_api.execution import ExecutionWorker  # noqa: E402
from order_api.model import OrderRequest, Quote  # noqa: E402
from order_api.outbox import STREAM_PARTITIONS, stream_of  # noqa: E402
from tests.conftest import LocalCluster  # noqa: E402
from venue.marketmaker import MarketMaker, StaticQuoteProvider  # noqa: E402
from vocab.keys import exec_stream, order_channel  # noqa: E402
from vocab.redisconn import open_redis  # noqa: E402

SERVER = "postgresql://postgres@127.0.0.1:5432"
DSNS = [f"{SERVER}/tickfan_bench_fo_0", f"{SERVER}/tickfan_bench_fo_1"]
AAPL = Quote(bid=1_899_900, ask=1_900_100, last=1_900_000, halted=False, stale=False)


class Sink:
    json = False

    def __init__(self) -> None:
        self.live = 0

    def orders_ready(self, live: bool) -> None:
        self.live += live

    def order_frame(self, frame: bytes | str) -> None:
        pass


def master_of(masters: dict[int, str], key: str) -> int:
    slot = key_slot(key.encode())
    for port, ranges in masters.items():
        for r in ranges.split():
            low, _, high = r.partition("-")
            if int(low) <= slot <= int(high or low):
                return port
    raise RuntimeError(f"no master serves slot {slot}")


async def fresh_ledger() -> Ledger:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    for dsn in DSNS:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()
    await migrate(DSNS)
    return await Ledger.connect(DSNS, max_size=10)


async def run_once(rate: float, before: float, after: float) -> dict[str, float]:
    ledger = await fresh_ledger()
    with LocalCluster() as cluster:
        masters = cluster.masters()
        partitions: set[str] = set()
        on: set[int] = set()
        users: list[str] = []
        while len(partitions) < STREAM_PARTITIONS or len(on) < 3:  # every partition, every master's channels
            u = f"fo-{uuid.uuid4().hex[:8]}"
            if stream_of(u) not in partitions or master_of(masters, order_channel(u)) not in on:
                partitions.add(stream_of(u))
                on.add(master_of(masters, order_channel(u)))
                users.append(u)
        for u in users:
            await ledger.deposit(u, 10_000_000 * 10_000)
        mm_quotes = StaticQuoteProvider()
        mm_quotes.set("AAPL", AAPL.bid, 10**6, AAPL.ask, 10**6)
        mm = MarketMaker(mm_quotes, port=0, seed=1, fill_interval=0.002)
        await mm.start()
        client = open_redis(cluster.url)
        worker = ExecutionWorker(ledger, client, fix_port=mm.port, name="bench")
        working = asyncio.create_task(worker.run())
        relay = OrderRelay(cluster.url, reconnect_min=0.05, reconnect_max=0.5, ping_interval=1.0)
        await relay.start()
        sinks = {u: Sink() for u in users}
        for u, s in sinks.items():
            relay.add(u, s)
        placed: list[tuple[str, uuid.UUID]] = []
        stop = asyncio.Event()

        async def place() -> None:
            i = 0
            start = time.monotonic()
            while not stop.is_set():
                u = users[i % len(users)]
                o, _ = await ledger.place(u, OrderRequest("AAPL", "buy", 1, "market", None, "day", uuid.uuid4().hex),
                                          AAPL)
                placed.append((u, o["order_id"]))
                i += 1
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))

        try:
            while not all(s.live for s in sinks.values()):
                await asyncio.sleep(0.05)
            placer = asyncio.create_task(place())
            await asyncio.sleep(before)
            streams = [exec_stream(p) for p in range(STREAM_PARTITIONS)]
            victim = max(masters, key=lambda port: sum(master_of(masters, s) == port for s in streams))
            dead = {s for s in streams if master_of(masters, s) == victim}
            killed_db = await ledger.pools[0].fetchval("SELECT clock_timestamp()")
            killed = time.monotonic()
            cluster.kill_master(victim)
            promoted = live = None
            while time.monotonic() - killed < after:
                now = time.monotonic()
                if promoted is None:
                    now_masters = await asyncio.to_thread(cluster.masters)
                    if victim not in now_masters and len(now_masters) == 3:
                        promoted = now - killed
                if live is None and relay.stats.up and all(s.live >= 2 for s in sinks.values()):
                    live = time.monotonic() - killed
                await asyncio.sleep(0.05)
            stop.set()
            await placer
            deadline = time.monotonic() + 60
            while True:
                rows = [await ledger.get_order(u, oid) for u, oid in placed]
                if all(r is not None and r["status"] == "filled" for r in rows):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("orders not filled within 60 s")
                await asyncio.sleep(0.2)
            back = []
            worst = 0.0
            for r in rows:
                assert r is not None
                if r["created_at"] >= killed_db and stream_of(r["user_id"]) in dead:
                    back.append((r["sent_at"] - killed_db).total_seconds())
                if (r["created_at"] - killed_db).total_seconds() >= -1.0:
                    worst = max(worst, (r["sent_at"] - r["created_at"]).total_seconds())
            fills = {}
            for u, oid in placed:
                fills[oid] = int(await ledger.pool_for(u).fetchval(
                    "SELECT coalesce(sum(qty), 0) FROM executions WHERE order_id = $1", oid))
            problems = await ledger.check()
            assert set(fills.values()) == {1} and not problems, (set(fills.values()), problems[:3])
            assert mm.engine.counters["duplicates"] == 0
            return {"orders": len(placed), "promoted": promoted or float("nan"), "live": live or float("nan"),
                    "routing_back": min(back) if back else float("nan"), "worst_routing": worst,
                    "requeued": worker.counters["requeued"]}
        finally:
            stop.set()
            worker.stop()
            await asyncio.wait_for(working, 10)
            await relay.close()
            await client.aclose()
            await mm.stop()
            await ledger.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs, each on a fresh cluster (default %(default)s)")
    ap.add_argument("--rate", type=float, default=50, help="orders placed per second (default %(default)s)")
    ap.add_argument("--before", type=float, default=3, help="seconds of orders before the kill (default %(default)s)")
    ap.add_argument("--after", type=float, default=10, help="seconds of orders after it (default %(default)s)")
    args = ap.parse_args()
    results: list[dict[str, Any]] = []
    for i in range(args.runs):
        r = asyncio.run(run_once(args.rate, args.before, args.after))
        results.append(r)
        print(f"run {i + 1}: {r['orders']} orders, promoted {r['promoted']:.2f} s, updates live {r['live']:.2f} s, "
              f"routing back {r['routing_back']:.2f} s, worst routing delay {r['worst_routing']:.2f} s, "
              f"requeued {r['requeued']}; every order filled once, ledger invariants hold", flush=True)
    med = {k: statistics.median(r[k] for r in results) for k in ("promoted", "live", "routing_back", "worst_routing")}
    print(f"median of {args.runs}: promoted {med['promoted']:.2f} s, updates live {med['live']:.2f} s, routing back "
          f"{med['routing_back']:.2f} s, worst routing delay {med['worst_routing']:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
