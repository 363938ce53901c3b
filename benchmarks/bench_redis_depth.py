"""What depth adds to a Redis publisher's round: quotes (with status and trades) vs depth, same books, same moves.

A private redis-server on a free loopback port; ``--symbols`` books of ``--levels`` price levels a side. Each
round one order of every symbol is replaced (its quote and its depth both move), then the round is published
twice, timed apart: ``RedisPublisher.publish_once`` (quote hashes and QuoteBatch per partition) and
``RedisDepthPublisher.publish_once`` (depth keys and DepthBatch per partition). Rounds alternate which goes first.

    python benchmarks/bench_redis_depth.py --symbols 2000 --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from ingest.messages import AddOrder, Message, OrderReplace, StockDirectory
from normalize import Books
from normalize.quote import read_quote
from normalize.replicas.redis import RedisPublisher
from tickfan_proto import stream_pb2 as pb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _directory(locate: int, stock: str) -> StockDirectory:
    return StockDirectory(locate, 0, 1, stock, "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1", "N", 0, "N")


def build(symbols: int, levels: int) -> tuple[Books, dict[int, int]]:
    """Books with ``levels`` levels a side per symbol; returns them and each symbol's first bid order ref."""
    books = Books()
    msgs: list[Message] = []
    first: dict[int, int] = {}
    ref = 1
    for loc in range(1, symbols + 1):
        sym = f"S{loc:05d}"
        msgs.append(_directory(loc, sym))
        first[loc] = ref
        for i in range(levels):
            msgs.append(AddOrder(loc, 0, 2, ref, "B", 100 + i, sym, 1_000_000 - 100 * i))
            msgs.append(AddOrder(loc, 0, 2, ref + 1, "S", 100 + i, sym, 1_000_100 + 100 * i))
            ref += 2
    books.apply_batch(msgs)
    return books, first


async def run(args: argparse.Namespace) -> None:
    port = _free_port()
    workdir = tempfile.mkdtemp()
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    server = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", workdir], stdout=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        books, first = build(args.symbols, args.levels)
        pub = RedisPublisher(books, url)
        for _ in range(50):
            try:
                await pub.redis.ping()
                break
            except Exception:
                await asyncio.sleep(0.1)
        await pub.publish_once()
        await pub.depth_publisher.publish_once()  # the first rounds write everything: not measured
        quotes_ms: list[float] = []
        depth_ms: list[float] = []
        cpu: dict[str, list[float]] = {"quotes": [], "depth": []}  # this process's CPU (not Redis's), ms
        refs = dict(first)
        next_ref = 10_000_000
        for r in range(args.rounds):
            # every symbol's best bid order is replaced by one of a new size: quote and depth both move
            moves: list[Message] = []
            for loc in range(1, args.symbols + 1):
                moves.append(OrderReplace(loc, 0, 3, refs[loc], next_ref, 100 + r + 1, 1_000_000))
                refs[loc] = next_ref
                next_ref += 1
            books.apply_batch(moves)
            order = [("quotes", pub.publish_once), ("depth", pub.depth_publisher.publish_once)]
            if r % 2:
                order.reverse()
            for name, publish in order:
                t0, c0 = time.perf_counter(), time.process_time()
                n = await publish()
                dt = (time.perf_counter() - t0) * 1e3
                cpu[name].append((time.process_time() - c0) * 1e3)
                assert n == args.symbols, (name, n)
                (quotes_ms if name == "quotes" else depth_ms).append(dt)
        q, d = statistics.median(quotes_ms), statistics.median(depth_ms)
        quote_bytes = len(pb.ServerMessage(quotes=pb.QuoteBatch(quotes=[read_quote(books, 1).to_pb()]))
                          .SerializeToString())
        depth_bytes = len(pub.depth_publisher.encode(1))
        print(f"{args.symbols} symbols moved per round, {args.levels} levels a side, {args.rounds} rounds: "
              f"quotes {q:.1f} ms/round ({q * 1e3 / args.symbols:.1f} us/symbol), depth {d:.1f} ms/round "
              f"({d * 1e3 / args.symbols:.1f} us/symbol), depth/quotes {d / q:.2f}; publisher CPU quotes "
              f"{statistics.median(cpu['quotes']):.1f} ms, depth {statistics.median(cpu['depth']):.1f} ms; "
              f"bytes per symbol on the "
              f"channel: quote {quote_bytes}, depth {depth_bytes}")
        await pub.close()
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=2000, help="symbols moved per round (default %(default)s)")
    parser.add_argument("--levels", type=int, default=10, help="price levels a side per book (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=20, help="rounds timed (default %(default)s)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
