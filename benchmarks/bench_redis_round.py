"""The Redis bridge's cost per quote, in isolation: one publish round of M moved symbols, and an edge following it.

    .venv/bin/python benchmarks/bench_redis_round.py --symbols 5000 --rounds 10

Against a private redis-server on a free port (or ``--redis URL``, opened by ``vocab.redisconn``'s rules):

- phase 1, no subscriber: ``--rounds`` times, every one of ``--symbols`` books moves, then
  ``RedisPublisher.publish_once`` writes M ``quote:`` hashes and SPUBLISHes the 16 partition batches; the
  publisher's CPU per round (``time.process_time``, only the publisher runs) and Redis's (INFO);
- phase 2, the same with a ``RedisBooks`` edge in the same process, watching every symbol (so subscribed to
  every partition): the process's CPU per round minus phase 1's is what following M quotes costs an edge.

The capacity model (benchmarks/RESULTS.md, "Capacity model") turns these into quotes/s per publisher core and
per edge core. One process, loopback, bounded by ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_edges import PrivateRedis, redis_counters  # noqa: E402

from ingest.messages import AddOrder, StockDirectory  # noqa: E402
from normalize import MAX_LOCATES, Books  # noqa: E402
from normalize.replicas.redis import RedisBooks, RedisPublisher  # noqa: E402
from venue.simulator import fixed_universe  # noqa: E402


def listed(locate: int, stock: str) -> StockDirectory:
    return StockDirectory(locate, 0, 1, stock, "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1", "N", 0, "N")


async def rounds(url: str, m: int, count: int, with_edge: bool) -> tuple[list[float], list[float], float]:
    """(process CPU s per round, wall s per round, Redis CPU s per round)."""
    books = Books()
    names = fixed_universe(m)
    books.apply_batch([listed(i + 1, s) for i, s in enumerate(names)])
    ref = [0]

    def move_all() -> None:  # every book gets a better bid: its quote moved
        msgs = []
        for i, s in enumerate(names):
            ref[0] += 1
            msgs.append(AddOrder(i + 1, 0, time.time_ns() % 10**13, ref[0], "B", 100, s, 1_000_000 + ref[0]))
        books.apply_batch(msgs)

    pub = RedisPublisher(books, url)  # not started: its own loop would publish between our rounds
    edge = None
    if with_edge:
        watched = np.ones(MAX_LOCATES, np.int32)
        move_all()
        await pub.publish_once()  # the directory and the hashes the edge seeds from
        edge = RedisBooks(url, watched=lambda: watched)
        await edge.start()
        deadline = time.monotonic() + 120
        while edge.counters["seeded"] < m and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    cpu, wall = [], []
    r0 = redis_counters_async_safe(url)
    for _ in range(count):
        move_all()
        applied = edge.counters["quotes_applied"] if edge else 0
        c0, t0 = time.process_time(), time.perf_counter()
        await pub.publish_once()
        if edge is not None:
            deadline = time.monotonic() + 60
            while edge.counters["quotes_applied"] < applied + m and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    r1 = redis_counters_async_safe(url)
    if edge is not None:
        await edge.close()
    await pub.close()
    return cpu, wall, (r1["cpu_s"] - r0["cpu_s"]) / count


def redis_counters_async_safe(url: str) -> dict[str, float]:
    """``redis_counters`` runs its own event loop: run it in a thread from inside ours."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(redis_counters, url).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=5000, help="symbols moved per round, M (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per phase (default %(default)s)")
    parser.add_argument("--redis", default=None, metavar="URL", help="this Redis instead of a private one")
    args = parser.parse_args()
    server = PrivateRedis() if args.redis is None else None
    url = server.url if server is not None else args.redis
    try:
        for with_edge in (False, True):
            cpu, wall, rcpu = asyncio.run(rounds(url, args.symbols, args.rounds, with_edge))
            c, w = statistics.median(cpu), statistics.median(wall)
            what = "publisher + edge" if with_edge else "publisher alone"
            print(f"{what}: {args.symbols:,} quotes per round, median of {args.rounds}: process CPU {c * 1e3:.1f} ms "
                  f"({c / args.symbols * 1e6:.1f} us/quote), wall {w * 1e3:.1f} ms; Redis CPU {rcpu * 1e3:.1f} ms "
                  f"({rcpu / args.symbols * 1e6:.1f} us/quote)", flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
