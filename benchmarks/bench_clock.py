"""The cost of the one clock on the ingest path: books storing epoch ns against books storing ITCH's stamps.

    .venv/bin/python benchmarks/bench_clock.py --before /path/to/checkout/of/the/commit/before [--runs 9]

Every stored stamp now gets the session's Eastern midnight added (``Books.set_session_date``; one integer add
in Python per update, one in the numba kernel). This times the books of this tree against those of another
checkout (its ``normalize`` package loaded beside ours as ``normalize_before``) in one process, on the same
input, runs alternating (which goes first alternates too), on CPU time (``time.process_time``: the machine is
shared). Paths: per message (``Books.apply_batch`` per packet of messages decoded beforehand: the book update
alone, where the add is) and batched (``KernelBooks.apply_columns`` on columns decoded beforehand). Medians.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ingest.batch import decode_buffer
from ingest.moldudp64 import PacketBuilder
from ingest.session import FeedSession
from normalize import Books
from normalize.kernel import KernelBooks
from normalize.kernel import warm_up as warm_up_after
from venue.simulator import ExchangeSimulator
from vocab.framing import frame_all


def load_before(checkout: Path, into: Path) -> Any:
    """The other checkout's ``normalize`` as package ``normalize_before`` (its relative imports stay inside it)."""
    shutil.copytree(checkout / "normalize", into / "normalize_before",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(into))
    return importlib.import_module("normalize_before")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the tree to compare with")
    parser.add_argument("--messages", type=int, default=300_000, help="messages after the opening book")
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=9, help="runs per variant and path; medians reported")
    args = parser.parse_args()

    sim = ExchangeSimulator(args.symbols, seed=3)
    day = sim.session_date
    raw = sim.generate_encoded(args.symbols * 10) + sim.generate_encoded(args.messages)
    builder = PacketBuilder("BENCH")
    packets = [p for m in raw if (p := builder.add(m)) is not None]
    if (tail := builder.flush()) is not None:
        packets.append(tail)
    session = FeedSession()
    decoded = [session.on_packet(p) for p in packets]
    n = len(raw)
    buf, cols, _ = decode_buffer(frame_all(raw))

    with tempfile.TemporaryDirectory() as tmp:
        before = load_before(args.before, Path(tmp))
        from normalize_before.kernel import KernelBooks as KernelBefore  # type: ignore[import-not-found]
        from normalize_before.kernel import warm_up as warm_up_before

        warm_up_before()
        warm_up_after()

        gc.collect()
        gc.freeze()  # the decoded input is long-lived: keep the collector from walking it inside the timings

        def per_message(books: Any) -> float:
            gc.collect()
            t = time.process_time()
            for msgs in decoded:
                books.apply_batch(msgs)
            return time.process_time() - t

        def batched(books: Any) -> float:
            gc.collect()
            t = time.process_time()
            books.apply_columns(cols, buf)
            return time.process_time() - t

        variants = {
            "per message": (lambda: before.Books(), lambda: Books(session_date=day), per_message),
            "batched": (lambda: KernelBefore(), lambda: KernelBooks(session_date=day), batched),
        }
        results: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in variants}
        for run in range(args.runs):
            for path, (make_before, make_after, timed) in variants.items():
                old, new = results[path]
                order = [(make_before, old), (make_after, new)]
                for make, out in order if run % 2 == 0 else reversed(order):
                    out.append(timed(make()))
            print(f"run {run + 1}/{args.runs}: " + "  ".join(
                f"{path} {n / old[-1]:,.0f} -> {n / new[-1]:,.0f} msg/s" for path, (old, new) in results.items()),
                flush=True)

    print(f"\nmedian of {args.runs} runs, {n:,} messages ({args.messages:,} after the opening), {args.symbols:,} "
          "symbols, CPU time:")
    for path, (old, new) in results.items():
        a, b = statistics.median(old), statistics.median(new)
        print(f"  {path:<12} before {n / a:>12,.0f} msg/s  after {n / b:>12,.0f} msg/s  "
              f"{(b - a) * 1e9 / n:+6.1f} ns/msg ({100 * (b - a) / a:+.1f}%)")


if __name__ == "__main__":
    main()
