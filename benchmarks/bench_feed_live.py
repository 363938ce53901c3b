"""The feed handler live over loopback: a sustained rate, a burst at the "open", recovery, added latency.

    .venv/bin/python benchmarks/bench_feed_live.py [--rate 100000] [--burst 10@5+5] [--seconds 15]

The simulator runs as its own process (one core) with a rewinder; the feed handler and books run here
(the other core). For each packet the handler applies, latency is measured from the ITCH timestamp the
simulator stamped when it generated the message to the moment the book is updated: an upper bound of what
the handler adds (it includes the simulator's own packing and the kernel's queues). Reports, per phase,
messages applied/s and latency p50/p99, then losses: everything lost to the kernel under the burst must be
recovered from the rewinder (messages_missed 0) for the run to count as lossless.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.handler import open_feeds  # noqa: E402
from ingest.messages import Message  # noqa: E402
from ingest.session import State  # noqa: E402
from normalize import Books  # noqa: E402
from vocab.clock import itch_now, today_eastern  # noqa: E402

DAY = today_eastern()  # the simulator's session date: its stamps count from this date's Eastern midnight


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace) -> int:
    books = Books(session_date=DAY)
    samples_t: list[float] = []
    samples_lat: list[int] = []
    applied: list[tuple[float, int]] = []

    def sink(messages: list[Message]) -> None:
        books.apply_batch(messages)
        now = time.monotonic()
        samples_t.append(now)
        samples_lat.append(itch_now(DAY) - messages[-1].timestamp)
        applied.append((now, len(messages)))

    rewinder = ("127.0.0.1", free_udp_port())
    handler = await open_feeds([("127.0.0.1", 0)], sink, rewinder=rewinder, recovery_timeout=60.0)
    port = handler.lines[0].get_extra_info("sockname")[1]
    cmd = [sys.executable, "-m", "tickfan", "simulate", "--target", f"127.0.0.1:{port}", "--rate", str(args.rate),
           "--symbols", str(args.symbols), "--duration", str(args.seconds), "--rewinder",
           f"{rewinder[0]}:{rewinder[1]}", "--history", str(args.history), "--quiet", "--session-date", DAY.isoformat()]
    if args.burst:
        cmd += ["--burst", args.burst]
    print("simulator:", " ".join(cmd[2:]), flush=True)
    start = time.monotonic()
    sim = await asyncio.create_subprocess_exec(*cmd)
    while sim.returncode is None:
        await asyncio.sleep(1.0)
        c = handler.session.counters
        print(f"  t={time.monotonic() - start:5.1f}s applied {c['messages']:>10,}  gaps {c['gaps']:>5}  "
              f"recovered {c['messages_recovered']:>9,}  state {handler.session.state.value}", flush=True)
        if sim.returncode is None:
            try:
                await asyncio.wait_for(sim.wait(), 0.01)
            except TimeoutError:
                pass
    deadline = time.monotonic() + args.drain
    while handler.session.state is State.RECOVERING and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    handler.close()

    c = handler.session.counters
    total = (handler.session.next_seq or 1) - 1
    t = np.array(samples_t) - start
    lat = np.array(samples_lat) / 1e6
    counts = np.array([n for _, n in applied])
    phases = [("before burst", 0.0, args.burst_start), ("burst", args.burst_start, args.burst_end),
              ("after burst", args.burst_end, args.seconds + args.drain)] if args.burst else [
              ("steady", 0.0, args.seconds)]
    print(f"\nrate {args.rate:,.0f} msg/s, burst {args.burst or 'none'}, {args.seconds:.0f} s, simulator exit "
          f"{sim.returncode}")
    for name, lo, hi in phases:
        sel = (t >= lo) & (t < hi)
        if not sel.any():
            continue
        span = max(min(hi, float(t[sel].max())) - lo, 1e-9)
        print(f"  {name:<13} applied {counts[sel].sum() / span:>10,.0f} msg/s   exchange stamp -> book updated: "
              f"p50 {np.percentile(lat[sel], 50):8.2f} ms  p99 {np.percentile(lat[sel], 99):8.2f} ms")
    print(f"  sequenced {total:,} messages; applied {c['messages']:,}; gaps {c['gaps']}; recovered "
          f"{c['messages_recovered']:,} via {c['requests_sent']} requests; missed {c['messages_missed']}; "
          f"recovery failures {c['recovery_failures']}; final state {handler.session.state.value}")
    lossless = c["messages_missed"] == 0 and c["recovery_failures"] == 0 and c["messages"] == total
    print("  LOSSLESS after recovery" if lossless else "  NOT lossless")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100_000, help="sustained msg/s (default %(default)s)")
    parser.add_argument("--burst", default="10@5+5", help="FACTOR@START+SECONDS, '' for none (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the simulator sends")
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=3_000_000, help="rewinder history in messages")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds allowed to finish recovery after")
    args = parser.parse_args()
    if args.burst:
        factor, rest = args.burst.split("@")
        s0, dur = rest.split("+")
        args.burst_start, args.burst_end = float(s0), float(s0) + float(dur)
    import uvloop

    raise SystemExit(uvloop.run(run(args)))


if __name__ == "__main__":
    main()
