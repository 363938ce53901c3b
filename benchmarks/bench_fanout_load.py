"""Fan-out under many connections: K WebSocket clients in separate processes against a running node.

    .venv/bin/tickfan demo --rate 20000 &          # or any node with a feed
    .venv/bin/python benchmarks/bench_fanout_load.py --clients 1000 --processes 2 --seconds 20

Client processes use picows (the cheapest Python WebSocket client we have), spread their connections over
several 127.0.0.x source addresses so the ephemeral port range is no limit, and subscribe each connection to
a heavy-tailed watchlist (most watch the hot tickers). Every frame is decoded; latency is measured at the
client from each quote's exchange timestamp. Reports client updates/s, frames/s, latency p50/p99/p999, the
node's CPU over the run and its memory per connection (from /proc, when --node-pid is given).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.clock import ns_since_midnight  # noqa: E402
from ingest.simulator import fixed_universe  # noqa: E402
from tickfan_proto import stream_pb2 as pb  # noqa: E402


def watchlist(rng: random.Random, universe: list[str], weights: list[float]) -> list[str]:
    return sorted(set(rng.choices(universe, weights=weights, k=rng.randint(3, 15))))


def client_process(index: int, clients: int, url: str, seconds: float, symbols: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import uvloop
    from picows import WSListener, WSMsgType, ws_connect

    universe = fixed_universe(symbols)
    weights = [1.0 / (r + 1) ** 1.1 for r in range(len(universe))]
    rng = random.Random(index)
    latencies: list[int] = []
    counts = {"frames": 0, "updates": 0, "bytes": 0, "errors": 0, "connected": 0, "closed": 0}
    measuring = [False]

    class Client(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: object) -> None:
            counts["connected"] += 1
            msg = pb.ClientMessage(subscribe=pb.Subscribe(symbols=watchlist(rng, universe, weights)))
            transport.send(WSMsgType.BINARY, msg.SerializeToString())  # type: ignore[attr-defined]

        def on_ws_frame(self, transport: object, frame: object) -> None:
            if not measuring[0]:
                return
            data = frame.get_payload_as_bytes()  # type: ignore[attr-defined]
            m = pb.ServerMessage.FromString(data)
            kind = m.WhichOneof("kind")
            if kind == "quotes":
                now = ns_since_midnight()
                counts["frames"] += 1
                counts["bytes"] += len(data)
                counts["updates"] += len(m.quotes.quotes)
                if counts["frames"] % 4 == 0:  # sample: decoding is the client's cost, not the server's
                    latencies.extend(now - q.exchange_time_ns for q in m.quotes.quotes)
            elif kind == "error":
                counts["errors"] += 1

        def on_ws_disconnected(self, transport: object) -> None:
            counts["closed"] += 1

    async def main() -> None:
        host = url.split("//", 1)[1].split(":", 1)[0]
        for i in range(clients):
            source = f"127.0.0.{2 + (index * clients + i) // 20_000 % 250}" if host.startswith("127.") else None
            try:
                await ws_connect(Client, url, local_addr=(source, 0) if source else None)
            except OSError:
                counts["errors"] += 1
        await asyncio.sleep(2.0)  # snapshots settle
        measuring[0] = True
        await asyncio.sleep(seconds)
        measuring[0] = False

    uvloop.run(main())
    out.put((counts, latencies))


def proc_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8765/v1/stream")
    parser.add_argument("--clients", type=int, default=1000, help="connections in all (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds (default %(default)s)")
    parser.add_argument("--symbols", type=int, default=10_000, help="universe size the node serves")
    parser.add_argument("--node-pid", type=int, default=None, help="node process, for its CPU and memory")
    args = parser.parse_args()
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    per = args.clients // args.processes
    before = proc_stat(args.node_pid) if args.node_pid else None
    procs = [mp.Process(target=client_process, args=(i, per, args.url, args.seconds, args.symbols, out))
             for i in range(args.processes)]
    for p in procs:
        p.start()
    time.sleep(2.0 + per / 2000)
    mid = proc_stat(args.node_pid) if args.node_pid else None
    results = [out.get(timeout=args.seconds + 600) for _ in procs]
    after = proc_stat(args.node_pid) if args.node_pid else None
    for p in procs:
        p.join()
    total = {k: sum(r[0][k] for r in results) for k in results[0][0]}
    lat = np.concatenate([np.array(r[1], dtype=np.int64) for r in results]) / 1e6
    print(f"{total['connected']:,} connected ({total['errors']} errors, {total['closed']} closed) over "
          f"{args.processes} processes, {args.seconds:.0f} s measured")
    print(f"  client updates delivered {total['updates'] / args.seconds:>12,.0f} /s")
    print(f"  frames                   {total['frames'] / args.seconds:>12,.0f} /s   "
          f"({total['bytes'] / args.seconds / 1e6:,.1f} MB/s)")
    if len(lat):
        p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
        print(f"  latency exchange -> client: p50 {p50:.1f} ms  p99 {p99:.1f} ms  p99.9 {p999:.1f} ms "
              f"({len(lat):,} samples)")
    if before and mid and after:
        print(f"  node CPU {(after[0] - mid[0]) / args.seconds * 100:.0f}% of a core while measuring; "
              f"memory {after[1] / 1e6:,.0f} MB, {(after[1] - before[1]) / max(total['connected'], 1) / 1e3:,.1f} kB "
              "per connection")


if __name__ == "__main__":
    main()
