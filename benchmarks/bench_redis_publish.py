"""What the Redis publisher costs on one server and on a Redis Cluster: per round, wall time and CPU time of the
publishing process, and the CPU the Redis servers spent.

    PYTHONPATH=<tree> .venv/bin/python benchmarks/bench_redis_publish.py [--symbols 2000] [--moved 1000]
        [--trades 100] [--rounds 200] [--runs 3] [--redis URL ...]

Each round moves ``--moved`` symbols' books (an order added to each) and prints ``--trades`` trades, then times
``RedisPublisher.publish_once`` alone: the quote hashes, the partition channels (SPUBLISH), the trade history
streams and the marks, one non-transactional pipeline (on a cluster split per master). Wall time is the round's
latency; ``process_time`` is the publisher's CPU (encoding and redis-py); the servers' CPU (the masters, and
apart the cluster's replicas, which replay every write and sharded message) is read from /proc/PID/stat.
Without ``--redis`` the script starts its own servers on free loopback ports (a redis-server, and a
3-master/3-replica cluster through scripts/redis-cluster.sh) and alternates the two, run by run, so both see
the same machine; ``--redis URL`` (repeatable) measures given servers (server CPU not
read). The default load is the design's 10,000 tickers x 10 updates/s scaled to one 50 ms round of 2,000
symbols: 1,000 moved quotes (20,000 quotes/s) and 100 prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest.messages import AddOrder, StockDirectory, Trade
from normalize import Books
from normalize.replicas.redis import RedisPublisher

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def free_base() -> int:
    """A base port whose six client ports and their bus ports (+10000) are free."""
    import random

    for _ in range(200):
        base = random.randrange(20_000, 45_000)
        try:
            for port in [*range(base, base + 6), *range(base + 10_000, base + 10_006)]:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


class Servers:
    """A private redis-server and a private Redis Cluster, both on loopback, stopped on exit."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        base = free_base()
        self.single_port = base
        self.single = subprocess.Popen(["redis-server", "--port", str(base), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--protected-mode", "no"],
                                       stdout=subprocess.DEVNULL)
        cluster_base = free_base()
        subprocess.run([str(ROOT / "scripts" / "redis-cluster.sh"), "start", self.dir, str(cluster_base)],
                       check=True, capture_output=True)
        self.cluster_ports = list(range(cluster_base, cluster_base + 6))
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(base), "ping"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)

    def urls(self) -> dict[str, tuple[str, list[int]]]:
        pids = [int(Path(self.dir, str(p), "redis.pid").read_text()) for p in self.cluster_ports]
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.cluster_ports[:3])
        return {"one server": (f"redis://127.0.0.1:{self.single_port}/0", [self.single.pid]),
                "cluster (3 masters)": (f"redis+cluster://{nodes}", pids)}

    def close(self) -> None:
        self.single.terminate()
        self.single.wait()
        subprocess.run([str(ROOT / "scripts" / "redis-cluster.sh"), "stop", self.dir], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


async def run(url: str, pids: list[int], args: argparse.Namespace) -> dict[str, float]:
    books = Books()
    names = [f"B{i:04d}" for i in range(args.symbols)]
    books.apply_batch([StockDirectory(loc, 0, 1, sym, "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1", "N", 0, "N")
                       for loc, sym in enumerate(names, start=1)])
    pub = RedisPublisher(books, url)
    if pids:  # our own servers: each run starts empty (a cluster client flushes every master)
        await pub.redis.flushall()
    await pub.publish_once()  # the directory and every status: not a steady round
    oid = match = 0
    wall: list[float] = []
    cpu: list[float] = []
    masters, replicas = pids[:3], pids[3:]  # the script's first three nodes are the masters
    server_before = (cpu_seconds(masters), cpu_seconds(replicas)) if pids else (0.0, 0.0)
    for r in range(args.rounds):
        batch: list[object] = []
        for k in range(args.moved):
            loc = 1 + (r * args.moved + k) % args.symbols
            oid += 1
            batch.append(AddOrder(loc, 0, 10 + r, oid, "B", 100, names[loc - 1], 1_000_000 + oid % 1000))
        for k in range(args.trades):
            loc = 1 + (r * args.trades + k) % args.symbols
            match += 1
            batch.append(Trade(loc, 0, 10 + r, 0, "B", 100, names[loc - 1], 1_000_000, match))
        books.apply_batch(batch)  # type: ignore[arg-type]
        t0, c0 = time.perf_counter(), time.process_time()
        await pub.publish_once()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    nan = float("nan")
    server = (cpu_seconds(masters) - server_before[0]) / args.rounds if pids else nan
    replica = (cpu_seconds(replicas) - server_before[1]) / args.rounds if replicas else nan
    await pub.close()
    wall.sort()
    return {"wall_ms": statistics.median(wall) * 1e3, "p99_ms": wall[int(len(wall) * 0.99) - 1] * 1e3,
            "cpu_ms": statistics.median(cpu) * 1e3, "server_cpu_ms": server * 1e3,
            "replica_cpu_ms": replica * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=2_000, help="symbols in the books (default %(default)s)")
    parser.add_argument("--moved", type=int, default=1_000, help="symbols moved a round (default %(default)s)")
    parser.add_argument("--trades", type=int, default=100, help="trade prints a round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=200, help="rounds a run (default %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind, alternated (default %(default)s)")
    parser.add_argument("--redis", action="append", default=None, metavar="URL",
                        help="measure this Redis (repeatable; redis+cluster://H:P,H:P for a cluster) instead of "
                             "private servers the script starts")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop our servers on the way out
    servers = None if args.redis else Servers()
    try:
        targets = servers.urls() if servers else {u: (u, []) for u in args.redis}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for i in range(args.runs):
            for name, (url, pids) in targets.items():
                results[name].append(res := asyncio.run(run(url, pids, args)))
                print(f"run {i + 1} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)
        print(f"\nmedians of {args.runs} runs, {args.rounds} rounds of {args.moved} quotes + {args.trades} prints "
              f"({args.symbols} symbols):")
        print("| Redis | round wall median (ms) | round wall p99 (ms) | publisher CPU a round (ms) "
              "| masters' CPU a round (ms) | replicas' CPU a round (ms) |")
        print("|---|---|---|---|---|---|")
        for name, runs in results.items():
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"| {name} | {med['wall_ms']:.2f} | {med['p99_ms']:.2f} | {med['cpu_ms']:.2f} "
                  f"| {med['server_cpu_ms']:.2f} | {med['replica_cpu_ms']:.2f} |")
    finally:
        if servers:
            servers.close()


if __name__ == "__main__":
    main()
