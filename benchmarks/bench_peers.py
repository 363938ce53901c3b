"""Side by side: the same clients, feed and machine against tickfan and established broadcast servers.

    .venv/bin/python benchmarks/bench_peers.py --clients 1000 --rate 100000 --seconds 20
    .venv/bin/python benchmarks/bench_peers.py --peers tickfan,socketify-conflated,floor-conflated --clients 10000
    .venv/bin/python benchmarks/bench_peers.py --peers tickfan --clients 10000 --fanout-workers 1
    .venv/bin/python benchmarks/bench_peers.py --peers tickfan --clients 50000 --fanout-workers 4 --processes 4

Servers (each on 127.0.0.1 only, one at a time, stopped by this script, bounded by --duration):

- ``tickfan``: ``tickfan demo --no-simulator`` fed the ITCH packets over UDP (one process on the batched
  path, or ``--fanout-workers N`` SO_REUSEPORT processes reading books that one ingest worker publishes in
  shared memory). It conflates: per flush, one frame per client with the newest state of what it owes.
- ``nchan``: nginx with Debian's nchan module (``benchmarks/peers/nginx-nchan.conf``): a channel per symbol,
  one HTTP POST per update (pipelined), clients subscribe over WebSocket to their watchlist's channels.
- ``socketify``: uWebSockets pub/sub under Python (``benchmarks/peers/socketify_server.py``): a topic per
  symbol, one ``publish`` per update; uWS writes each subscriber's messages once per loop iteration.
- ``floor``: a plain picows server (``benchmarks/peers/floor_server.py``), one send per update per client.
- ``socketify-conflated``, ``floor-conflated``, ``nchan-conflated``: the same servers behind a conflating
  publisher at tickfan's bound (``--flush-ms``): once per period, each watched symbol that moved is published
  once with its newest quote, so the server makes one ``publish`` (socketify, nchan) or one send per client
  (floor) per symbol per period: the same job tickfan does, as a user choosing a peer would set it up.

The feed (``benchmarks/peers/feed.py``) is one pre-generated simulator session, paced at --rate ITCH
messages/s and stamped at send time. tickfan gets the packets; for the peers the feed applies each packet to
its own books (tickfan's batched kernel) and publishes every watched symbol whose quote moved, as the exact
frame tickfan would send for one quote (``-conflated``: at most once per symbol per ``--flush-ms``). The
clients (``bench_fanout_load.run_clients``) are the same processes for everyone; latency is from the exchange
timestamp in each quote to the client, and an update is fresh when it arrives within ``--fresh-ms`` (500) of
that stamp. Memory per connection is the servers' RSS growth from before the clients connect to the end of
the measurement, over the connections.

The peers install themselves on first use: ``apt-get install -y nginx libnginx-mod-nchan`` (nginx is not
started as a service: policy-rc.d on this machine, and we run our own instance); socketify comes with the
``load`` extra (``pip install -e .[load]``), and when this Python lacks it, a virtualenv under
``build/peers/venv`` gets ``pip install socketify``. Nothing of theirs is committed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

from bench_fanout_load import (  # noqa: E402
    FRESH_MS,
    LoadResult,
    proc_stat,
    process_tree,
    raise_nofile,
    run_clients,
    watchlists,
)
from feed import SESSION, free_port  # noqa: E402
from feed import run as run_feed  # noqa: E402

BUILD = ROOT / "build" / "peers"
VENV = BUILD / "venv"
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
PEERS = ("tickfan", "nchan", "nchan-conflated", "socketify", "socketify-conflated", "floor", "floor-conflated")
CONFLATED = "-conflated"  # a peer's name with this suffix: the same server behind the conflating publisher
MULTICAST = "239.192.77.7"  # tickfan demo's feed group when ingest is a separate process


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# ---------------------------------------------------------------------------------------------- install
def install(peers: list[str]) -> None:
    if "nchan" in peers and not (NCHAN_MODULE.exists() and shutil.which("nginx")):
        print("installing nginx + nchan (apt-get install -y nginx libnginx-mod-nchan) ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-q", "nginx", "libnginx-mod-nchan"], env=env).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "nginx", "libnginx-mod-nchan"], env=env, check=True)
    if "socketify" in peers and socketify_python() is None:
        print(f"installing socketify into {VENV} ...", flush=True)
        BUILD.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "socketify"], check=True)


def socketify_python() -> str | None:
    """The Python to run the socketify server with: this one when it has socketify (the ``load`` extra),
    else ``build/peers/venv``'s once made."""
    import importlib.util

    if importlib.util.find_spec("socketify") is not None:
        return sys.executable
    return str(VENV / "bin" / "python") if (VENV / "bin" / "python").exists() else None


def base_peer(label: str) -> tuple[str, bool]:
    """(the server, whether the feed conflates in front of it) of a peer's name."""
    name = label.removesuffix(CONFLATED)
    if name == "tickfan" and label != name:
        raise SystemExit("tickfan conflates itself: there is no tickfan-conflated")
    return name, label != name


# ---------------------------------------------------------------------------------------------- servers
class Server:
    """One peer server: its processes (each in its own process group), started, waited for, stopped."""

    def __init__(self, name: str, args: argparse.Namespace, duration: float) -> None:
        self.name = name
        self.port = free_port()
        self.procs: list[subprocess.Popen[str]] = []
        self.cmds: list[list[str]] = []
        self.shared: Any = None
        self.rewinder: tuple[str, int] | None = None
        self.log = open(BUILD / f"{name}.log", "w")  # noqa: SIM115
        py = str(ROOT / ".venv" / "bin" / "python")
        tf = str(ROOT / ".venv" / "bin" / "tickfan")
        self.url = f"ws://127.0.0.1:{self.port}/v1/stream"
        self.feed_mode, self.feed_target = "publish", f"ws://127.0.0.1:{self.port}/pub"
        try:
            if name == "tickfan":
                feed_port = free_port(socket_kind_udp())
                self.feed_mode, self.feed_target = "udp", f"127.0.0.1:{feed_port}"
                self.rewinder = ("127.0.0.1", free_port(socket_kind_udp()))
                common = ["--ws", f"127.0.0.1:{self.port}", "--flush-ms", str(args.flush_ms),
                          "--rewinder", f"127.0.0.1:{self.rewinder[1]}", "--recovery-timeout", "10",
                          "--session", SESSION, "--duration", str(int(duration))]
                if args.fanout_workers == 0:
                    # one process: feed, books (batched path) and fan-out in one event loop
                    self._start([tf, "node", "--batched", "--feed", self.feed_target,
                                 "--http", f"127.0.0.1:{free_port()}", *common], "is up")
                elif not args.shared_memory:
                    # N processes on one WebSocket port (SO_REUSEPORT), each reading the feed (multicast on
                    # loopback) into its own books on the batched path: no copy between processes at all
                    self.feed_target = f"{MULTICAST}:{feed_port}"
                    for k in range(args.fanout_workers):
                        http = ["--http", f"127.0.0.1:{free_port()}"] if k == 0 else ["--no-http"]
                        self._start([tf, "node", "--batched", "--feed", self.feed_target, "--reuse-port", *http,
                                     *common], "is up")
                else:
                    # ingest in its own process, publishing books into shared memory; N fan-out processes
                    # on one port (SO_REUSEPORT) read them
                    from normalize.replicas.shm import SharedBookState

                    self.shared = SharedBookState.create(f"tickfan-bench-{os.getpid()}")
                    # the batched engine, as the one-process node has (--plain-ingest: the engine before issue 13)
                    engine = [] if args.plain_ingest else ["--batched"]
                    self._start([tf, "ingest", "--publish", self.shared.name, *engine, "--feed", self.feed_target,
                                 "--rewinder", f"127.0.0.1:{self.rewinder[1]}", "--recovery-timeout", "10",
                                 "--session", SESSION, "--quiet", "--duration", str(int(duration))], "is up")
                    for k in range(args.fanout_workers):
                        http = ["--http", f"127.0.0.1:{free_port()}"] if k == 0 else ["--no-http"]
                        self._start([tf, "node", "--attach", self.shared.name, "--reuse-port", *http, *common],
                                    "is up")
            elif name == "floor":
                self._start([py, str(ROOT / "benchmarks" / "peers" / "floor_server.py"), "--port",
                             str(self.port), "--duration", str(int(duration))], "is up")
            elif name == "socketify":
                server_py = str(ROOT / "benchmarks" / "peers" / "socketify_server.py")
                self._start([socketify_python() or "python3", server_py,
                             "--port", str(self.port), "--duration", str(int(duration))], "is up")
            elif name == "nchan":
                prefix = BUILD / f"nginx-{self.port}"
                prefix.mkdir(parents=True, exist_ok=True)
                template = (ROOT / "benchmarks" / "peers" / "nginx-nchan.conf").read_text()
                nofile = raise_nofile()
                conf = template
                for key, value in {"workers": args.nginx_workers, "nofile": nofile, "connections": nofile - 100,
                                   "prefix": prefix, "port": self.port}.items():
                    conf = conf.replace("{" + key + "}", str(value))
                (prefix / "nginx.conf").write_text(conf)
                self.feed_target = f"nchan://127.0.0.1:{self.port}"
                self.url = f"ws://127.0.0.1:{self.port}/sub/{{symbols}}"
                self._start(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")], "")
            else:
                raise SystemExit(f"unknown peer {name}")
        except BaseException:
            self.stop()
            raise

    @property
    def cmd(self) -> list[str]:
        return [" ".join(c) for c in self.cmds]  # type: ignore[misc]

    def _start(self, cmd: list[str], ready: str) -> None:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                preexec_fn=lambda: (os.setsid(), _die_with_parent()))
        self.procs.append(proc)
        self.cmds.append(cmd)
        if ready:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if ready not in line:
                raise RuntimeError(f"{self.name} did not start: {line!r}; see {self.log.name}")
            # keep reading its output so a chatty server never blocks on a full pipe
            import threading

            threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
            return
        import socket

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {proc.returncode}; see {self.log.name}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} is not listening on {self.port}")

    def pids(self) -> list[int]:
        return [p for proc in self.procs for p in process_tree(proc.pid)]

    def main_pids(self) -> list[int]:
        """The processes to profile: the serving ones, and the ingest worker that feeds them (shared memory)."""
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything of its group left behind
        if self.shared is not None:
            self.shared.close()
            self.shared = None
        self.log.close()


def socket_kind_udp() -> int:
    import socket

    return int(socket.SOCK_DGRAM)


# ---------------------------------------------------------------------------------------------- one run
def peer_period_ms(args: argparse.Namespace) -> float:
    """The conflating publisher's period in front of the -conflated peers: tickfan's bound unless told."""
    return float(args.peer_flush_ms if args.peer_flush_ms is not None else args.flush_ms)


def run_peer(label: str, args: argparse.Namespace) -> tuple[LoadResult, dict[str, Any]]:
    name, conflated = base_peer(label)
    lo, _, hi = args.watch.partition("-")
    size = (int(lo), int(hi or lo))
    per = [args.clients // args.processes + (1 if i < args.clients % args.processes else 0)
           for i in range(args.processes)]
    watched = {s for i, n in enumerate(per) for wl in watchlists(i, n, args.symbols, size) for s in wl}
    budget = args.connect_timeout + args.warmup + args.seconds + 120
    count = int(args.idle_rate * args.connect_timeout + args.rate * (args.warmup + args.seconds + 20) + 100_000)
    count = int(math.ceil(count / 500_000) * 500_000)  # a few sizes only, so the cache is reused
    ctx = mp.get_context("fork")
    go, stop, ready, opened = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    report = ctx.Queue()
    print(f"\n== {label}: {args.clients:,} clients over {args.processes} processes, feed {args.rate:,.0f} msg/s",
          flush=True)
    server = Server(name, args, budget)
    feed = None
    try:
        for c in server.cmd:
            print(f"  server: {c}", flush=True)
        feed = ctx.Process(target=run_feed, kwargs=dict(
            mode=server.feed_mode, target=server.feed_target, rate=args.rate, idle_rate=args.idle_rate,
            symbols=args.symbols, count=count, watched=watched, go=go, stop=stop, report=report, ready=ready,
            opened=opened, rewinder=server.rewinder, conflate_s=peer_period_ms(args) / 1000.0 if conflated else 0.0),
            daemon=True)
        feed.start()
        deadline = time.monotonic() + 300
        while not opened.is_set():
            if not feed.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the feed did not start")
            time.sleep(0.1)
        time.sleep(1.0)  # the books have every symbol before anyone subscribes
        feed_cpu: list[float] = []

        def connected() -> None:
            go.set()
            feed_cpu.append(time.monotonic())

        profilers: list[subprocess.Popen[bytes]] = []

        def profile() -> None:
            if not args.profile:
                return
            for pid in server.main_pids():
                out = BUILD / f"profile-{label}-{args.clients}-{pid}.txt"
                profilers.append(subprocess.Popen(
                    [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--nonblocking", "-r", "50", "-d",
                     str(int(args.seconds)), "--format", "raw", "-o", str(out), "-p", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                print(f"  profiling {pid} into {out}", flush=True)

        try:
            result = run_clients(server.url, args.clients, args.processes, args.seconds, symbols=args.symbols,
                                 size=size, sample=args.sample, warmup=args.warmup, server_pids=server.pids,
                                 connect_timeout=args.connect_timeout, on_connected=connected, on_measure=profile,
                                 fresh_ms=args.fresh_ms)
        finally:
            for prof in profilers:
                try:
                    prof.wait(30)
                except subprocess.TimeoutExpired:
                    prof.kill()
                    prof.wait()
        feed_stat = proc_stat([feed.pid]) if feed.pid else (0.0, 0)
        stop.set()
        counters = report.get(timeout=60)
        counters["feed_cpu_s"] = feed_stat[0]
    finally:
        stop.set()
        if feed is not None:
            feed.join(timeout=30)
            if feed.is_alive():
                feed.kill()
                feed.join()
        server.stop()
    at_rate = counters.get("seconds_at_rate") or 1.0
    counters["feed_msgs_per_s"] = counters.get("messages_at_rate", 0) / at_rate
    counters["feed_updates_per_s"] = counters.get("updates_at_rate", 0) / at_rate
    print("\n".join(result.lines()), flush=True)
    if counters.get("rewinder_requests"):
        print(f"  rewinder: {counters['rewinder_requests']:,} re-requests, {counters['rewinder_resent']:,} "
              "messages re-sent (a receive buffer overflowed)", flush=True)
    print(f"  feed: {counters['feed_msgs_per_s']:,.0f} ITCH msg/s at full rate"
          + (f", {counters['feed_updates_per_s']:,.0f} quote updates/s published"
             + (f" (conflated per {peer_period_ms(args):g} ms)" if conflated else "") if server.feed_mode == "publish"
             else "") + (" (RAN OUT of messages)" if counters.get("ran_out") else ""), flush=True)
    return result, counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated (default %(default)s)")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=None,
                        help="client processes (default: 2, or enough for 15,000 connections each)")
    parser.add_argument("--rate", type=float, default=100_000, help="feed, ITCH messages/s (default %(default)s)")
    parser.add_argument("--idle-rate", type=float, default=0.0,
                        help="feed while clients connect (default %(default)s: the feed starts once all are in)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at full rate before measuring")
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--watch", default="3-15", help="watchlist size range per client (default %(default)s)")
    parser.add_argument("--sample", type=int, default=4, help="latencies from 1 quotes frame in N")
    parser.add_argument("--fanout-workers", default="0",
                        help="tickfan: 0 = one process (feed, batched books and fan-out in one loop); N = N "
                             "processes on one port (SO_REUSEPORT), each with its own books from the multicast "
                             "feed; a comma list (0,2,4) runs each in turn, interleaved (default %(default)s)")
    parser.add_argument("--shared-memory", action="store_true",
                        help="tickfan with --fanout-workers N: one ingest process publishing books in shared "
                             "memory (tickfan demo's layout) instead of each worker reading the feed itself")
    parser.add_argument("--plain-ingest", action="store_true",
                        help="with --shared-memory: the ingest process on the plain (per-message) engine, as "
                             "before issue 13, instead of the batched kernel the one-process node uses")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds: every server (and worker count) once per round, in turn, so a noisy "
                             "machine weighs on each alike; with more than one, a table of medians at the end")
    parser.add_argument("--flush-ms", type=float, default=50.0,
                        help="tickfan's flush interval bound, and the period of the -conflated peers' publisher "
                             "(default %(default)s)")
    parser.add_argument("--peer-flush-ms", type=float, default=None,
                        help="the -conflated peers' publishing period, if not --flush-ms (tickfan's flush is "
                             "adaptive, at once when idle and at most --flush-ms apart when busy; this one is fixed)")
    parser.add_argument("--fresh-ms", type=float, default=FRESH_MS,
                        help="an update delivered within this many ms of its exchange timestamp is fresh "
                             "(default %(default)s)")
    parser.add_argument("--nginx-workers", type=int, default=2, help="nginx worker processes")
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the serving processes while measuring (build/peers/profile-*.txt)")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench" / "peers.jsonl",
                        help="append each run's numbers here (default %(default)s)")
    args = parser.parse_args()
    args.processes = args.processes or max(2, math.ceil(args.clients / 15_000))
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    bases = [base_peer(p)[0] for p in peers]
    raise_nofile()
    # a node refuses to start without a token key; these clients are anonymous, so any key serves
    if not os.environ.get("TICKFAN_JWT_SECRET"):
        from vocab.auth import new_secret

        os.environ["TICKFAN_JWT_SECRET"] = new_secret()
    install(bases)
    BUILD.mkdir(parents=True, exist_ok=True)
    workers = [int(w) for w in str(args.fanout_workers).split(",")]
    # (label, peer, tickfan's worker count): every worker count of tickfan is a server of its own here
    servers = [(name if name != "tickfan" or len(workers) == 1 else f"tickfan/{w}", name, w)
               for name in peers for w in (workers if name == "tickfan" else [0])]
    rows: list[tuple[str, LoadResult, dict[str, Any]]] = []
    for rnd in range(args.repeat):
        for label, name, w in servers:
            args.fanout_workers = w
            if args.repeat > 1:
                print(f"\n-- round {rnd + 1} of {args.repeat}: {label}", flush=True)
            try:
                res, counters = run_peer(name, args)  # name: the peer as given, -conflated or not
            except (RuntimeError, TimeoutError) as exc:
                print(f"  {label} FAILED: {exc}", flush=True)
                continue
            rows.append((label, res, counters))
            args.json.parent.mkdir(parents=True, exist_ok=True)
            with args.json.open("a") as f:
                f.write(json.dumps({"peer": name, "label": label, "fanout_workers": w, "round": rnd,
                                    "conflated": base_peer(name)[1], "flush_ms": args.flush_ms,
                                    "peer_flush_ms": peer_period_ms(args),
                                    "argv": sys.argv[1:], "time": time.time(), **asdict(res),
                                    "feed": counters}) + "\n")
    print_table(rows, [label for label, _, _ in servers])


def _median(values: list[float]) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def print_table(rows: list[tuple[str, LoadResult, dict[str, Any]]], labels: list[str]) -> None:
    """One line per server: the run itself, or the medians of its runs (each column's own median) with the
    number of runs; ratios against the first server."""
    keys = ("connected", "updates_per_s", "fresh_updates_per_s", "frames_per_s", "p50_ms", "p99_ms", "p999_ms",
            "server_cpu", "kb_per_connection")
    table: list[tuple[str, int, dict[str, float]]] = []
    for label in labels:
        runs = [r for n, r, _ in rows if n == label]
        if runs:
            cols = {k: _median([getattr(r, k) for r in runs]) for k in keys}
            # per core the server was given: on a shared machine more processes get more CPU
            cols["per_core"] = _median([r.fresh_updates_per_s / r.server_cpu for r in runs if r.server_cpu > 0])
            table.append((label, len(runs), cols))
    if not table:
        return
    first, _, base = table[0]

    def ratio(value: float, of: float) -> str:
        return f"{value / of:.2f}x" if of == of and of and value == value else "-"

    print(f"\n| server | runs | connected | updates delivered/s | fresh updates/s | frames/s | p50 ms | p99 ms | "
          f"p99.9 ms | server CPU | kB per connection | fresh updates/s per server core | fresh vs {first} | "
          f"p99 vs {first} |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, n, c in table:
        print(f"| {label} | {n} | {c['connected']:,.0f} | {c['updates_per_s']:,.0f} | "
              f"{c['fresh_updates_per_s']:,.0f} | {c['frames_per_s']:,.0f} | {c['p50_ms']:,.1f} | "
              f"{c['p99_ms']:,.1f} | {c['p999_ms']:,.1f} | "
              f"{c['server_cpu'] * 100:.0f}% | {c['kb_per_connection']:,.1f} | {c['per_core']:,.0f} | "
              f"{ratio(c['fresh_updates_per_s'], base['fresh_updates_per_s'])} | "
              f"{ratio(c['p99_ms'], base['p99_ms'])} |")


if __name__ == "__main__":
    main()
