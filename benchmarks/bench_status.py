"""The cost of trading status on the ingest path, one core, CPU time (``time.process_time``: the machine is shared).

    PYTHONPATH=<tree> .venv/bin/python benchmarks/bench_status.py [--messages 500000] [--runs 5] [--status]

Both paths, on the simulator's stream: batched (``decode_buffer`` + ``KernelBooks.apply_columns``, 20,000-message
batches) and per message (``FeedSession.on_packet`` + ``Books.apply_batch`` per MoldUDP64 packet). The opening
(the directory, one trading action per symbol, the opening book: 8 messages a symbol) and the stream after it
are timed apart, because the opening holds one status message per symbol and the day after it a few a second.
The script uses only interfaces older than market status, so the same file run against an older tree
(``PYTHONPATH``) measures "before". ``--status`` (trees with ``venue.status`` only) adds the demo's status events,
stamped as a 20,000 msg/s feed would be (a LULD pause every 45 s, another status event every 20 s).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from ingest.batch import decode_buffer
from ingest.moldudp64 import PacketBuilder
from ingest.session import FeedSession
from normalize import Books
from normalize.kernel import KernelBooks, warm_up
from venue.simulator import ExchangeSimulator
from vocab.framing import frame_all

RATE = 20_000
CHUNK = 20_000


def stream(symbols: int, messages: int, seed: int, status: bool) -> tuple[list[bytes], list[bytes]]:
    now = [34_200 * 1_000_000_000]
    kw: dict[str, Any] = {"clock": lambda: now[0]}
    if status:
        from venue.status import DEMO
        kw["status"] = DEMO
    sim = ExchangeSimulator(symbols, seed=seed, **kw)
    opening = sim.generate_encoded(8 * symbols + 3)
    steady: list[bytes] = []
    while len(steady) < messages:
        steady += sim.generate_encoded(2_000)
        now[0] += 2_000 * 1_000_000_000 // RATE
    return opening, steady


def batched(opening: list[bytes], steady: list[bytes]) -> tuple[float, float]:
    books = KernelBooks()
    out = []
    for part in (opening, steady):
        buffers = [frame_all(part[i:i + CHUNK]) for i in range(0, len(part), CHUNK)]
        t = time.process_time()
        for data in buffers:
            buf, cols, _ = decode_buffer(data)
            books.apply_columns(cols, buf)
        out.append(time.process_time() - t)
    return out[0], out[1]


def per_message(opening: list[bytes], steady: list[bytes]) -> tuple[float, float]:
    session, books = FeedSession(), Books()
    builder = PacketBuilder("BENCH")
    out = []
    for part in (opening, steady):
        packets = [p for m in part if (p := builder.add(m)) is not None]
        tail = builder.flush()
        if tail:
            packets.append(tail)
        t = time.process_time()
        for p in packets:
            books.apply_batch(session.on_packet(p))
        out.append(time.process_time() - t)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500_000, help="messages after the opening")
    parser.add_argument("--runs", type=int, default=5, help="runs; medians are reported")
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--status", action="store_true", help="the demo's status events in the stream")
    args = parser.parse_args()
    warm_up()
    rows: dict[str, list[float]] = {k: [] for k in ("b_open", "b_steady", "p_open", "p_steady")}
    for run in range(args.runs):
        opening, steady = stream(args.symbols, args.messages, run + 1, args.status)
        bo, bs = batched(opening, steady)
        po, ps = per_message(opening, steady)
        for k, v in zip(rows, (bo, bs, po, ps), strict=True):
            rows[k].append(v)
        print(f"run {run + 1}/{args.runs}: batched opening {bo * 1e3:.0f} ms, after {len(steady) / bs:,.0f} msg/s; "
              f"per message opening {po * 1e3:.0f} ms, after {len(steady) / ps:,.0f} msg/s", flush=True)
    n = len(steady)
    print(f"\nmedian of {args.runs} runs, {args.symbols:,} symbols ({len(opening):,} opening messages), "
          f"{n:,} after, CPU time:")
    print(f"  batched      opening {statistics.median(rows['b_open']) * 1e3:8.1f} ms   "
          f"after {n / statistics.median(rows['b_steady']):>12,.0f} msg/s")
    print(f"  per message  opening {statistics.median(rows['p_open']) * 1e3:8.1f} ms   "
          f"after {n / statistics.median(rows['p_steady']):>12,.0f} msg/s")


if __name__ == "__main__":
    main()
