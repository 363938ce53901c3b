"""A datagram's framing check on one core: the compiled walk (``ingest.packets._framed_end``, what
``framing_error`` runs on every ``bytes`` datagram) against the interpreted one (``_framed_end_py``, what it ran
before and still runs on other buffers).

    .venv/bin/python benchmarks/bench_framing.py [--messages 300000] [--runs 5]

The simulator's stream is cut into MoldUDP64 packets (``PacketBuilder``, ~40 messages each), untimed; each run
frames every packet with both walks in turn, timed in CPU seconds of this process (the machine is shared), and
the median ns per message is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ingest.moldudp64 import PacketBuilder
from ingest.packets import _framed_end, _framed_end_py
from venue.simulator import ExchangeSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300_000, help="messages (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="runs; medians are reported")
    args = parser.parse_args()
    sim = ExchangeSimulator(10_000, seed=1)
    raw = sim.generate_encoded(100_000) + sim.generate_encoded(args.messages)
    builder = PacketBuilder("BENCH")
    packets = [p for m in raw if (p := builder.add(m)) is not None]
    counts = [int.from_bytes(p[18:20], "big") for p in packets]
    n = sum(counts)
    assert all(_framed_end(p, c) == len(p) == _framed_end_py(p, c) for p, c in zip(packets, counts, strict=True))
    print(f"{len(packets):,} packets, {n / len(packets):.1f} messages each")
    out: dict[str, list[float]] = {"interpreted": [], "compiled": []}
    for run in range(args.runs):
        for name, walk in (("interpreted", _framed_end_py), ("compiled", _framed_end)):
            t = time.process_time()
            for p, c in zip(packets, counts, strict=True):
                walk(p, c)
            out[name].append((time.process_time() - t) / n * 1e9)
        print(f"run {run + 1}: " + "  ".join(f"{k} {v[-1]:.1f} ns/msg" for k, v in out.items()), flush=True)
    print("median: " + "  ".join(f"{k} {statistics.median(v):.1f} ns/msg" for k, v in out.items()))


if __name__ == "__main__":
    main()
