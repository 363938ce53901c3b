"""Decode + book update from a capture file on one core: the batched path (ingest.batch + normalize.kernel).

    .venv/bin/python benchmarks/bench_capture.py [--messages 2000000] [--runs 5] [--symbols 10000]

Writes a capture (2-byte big-endian length + ITCH 5.0 message, as ``tickfan record`` does) of the
simulator's stream to a temporary file (untimed; the simulator's directory and opening book first), then
times, per run, on a fresh ``KernelBooks``: reading the file, framing, field decode and the book kernel.
Prints the median msg/s of the whole and each stage's share of the time. The kernels are compiled (or
loaded from numba's cache) before timing; that one-off cost is printed too. ``--check`` also applies the
same capture to the reference ``normalize.Books`` (slow) and asserts the published arrays are equal.
``--bars`` times, alternating in each run, the batched path as a node wires it: the capture's columns applied
in ``--batch``-message slices, without and with ``BarFeed.pump`` after each slice (CPU seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from ingest.batch import decode_buffer, decode_columns, frame, read_capture
from normalize.bar_feed import BarFeed
from normalize.kernel import KernelBooks, warm_up
from venue.simulator import ExchangeSimulator
from vocab.clock import today_eastern

SESSION_DATE = today_eastern()

PUBLISHED = ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume",
             "exchange_time", "seq", "depth_seq", "halted", "known")


def write_capture(path: str, messages: int, symbols: int, seed: int) -> int:
    sim = ExchangeSimulator(symbols, seed=seed)
    n = 0
    with open(path, "wb") as f:
        left = messages
        while left > 0:
            chunk = sim.generate_encoded(min(left, 200_000))
            f.write(b"".join(len(m).to_bytes(2, "big") + m for m in chunk))
            left -= len(chunk)
            n += len(chunk)
    return n


CPU_SECONDS: list[float] = []  # per timed run: CPU time of the whole run (one thread)


def run_once(path: str) -> tuple[KernelBooks, int, dict[str, float]]:
    # tables start small and double as the book fills (growth is timed too); stamps stored as epoch ns
    books = KernelBooks(session_date=SESSION_DATE)
    c0 = time.process_time()
    t0 = time.perf_counter()
    buf, size = read_capture(path)
    t1 = time.perf_counter()
    offsets, counts = frame(buf, size)
    t2 = time.perf_counter()
    cols = decode_columns(buf, offsets)
    t3 = time.perf_counter()
    books.apply_columns(cols, buf)
    t4 = time.perf_counter()
    CPU_SECONDS.append(time.process_time() - c0)  # on a shared machine wall time counts others' turns too
    return books, counts.messages, {"read": t1 - t0, "frame": t2 - t1, "decode": t3 - t2, "book": t4 - t3}


def batches(path: str, size: int) -> list[bytes]:
    """The capture cut into ``size``-message slices of length-prefixed ITCH (as packets are gathered live)."""
    with open(path, "rb") as f:
        data = f.read()
    out: list[bytes] = []
    i = count = 0
    start = 0
    while i < len(data):
        i += 2 + int.from_bytes(data[i:i + 2], "big")
        count += 1
        if count == size:
            out.append(data[start:i])
            start, count = i, 0
    if start < len(data):
        out.append(data[start:])
    return out


def bars_runs(path: str, n: int, runs: int, size: int) -> None:
    slices = batches(path, size)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for run in range(runs):
        for with_bars in ((False, True) if run % 2 == 0 else (True, False)):
            books = KernelBooks()
            feed = BarFeed(books) if with_bars else None
            c = time.process_time()
            for chunk in slices:
                buf, cols, _ = decode_buffer(chunk)
                books.apply_columns(cols, buf)
                if feed is not None:
                    feed.pump()
            rates[with_bars].append(n / (time.process_time() - c))
            print(f"  batches of {size:,}, {'with' if with_bars else 'without'} bars: {rates[with_bars][-1]:,.0f} "
                  "msg/s (CPU)", flush=True)
    without, with_ = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"batched, {size:,}-message batches, CPU time: without bars {without:,.0f} msg/s, with BarFeed.pump "
          f"{with_:,.0f} msg/s (+{1e9 / with_ - 1e9 / without:,.0f} ns/msg, {100 * (with_ / without - 1):+.0f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2_000_000, help="messages in the capture (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs; medians are reported")
    parser.add_argument("--symbols", type=int, default=10_000, help="simulated symbols (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="also compare with normalize.Books (slow)")
    parser.add_argument("--bars", action="store_true", help="also time batches with bars wired (alternating)")
    parser.add_argument("--batch", type=int, default=2_000, help="messages per batch with --bars (default %(default)s)")
    args = parser.parse_args()

    print(f"compile/load kernels: {warm_up():.2f} s (once per process; cached on disk by numba)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.itch")
        t = time.perf_counter()
        n = write_capture(path, args.messages, args.symbols, args.seed)
        print(f"capture: {n:,} messages, {os.path.getsize(path):,} bytes, written in "
              f"{time.perf_counter() - t:.1f} s (untimed)", flush=True)
        totals: list[float] = []
        stages: dict[str, list[float]] = {}
        books = None
        for run in range(args.runs):
            books, framed, times = run_once(path)
            assert framed == n, (framed, n)
            total = sum(times.values())
            totals.append(total)
            for stage, took in times.items():
                stages.setdefault(stage, []).append(took)
            print(f"run {run + 1}/{args.runs}: {n / total:,.0f} msg/s (CPU time: {n / CPU_SECONDS[-1]:,.0f})  "
                  + "  ".join(f"{k} {v * 1e3:.0f} ms" for k, v in times.items()), flush=True)
        if args.bars:
            bars_runs(path, n, args.runs, args.batch)
        if args.check and books is not None:
            from ingest.capture import iter_messages
            from ingest.itch import decode
            from normalize import Books

            ref = Books(session_date=SESSION_DATE)
            with open(path, "rb") as f:
                ref.apply_batch([decode(m) for m in iter_messages(f)])
            for name in PUBLISHED:
                assert np.array_equal(getattr(ref, name), getattr(books, name)), name
            assert ref.counters == books.counters and ref.trades_total == books.trades_total
            print("check: published arrays, counters and trade count equal normalize.Books")

    med = statistics.median(totals)
    print(f"\nmedian of {args.runs} runs, {n:,} messages, {args.symbols:,} symbols, one core:")
    print(f"  read + frame + decode + book   {n / med:>12,.0f} msg/s   ({med * 1e9 / n:.0f} ns/msg)")
    cpu = statistics.median(CPU_SECONDS)
    print(f"  the same by CPU time           {n / cpu:>12,.0f} msg/s   ({cpu * 1e9 / n:.0f} ns/msg)")
    for stage, runs in stages.items():
        m = statistics.median(runs)
        print(f"  {stage:<6} {m * 1e3:8.1f} ms  {100 * m / med:5.1f}%  ({m * 1e9 / n:5.1f} ns/msg)")


if __name__ == "__main__":
    main()
