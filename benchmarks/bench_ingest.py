"""Ingest-side throughput on one core: simulator generation, MoldUDP64+ITCH decode, book update.

    .venv/bin/python benchmarks/bench_ingest.py [--messages 300000] [--runs 5] [--bars]

Packets are built in memory from the simulator's stream first, so each stage is timed on its own, then
decode + book update together (what the feed handler does per datagram). Prints the median of the runs.
``--bars`` also times decode + book + bars as a node wires them (``BarFeed.pump`` after every packet, the
per-message path of ``tickfan.roles.IngestRole``), alternating with the run without bars, in CPU seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ingest.moldudp64 import PacketBuilder
from ingest.session import FeedSession
from normalize import Books
from normalize.bar_feed import BarFeed
from venue.simulator import ExchangeSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300_000, help="messages per run (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="runs per stage; the median is reported")
    parser.add_argument("--symbols", type=int, default=10_000, help="simulated symbols (default %(default)s)")
    parser.add_argument("--bars", action="store_true", help="also time the path with bars wired (alternating)")
    args = parser.parse_args()

    gen, dec, full = [], [], []
    plain_cpu: list[float] = []
    bars_cpu: list[float] = []
    for run in range(args.runs):
        sim = ExchangeSimulator(args.symbols, seed=run + 1)
        warm = sim.generate_encoded(args.symbols * 10)  # directory and opening book, untimed
        t = time.perf_counter()
        raw = sim.generate_encoded(args.messages)
        gen.append(args.messages / (time.perf_counter() - t))

        builder = PacketBuilder("BENCH")
        packets = [p for m in warm + raw if (p := builder.add(m)) is not None]
        tail = builder.flush()
        if tail:
            packets.append(tail)
        n = len(warm) + len(raw)

        session = FeedSession()
        t = time.perf_counter()
        for p in packets:
            session.on_packet(p)
        dec.append(n / (time.perf_counter() - t))
        assert session.counters["messages"] == n, session.counters

        session, books = FeedSession(), Books(session_date=sim.session_date)  # stamps stored as epoch ns
        t = time.perf_counter()
        for p in packets:
            books.apply_batch(session.on_packet(p))
        full.append(n / (time.perf_counter() - t))
        print(f"run {run + 1}/{args.runs}: generate {gen[-1]:,.0f}/s  decode {dec[-1]:,.0f}/s  "
              f"decode+book {full[-1]:,.0f}/s", flush=True)
        if args.bars:
            for with_bars in ((False, True) if run % 2 == 0 else (True, False)):
                session, books = FeedSession(), Books()
                feed = BarFeed(books) if with_bars else None
                c = time.process_time()
                for p in packets:
                    books.apply_batch(session.on_packet(p))
                    if feed is not None:
                        feed.pump()
                rate = n / (time.process_time() - c)
                (bars_cpu if with_bars else plain_cpu).append(rate)
                print(f"  {'with' if with_bars else 'without'} bars: {rate:,.0f} msg/s (CPU)"
                      + (f"  bars emitted {feed.counters['bars_emitted']:,}" if feed is not None else ""),
                      flush=True)

    print(f"\nmedian of {args.runs} runs, {args.messages:,} messages each, {args.symbols:,} symbols:")
    print(f"  simulator generation (ITCH bytes)      {statistics.median(gen):>12,.0f} msg/s")
    print(f"  MoldUDP64 + ITCH decode (FeedSession)  {statistics.median(dec):>12,.0f} msg/s")
    print(f"  decode + book update                   {statistics.median(full):>12,.0f} msg/s")
    if args.bars:
        without, with_ = statistics.median(plain_cpu), statistics.median(bars_cpu)
        print(f"  decode + book, CPU time, without bars  {without:>12,.0f} msg/s")
        print(f"  decode + book + BarFeed.pump per packet{with_:>12,.0f} msg/s   "
              f"(+{1e9 / with_ - 1e9 / without:,.0f} ns/msg, {100 * (with_ / without - 1):+.0f}%)")


if __name__ == "__main__":
    main()
