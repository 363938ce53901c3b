"""CPU per subscribe/unsubscribe cycle of one hostile client (issue 10): in process, no sockets.

    .venv/bin/python benchmarks/bench_subscribe_churn.py --runs 5 --compare /path/to/other/tree

One cycle is what an anonymous client can ask inside the message rate limit: subscribe 1,000 symbols on
quotes+depth, then unsubscribe them all. Each message goes through the connection's ``ClientProtocol`` and the
adapter's work on its ``Reply`` (hub subscriptions, the acks encoded, the quotes and depth snapshots built), as
``fanout.server`` does it; the books do not change between cycles, as when the attack runs on a quiet symbol set.
The clock given to the protocol moves one second per message, so no limit refuses a message: this measures
what an accepted cycle costs the node, not the limits.

``--compare TREE`` runs the same script with ``PYTHONPATH=TREE`` (e.g. a checkout of the code before a change)
and with this tree, alternately, ``--runs`` times each, and prints the medians side by side. Only APIs that
both trees have are used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_books(symbols: int, levels: int) -> object:
    from ingest.messages import AddOrder, StockDirectory
    from normalize import Books

    books = Books()
    ref = 0
    for loc in range(1, symbols + 1):
        name = f"S{loc:04d}"
        books.apply(StockDirectory(loc, 0, 1, name, "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1", "N", 0, "N"))
        for level in range(levels):  # a full depth book: every level of both sides is encoded in a snapshot
            for side, price in (("B", 1_000_000 - 100 * level), ("S", 1_000_100 + 100 * level)):
                ref += 1
                books.apply(AddOrder(loc, 0, 2, ref, side, 100 + level, name, price))
    return books


def measure(json_mode: bool, symbols: int, cycles: int, levels: int) -> float:
    """Median CPU seconds per cycle (process time) of one client's subscribe/unsubscribe churn."""
    from google.protobuf import json_format

    from fanout.config import FanoutConfig
    from fanout.hub import Hub, Subscriber
    from fanout.protocol import ClientProtocol, Reply
    from tickfan_proto import stream_pb2 as pb

    books = build_books(symbols, levels)
    hub = Hub(books)  # type: ignore[arg-type]
    sub = Subscriber(1, json=json_mode)
    protocol = ClientProtocol(books.locate_of.get, FanoutConfig(max_symbols=symbols),  # type: ignore[attr-defined]
                              json_mode=json_mode)
    protocol.open()
    names = [f"S{loc:04d}" for loc in range(1, symbols + 1)]
    channels = ["quotes", "depth"]
    if json_mode:
        sub_msg: bytes | str = json.dumps({"subscribe": {"symbols": names, "channels": channels}})
        unsub_msg: bytes | str = json.dumps({"unsubscribe": {"symbols": names, "channels": channels}})
    else:
        sub_msg = pb.ClientMessage(subscribe=pb.Subscribe(symbols=names, channels=channels)).SerializeToString()
        unsub_msg = pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=names, channels=channels)
                                     ).SerializeToString()

    def encode(message: pb.ServerMessage) -> bytes | str:
        if json_mode:
            return str(json_format.MessageToJson(message, indent=None))
        return bytes(message.SerializeToString())

    written = [0]

    def apply(reply: Reply) -> None:  # what fanout.server's adapter does with a Reply
        for channel, locates in reply.unsubscribed.items():
            hub.unsubscribe(sub, channel, locates)
        for channel, locates in reply.subscribed.items():
            hub.subscribe(sub, channel, locates)
        for message in reply.messages:
            written[0] += len(encode(message))
        for channel in ("quotes", "depth"):
            new = reply.subscribed.get(channel)
            if new:
                written[0] += len(hub.snapshot(sub, new, channel))

    now = 0.0
    costs = []
    for _ in range(cycles + 1):
        started = time.process_time()
        for message in (sub_msg, unsub_msg):
            now += 1.0
            reply = protocol.receive(message, now)
            if reply.messages and reply.messages[0].WhichOneof("kind") == "error":
                raise SystemExit(f"refused: {reply.messages[0].error}")
            apply(reply)
        costs.append(time.process_time() - started)
    return statistics.median(costs[1:])  # the first cycle warms the caches of either tree


def one_run(args: argparse.Namespace) -> dict[str, float]:
    return {mode: measure(mode == "json", args.symbols, args.cycles, args.levels) for mode in ("binary", "json")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=1000, help="symbols per subscribe (default %(default)s)")
    parser.add_argument("--levels", type=int, default=10, help="depth levels a side per symbol (default %(default)s)")
    parser.add_argument("--cycles", type=int, default=9, help="measured cycles per run (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="runs (each side with --compare; default %(default)s)")
    parser.add_argument("--compare", type=Path, default=None, metavar="TREE",
                        help="also run with PYTHONPATH=TREE, alternating with this tree")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child run: print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args)))
        return 0
    trees = {"this tree": ROOT}
    if args.compare is not None:
        trees = {f"{args.compare}": args.compare.resolve(), **trees}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    child = [sys.executable, __file__, "--one", "--symbols", str(args.symbols), "--levels", str(args.levels),
             "--cycles", str(args.cycles)]
    for i in range(args.runs):
        for name, tree in trees.items():  # alternate: both trees meet the same machine load
            env = {**os.environ, "PYTHONPATH": str(tree)}
            out = subprocess.run(child, env=env, cwd=tree, check=True, capture_output=True, text=True).stdout
            runs[name].append(json.loads(out))
            print(f"run {i + 1} {name}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in runs[name][-1].items()),
                  flush=True)
    print(f"\nCPU per cycle (subscribe + unsubscribe {args.symbols} symbols on quotes+depth), median of "
          f"{args.runs} runs:")
    for name, results in runs.items():
        print(f"  {name}: " + ", ".join(
            f"{mode} {statistics.median(r[mode] for r in results) * 1e3:.1f} ms" for mode in ("binary", "json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
