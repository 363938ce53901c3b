"""Conflation tiers under load: the same node, feed and clients with every client at full rate, then with a share
of them capped (``Subscribe.max_rate_hz``), interleaved round after round so the machine's noise hits both alike.

    .venv/bin/python benchmarks/bench_tiers.py --clients 1000 --capped 0.5 --max-rate-hz 2 --rounds 3

Each run starts a fresh one-process node (``tickfan node --batched``, as ``bench_peers.py --peers tickfan``
does) fed one pre-generated simulator session over UDP at ``--rate`` ITCH messages/s, connects the clients
(``bench_fanout_load.run_clients``), warms up, measures, and stops everything. Reported per run: frames/s and
updates/s delivered (the capped clients' share on its own), latency, and the node's CPU; then the medians per
mode. ``--json`` prints one JSON line per run as well.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

from bench_fanout_load import LoadResult, raise_nofile, run_clients, watchlists  # noqa: E402
from bench_peers import BUILD, Server  # noqa: E402
from feed import run as run_feed  # noqa: E402


def one_run(args: argparse.Namespace, capped: float) -> LoadResult:
    lo, _, hi = args.watch.partition("-")
    size = (int(lo), int(hi or lo))
    per = [args.clients // args.processes + (1 if i < args.clients % args.processes else 0)
           for i in range(args.processes)]
    watched = {s for i, n in enumerate(per) for wl in watchlists(i, n, args.symbols, size) for s in wl}
    budget = args.connect_timeout + args.warmup + args.seconds + 120
    count = int(math.ceil((args.rate * (args.warmup + args.seconds + 20) + 100_000) / 500_000) * 500_000)
    ctx = mp.get_context("fork")
    go, stop, ready, opened = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    report = ctx.Queue()
    BUILD.mkdir(parents=True, exist_ok=True)
    server = Server("tickfan", args, budget)
    feed = None
    try:
        feed = ctx.Process(target=run_feed, kwargs=dict(
            mode=server.feed_mode, target=server.feed_target, rate=args.rate, idle_rate=0.0, symbols=args.symbols,
            count=count, watched=watched, go=go, stop=stop, report=report, ready=ready, opened=opened,
            rewinder=server.rewinder), daemon=True)
        feed.start()
        deadline = time.monotonic() + 300
        while not opened.is_set():
            if not feed.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the feed did not start")
            time.sleep(0.1)
        time.sleep(1.0)  # the books have every symbol before anyone subscribes
        result = run_clients(server.url, args.clients, args.processes, args.seconds, symbols=args.symbols,
                             size=size, sample=args.sample, warmup=args.warmup, server_pids=server.pids,
                             connect_timeout=args.connect_timeout, on_connected=go.set, progress=False,
                             capped=capped, max_rate_hz=args.max_rate_hz)
        stop.set()
        report.get(timeout=60)
    finally:
        stop.set()
        if feed is not None:
            feed.join(timeout=30)
            if feed.is_alive():
                feed.kill()
                feed.join()
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="connections in all (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default %(default)s)")
    parser.add_argument("--capped", type=float, default=0.5,
                        help="fraction of the clients capped in the second mode (default %(default)s)")
    parser.add_argument("--max-rate-hz", type=float, default=2.0,
                        help="the capped clients' Subscribe.max_rate_hz (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds, interleaved (default %(default)s)")
    parser.add_argument("--rate", type=float, default=100_000, help="feed, ITCH messages/s (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at full rate before measuring")
    parser.add_argument("--symbols", type=int, default=10_000, help="universe size (default %(default)s)")
    parser.add_argument("--watch", default="3-15", help="watchlist size range per client (default %(default)s)")
    parser.add_argument("--sample", type=int, default=4, help="latencies from 1 quotes frame in N")
    parser.add_argument("--flush-ms", type=float, default=50.0, help="the node's --flush-ms (default %(default)s)")
    parser.add_argument("--connect-timeout", type=float, default=300.0, help="seconds to connect every client")
    parser.add_argument("--json", action="store_true", help="also one JSON line per run")
    args = parser.parse_args()
    args.fanout_workers, args.shared_memory, args.plain_ingest = 0, False, False  # what bench_peers.Server reads
    raise_nofile()
    # a node refuses to start without a token key; these clients are anonymous, so any key serves
    if not os.environ.get("TICKFAN_JWT_SECRET"):
        from vocab.auth import new_secret

        os.environ["TICKFAN_JWT_SECRET"] = new_secret()
    runs: dict[str, list[LoadResult]] = {"full": [], "capped": []}
    for r in range(args.rounds):
        for mode, capped in (("full", 0.0), ("capped", args.capped)):
            res = one_run(args, capped)
            runs[mode].append(res)
            label = "all at full rate" if mode == "full" else f"{capped:.0%} at {args.max_rate_hz:g} Hz"
            print(f"\n== round {r + 1}, {label}", flush=True)
            print("\n".join(res.lines()), flush=True)
            if args.json:
                line: dict[str, Any] = {"round": r + 1, "mode": mode, "capped": capped,
                                        "max_rate_hz": args.max_rate_hz, "frames_per_s": res.frames_per_s,
                                        "updates_per_s": res.updates_per_s, "server_cpu": res.server_cpu,
                                        "p50_ms": res.p50_ms, "p99_ms": res.p99_ms, **res.extra}
                print(json.dumps(line), flush=True)
    print("\n== medians")
    for mode, results in runs.items():
        med = {k: statistics.median(getattr(x, k) for x in results)
               for k in ("frames_per_s", "updates_per_s", "server_cpu", "p50_ms", "p99_ms")}
        capped_frames = statistics.median(x.extra.get("capped_frames_per_s", 0.0) for x in results)
        print(f"  {mode:6}: {med['frames_per_s']:>9,.0f} frames/s  {med['updates_per_s']:>9,.0f} updates/s  "
              f"node CPU {med['server_cpu'] * 100:.0f}%  p50 {med['p50_ms']:.1f} ms  p99 {med['p99_ms']:.1f} ms"
              + (f"  (capped clients {capped_frames:,.0f} frames/s)" if capped_frames else ""))


if __name__ == "__main__":
    main()
