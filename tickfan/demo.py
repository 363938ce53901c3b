"""``tickfan demo``: the whole market-data path on localhost in one command.

Starts a node (feed handler, books, snapshot HTTP, fan-out) in this process, then the exchange simulator
as a child process sending ITCH 5.0 in MoldUDP64 over UDP to the node. The node binds first so that it
sees the simulator's stock directory from the very first packet. Ctrl-C, SIGTERM or ``--duration`` stop
both; the child also dies with us if we are killed outright (PR_SET_PDEATHSIG), so nothing is orphaned.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile

from normalize.replicas.shm import SharedBookState
from tickfan.health import database_check
from tickfan.metrics_orders import order_service_collectors
from tickfan.metrics_share import SharedMetrics
from tickfan.node import (
    Node,
    add_node_arguments,
    node_config,
    print_endpoints,
    run_until_stopped,
    stream_limit_flags,
)
from tickfan.procs import ChildFailed, Children, fanout_workers, tickfan_command, usable_cores, workers_arg
from tickfan.simulate import add_status_arguments, status_config, status_flags
from tickfan.trading import TradingStack, add_trading_arguments, trading_unavailable
from vocab.clock import today_eastern


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_node_arguments(parser)
    parser.add_argument("--rate", type=float, default=20_000,
                        help="simulated feed rate in ITCH messages/s (default %(default)s)")
    parser.add_argument("--symbols", type=int, default=10_000,
                        help="number of simulated symbols (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="simulator random seed (default %(default)s)")
    parser.add_argument("--partitions", type=int, default=None, metavar="N",
                        help="run ingest as N worker processes by symbol partition (hot symbols alone, see --hot), "
                             "their books shared with this node through shared memory; the feed becomes "
                             "multicast on --interface")
    parser.add_argument("--fanout-workers", type=_workers, default=1, metavar="N|auto",
                        help="fan-out processes sharing the WebSocket port (SO_REUSEPORT), all reading the books "
                             "from shared memory (ingest then runs in a process of its own); auto: one "
                             "per core this process may use (default %(default)s: feed, books and fan-out in one "
                             "process); the choice is printed at start")
    parser.add_argument("--hot", default=None, metavar="SYM,SYM",
                        help="with --partitions: symbols that get a worker each (default TSLA,NVDA,AAPL, at most "
                             "half the partitions)")
    parser.add_argument("--no-simulator", action="store_true",
                        help="listen to an outside feed (--feed, --rewinder, --snapshot) instead of starting the "
                             "built-in simulator")
    add_status_arguments(parser)
    add_trading_arguments(parser)
    parser.add_argument("--no-rewinder", action="store_true",
                        help="run without recovery services (by default the simulator serves MoldUDP64 "
                             "re-requests on UDP and book snapshots on TCP, both on the first feed port + 1, "
                             "and the node recovers gaps and rebuilds stale books from them)")


def _workers(text: str) -> int | None:
    try:
        return workers_arg(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def simulator_command(args: argparse.Namespace) -> list[str]:
    cmd = tickfan_command("simulate")
    for host, port in args.feed:
        cmd += ["--target", f"{host}:{port}"]
    if args.rewinder is not None:
        cmd += ["--rewinder", f"{args.rewinder[0]}:{args.rewinder[1]}"]
    if args.snapshot is not None:
        cmd += ["--snapshot", f"{args.snapshot[0]}:{args.snapshot[1]}"]
    cmd += ["--rate", str(args.rate), "--symbols", str(args.symbols), "--seed", str(args.seed), "--quiet",
            "--interface", args.interface, "--session-date", args.session_date.isoformat(), *status_flags(args)]
    if args.session:
        cmd += ["--session", args.session]
    if args.duration is not None:
        cmd += ["--duration", str(args.duration + 5)]  # outlive the node a little; we stop it ourselves
    return cmd


async def _main(args: argparse.Namespace) -> int:
    try:
        status_config(args)  # the simulator child would refuse it: say so here, before anything starts
    except ValueError as exc:
        print(f"tickfan demo: {exc}", file=sys.stderr)
        return 2
    args.feed = args.feed or [("127.0.0.1", 30001)]
    if not args.no_simulator:
        # the simulator's own session, from its own address only: the feed trusts nothing else
        args.session = args.session or SIMULATOR_SESSION
        args.feed_sources = args.feed_sources or [(args.interface, None)]
        # one date for the simulator's stamps and every book's clock, even if the demo starts at midnight
        args.session_date = args.session_date or today_eastern()
    if not args.no_rewinder and not args.no_simulator:
        # the simulator's recovery services, next to the first line: UDP re-requests and TCP snapshots
        args.rewinder = args.rewinder or ("127.0.0.1", args.feed[0][1] + 1)
        args.snapshot = args.snapshot or ("127.0.0.1", args.feed[0][1] + 1)
    shared: SharedBookState | None = None
    children = Children()  # ingest workers, extra fan-out workers, the simulator
    # every child writes its metrics here; the node serves them on its /metrics beside its own
    args.metrics_dir = tempfile.mkdtemp(prefix="tickfan-metrics-")
    try:
        return await _run(args, children, shared)
    finally:
        shutil.rmtree(args.metrics_dir, ignore_errors=True)


async def _run(args: argparse.Namespace, children: Children, shared: SharedBookState | None) -> int:
    workers = fanouts = 0
    auto = args.fanout_workers is None
    args.fanout_workers, why = fanout_workers(args.fanout_workers, usable_cores())
    if args.fanout_workers > 1 and not args.partitions:
        args.partitions = 1  # several fan-out processes read books from shared memory: ingest publishes there
    if args.partitions:
        # Partitioned ingest: every worker must see every packet, so the feed goes out as multicast on
        # loopback; the workers publish their books into one shared-memory block this node serves.
        shared = SharedBookState.create(f"tickfan-{os.getpid()}")
        port = args.feed[0][1]
        args.feed = [(MULTICAST_GROUP, port)]
        try:
            workers = start_workers(children, args, shared.name)
        except ChildFailed as exc:
            print(f"tickfan demo: {exc}", file=sys.stderr)
            children.stop_all()
            shared.close()
            return 1
        args.attach = shared.name
    if not args.no_trading:
        # the market data runs without PostgreSQL and Redis: where they cannot be had, trading is off, said once
        trading_off = await trading_unavailable(args)
        if trading_off is not None:
            print(f"tickfan demo: trading is off: {trading_off}. Market data runs alone. To trade, start PostgreSQL "
                  f"and Redis (`make services`, i.e. scripts/ensure-services.sh) or point --db/--trading-redis "
                  f"($TICKFAN_DATABASE_URLS/$TICKFAN_TRADING_REDIS) at running ones; --no-trading silences this.",
                  file=sys.stderr, flush=True)
            args.no_trading = True
    if not args.no_trading:
        # the node and its extra fan-out workers serve the `orders` channel from the same Redis
        args.orders_redis = args.trading_redis
    if args.fanout_workers > 1:
        args.reuse_port = True
        try:
            fanouts = start_fanout_workers(children, args, shared.name if shared else "", args.fanout_workers - 1)
        except ChildFailed as exc:
            print(f"tickfan demo: {exc}", file=sys.stderr)
            children.stop_all()
            if shared is not None:
                shared.close()
            return 1
    node = Node(node_config(args))
    trading = None if args.no_trading else TradingStack(args)
    try:
        if trading is not None:
            # The order API is served by the node, beside the snapshots, reading quotes from its books.
            service = await trading.prepare(node.books)
            node.extra_routes = service.routes()
            # the order path (placements, refusals, the relay, the scheduled ledger check) on the node's /metrics
            node.extra_collectors = order_service_collectors(service)
            if node.health is not None:
                ledger = service.services.ledger
                node.health.add("database", database_check(lambda: ledger.pools))
        node.extra_collectors = [*node.extra_collectors, SharedMetrics(args.metrics_dir)]
        await node.start()
        if trading is not None:
            await trading.start(args.http)
    except (OSError, RuntimeError) as exc:
        print(f"tickfan demo: cannot start: {exc}", file=sys.stderr)
        if trading is not None:
            await trading.close()
        children.stop_all()
        if shared is not None:
            shared.close()
        return 1
    if args.no_simulator:
        print("tickfan demo is up, listening to an outside feed", flush=True)
    else:
        children.start("simulator", simulator_command(args))
        print(f"tickfan demo is up: {args.symbols:,} simulated symbols at {args.rate:,.0f} msg/s", flush=True)
    print_endpoints(node)
    if workers:
        pmap = node_config(args).partition
        print(f"  ingest: {workers} worker processes ({pmap[0].describe() if pmap else ''}), "
              f"books in shared memory {shared.name if shared else ''}", flush=True)
    if fanouts or auto:  # said after the ready line: whoever waits for it reads that line first
        shared_port = " share the WebSocket port" if fanouts else ""
        print(f"  fan-out: {fanouts + 1} process{'es' if fanouts else ''}{shared_port} ({why})", flush=True)
    if trading is not None:
        seeded = f" (seeded {', '.join(trading.seeded)} with $100,000)" if trading.seeded else ""
        print(f"  order API                          http://{args.http[0]}:{args.http[1]}/v1/orders{seeded}",
              flush=True)
        print("  try:  tickfan trade alice buy AAPL 10", flush=True)
    print("  try:  tickfan watch AAPL TSLA NVDA      (Ctrl-C stops the demo)", flush=True)
    failed = False

    def check_children() -> None:
        nonlocal failed
        problem = children.failed() or (trading.failed() if trading is not None else None)
        if problem and not failed:
            failed = True
            print(f"\ntickfan demo: {problem}", file=sys.stderr)

    try:
        await run_until_stopped(node, duration=args.duration, quiet=args.quiet, on_tick=check_children)
    finally:
        children.stop_all()  # the simulator first (started last), then the workers
        if trading is not None:
            await trading.close()
        await node.close()
        if shared is not None:
            shared.close()
    return 1 if failed else 0


MULTICAST_GROUP = "239.192.77.7"
SIMULATOR_SESSION = "TICKFAN001"  # ``tickfan simulate``'s default session


def start_workers(children: Children, args: argparse.Namespace, shm_name: str) -> int:
    """One ``tickfan ingest --publish`` process per partition; returns once each is listening."""
    for k in range(args.partitions):
        cmd = tickfan_command("ingest", "--publish", shm_name, "--partitions", str(args.partitions),
                              "--partition", str(k), "--interface", args.interface, "--quiet",
                              "--metrics-dir", args.metrics_dir, "--metrics-name", f"ingest-{k}")
        if args.hot:
            cmd += ["--hot", args.hot]
        if args.session:
            cmd += ["--session", args.session]
        if args.session_date is not None:
            cmd += ["--session-date", args.session_date.isoformat()]
        for host, port in args.feed_sources or []:
            cmd += ["--feed-source", host if port is None else f"{host}:{port}"]
        for host, port in args.feed:
            cmd += ["--feed", f"{host}:{port}"]
        if args.rewinder:
            cmd += ["--rewinder", f"{args.rewinder[0]}:{args.rewinder[1]}"]
        if args.snapshot:
            cmd += ["--snapshot", f"{args.snapshot[0]}:{args.snapshot[1]}"]
        if getattr(args, "plain", False):
            cmd.append("--plain")  # the workers run the engine the demo was asked for (batched by default)
        children.start(f"ingest worker {k}", cmd, wait_ready=True)  # up once its feed sockets are bound
    return int(args.partitions)


def start_fanout_workers(children: Children, args: argparse.Namespace, shm_name: str, count: int) -> int:
    """Extra fan-out processes on the same WebSocket port (SO_REUSEPORT), reading the shared books."""
    for k in range(count):
        cmd = tickfan_command("node", "--attach", shm_name, "--reuse-port", "--no-http",
                              "--ws", f"{args.ws[0]}:{args.ws[1]}", "--flush-ms", str(args.flush_ms), "--quiet",
                              "--metrics-dir", args.metrics_dir, "--metrics-name", f"fanout-{k + 1}",
                              *(["--orders-redis", args.orders_redis] if getattr(args, "orders_redis", None) else []),
                              *stream_limit_flags(args))
        children.start(f"fan-out worker {k + 1}", cmd, wait_ready=True)
    return count


def main(args: argparse.Namespace) -> int:
    import uvloop

    from tickfan.devkey import DevKeyError, use_dev_key

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        # no TICKFAN_JWT_SECRET: this machine's development key, made once; our children inherit it
        dev_key = use_dev_key(create=True)
    except (DevKeyError, OSError) as exc:
        print(f"tickfan demo: {exc}", file=sys.stderr)
        return 2
    if dev_key is not None:
        print(f"tickfan demo: TICKFAN_JWT_SECRET is not set: signing tokens with this machine's development key "
              f"{dev_key} (never in production)", flush=True)
    return uvloop.run(_main(args))
