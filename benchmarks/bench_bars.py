"""The cost of live bars on the ingest path, one core: decode + book with and without the bar builder.

    .venv/bin/python benchmarks/bench_bars.py [--messages 400000] [--runs 5] [--symbols 10000] [--batch 2000]
    .venv/bin/python benchmarks/bench_bars.py --messages 1500000 --feed-rate 1000000 --print-log 262144 \
        --skip-per-message

The second form is a node's 10x open burst as the bars see it: the clock advances as a 1,000,000 msg/s feed
would and the print log is a node's (``--bars-print-log``, 2**18 prints: about 1.5 s of prints at that rate),
so a busy symbol's minute reaches past the log and every broken trade ('B', 0.3% of the simulator's
messages) has thousands of its symbol's prints in the log.

The simulator's stream is stamped by a clock that advances as a 20,000 msg/s feed would (so 1 s and 1 m bars
open and close as they would live), then built once, untimed, into (a) batches of ``--batch`` length-prefixed
messages for the batched path (``ingest.batch.decode_buffer`` + ``KernelBooks.apply_columns``; with bars:
``trades_since`` -> ``BarBuilder.apply`` with the batch's broken trades) and (b) MoldUDP64 packets for the
per-message path (``FeedSession.on_packet`` + ``Books.apply_batch``; with bars: ``add_print`` per print,
``add_break`` per break). Runs alternate without/with bars on fresh books and builders; each is timed in CPU
seconds of this process (``time.process_time``: the machine is shared), and medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time  # process_time: CPU seconds of this process (the machine is shared)

from ingest.batch import decode_buffer
from ingest.moldudp64 import PacketBuilder
from ingest.session import FeedSession
from normalize import Books
from normalize.bar_types import breaks_from_columns, breaks_from_ring, from_prints
from normalize.bars import BarBuilder
from normalize.kernel import KernelBooks, warm_up
from venue.simulator import ExchangeSimulator

T0 = (9 * 3600 + 30 * 60) * 1_000_000_000  # 09:30, ITCH ns since midnight
FEED_RATE = 20_000  # msg/s the clock pretends the stream arrives at (``--feed-rate``)
CHUNK = 500  # messages the simulator stamps with one clock reading
PRINT_LOG = 1 << 20  # the builder's print log (``--print-log``)


class FeedClock:
    def __init__(self, rate: int) -> None:
        self.now = T0
        self.step = CHUNK * 1_000_000_000 // rate

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def stream(messages: int, symbols: int, rate: int = FEED_RATE) -> tuple[list[bytes], int]:
    """(the simulator's ITCH messages: opening, then ``messages`` more, the clock at the end)."""
    clock = FeedClock(rate)
    sim = ExchangeSimulator(symbols, seed=1, clock=clock)
    out = sim.generate_encoded(symbols * 10)
    while len(out) < symbols * 10 + messages:
        out += sim.generate_encoded(CHUNK)
    return out, clock.now


BARS_SECONDS: list[float] = []  # per batched run with bars: CPU seconds inside the bar calls alone


def run_batched(batches: list[bytes], bars: bool, print_log: int = PRINT_LOG) -> tuple[float, int]:
    books = KernelBooks()
    builder = BarBuilder(print_log=print_log) if bars else None
    cursor = emitted = 0
    inside = 0.0
    clock = time.process_time
    t = clock()
    for data in batches:
        buf, cols, _ = decode_buffer(data)
        books.apply_columns(cols, buf)
        if builder is not None:
            b = clock()
            prints, cursor, _ = books.trades_since(cursor)
            emitted += builder.apply(from_prints(prints), breaks_from_columns(cols)).size
            inside += clock() - b
    if bars:
        BARS_SECONDS.append(inside)
    return clock() - t, emitted


def run_per_message(packets: list[bytes], bars: bool, print_log: int = PRINT_LOG) -> tuple[float, int]:
    session, books = FeedSession(), Books()
    builder = BarBuilder(print_log=print_log) if bars else None
    cursor = bcursor = emitted = 0
    t = time.process_time()
    for p in packets:
        books.apply_batch(session.on_packet(p))
        if builder is not None and books.trades_total != cursor:
            prints, cursor, _ = books.trades_since(cursor)
            add = builder.add_print
            for row in zip(*(c.tolist() for c in from_prints(prints)), strict=True):
                emitted += len(add(*row))
        if builder is not None and books.breaks_total != bcursor:
            breaks, bcursor, _ = books.breaks_since(bcursor)
            for loc, ts, match in zip(*(c.tolist() for c in breaks_from_ring(breaks)), strict=True):
                emitted += len(builder.add_break(loc, ts, match))
    return time.process_time() - t, emitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=400_000, help="messages per run (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="runs per variant; medians are reported")
    parser.add_argument("--symbols", type=int, default=10_000, help="simulated symbols (default %(default)s)")
    parser.add_argument("--batch", type=int, default=2_000, help="messages per batch, batched path")
    parser.add_argument("--skip-per-message", action="store_true", help="time the batched path only")
    parser.add_argument("--feed-rate", type=int, default=FEED_RATE,
                        help="msg/s the stream's clock advances at (default %(default)s)")
    parser.add_argument("--print-log", type=int, default=PRINT_LOG,
                        help="the builder's print log, prints (default %(default)s)")
    args = parser.parse_args()

    raw, end = stream(args.messages, args.symbols, args.feed_rate)
    n = len(raw)
    span = (end - T0) / 1e9
    batches = [b"".join(len(m).to_bytes(2, "big") + m for m in raw[i:i + args.batch])
               for i in range(0, n, args.batch)]
    builder = PacketBuilder("BENCH")
    packets = [p for m in raw if (p := builder.add(m)) is not None]
    tail = builder.flush()
    if tail:
        packets.append(tail)
    breaks = sum(1 for m in raw if m[:1] == b"B")
    print(f"{n:,} messages ({breaks:,} broken trades) over {span:.1f} s of feed time, {args.symbols:,} symbols, "
          f"print log {args.print_log:,}; "
          f"kernels ready in {warm_up():.2f} s", flush=True)

    results: dict[str, list[float]] = {k: [] for k in ("batch", "batch+bars", "msg", "msg+bars")}
    bars_out = {"batch+bars": 0, "msg+bars": 0}
    for run in range(args.runs):
        for bars in (False, True) if run % 2 == 0 else (True, False):  # alternate which goes first
            name = "batch+bars" if bars else "batch"
            secs, emitted = run_batched(batches, bars, args.print_log)
            results[name].append(n / secs)
            if bars:
                bars_out[name] = emitted
            if not args.skip_per_message:
                name = "msg+bars" if bars else "msg"
                secs, emitted = run_per_message(packets, bars, args.print_log)
                results[name].append(n / secs)
                if bars:
                    bars_out[name] = emitted
        print(f"run {run + 1}/{args.runs}: " + "  ".join(f"{k} {v[-1]:,.0f}/s" for k, v in results.items() if v)
              + f"  bar calls alone {BARS_SECONDS[-1] / n * 1e9:,.0f} ns/msg", flush=True)

    med = {k: statistics.median(v) for k, v in results.items() if v}
    print(f"\nmedian of {args.runs} runs (msg/s, one core):")
    for base in ("batch", "msg"):
        if base in med:
            with_bars = med[base + "+bars"]
            cost = (1 / with_bars - 1 / med[base]) * 1e9
            print(f"  {base:>5}: without bars {med[base]:>12,.0f}   with bars {with_bars:>12,.0f}   "
                  f"({with_bars / med[base] - 1:+.1%}, {cost:+.0f} ns/msg; {bars_out[base + '+bars']:,} bars emitted)")
    print(f"  batched, inside the bar calls alone (trades_since + apply): "
          f"{statistics.median(BARS_SECONDS) / n * 1e9:.0f} ns/msg (the rest of the cost is the book kernel "
          "sharing the caches)")


if __name__ == "__main__":
    main()
