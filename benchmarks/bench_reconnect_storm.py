"""A reconnect storm: the clients of a killed fan-out node all come back at once, on the surviving node.

    .venv/bin/python benchmarks/bench_reconnect_storm.py --clients 10000 --mode both --runs 3
    .venv/bin/python benchmarks/bench_reconnect_storm.py --clients 10000 --mode both --runs 3 --limits ip,node

Each run, on loopback: a private redis-server, a publisher (``tickfan demo --redis``, no trading) and two edges
(``tickfan node --from-redis``, A and B, sharing ``TICKFAN_RESUME_SECRET``). ``--own`` clients of B subscribe to
the hot tickers and sample their quotes' latency (exchange time to client) the whole run. ``--clients`` storm
clients connect to A (spread over ``--sources`` 127.0.0.x addresses, as many homes behind distinct IPs would be),
subscribe a heavy-tailed watchlist of quotes and keep their resume token. Then A is SIGKILLed and every storm
client reconnects to B and sends ``Subscribe{resume_token}``; it is back when B's quote ``snapshot`` arrives.

Modes: ``immediate`` (no backoff: the first attempt at once, a refused one again 0.1 s later, like a naive
client) and ``jitter`` (the SDK's full-jitter exponential backoff: before attempt n a uniform delay in
[0, min(--max-ms, --initial-ms * 2^n)], attempt 0 included, as ``clients/js`` does after a drop).
``--limits`` names B's admission cases, run in turn: ``off`` (the defaults: loopback is exempt from per-address
limits), ``ip`` (``--limit-loopback``: 20 new connections/s per address, burst 50, 200 open per address; past
them 429), ``node`` (``--connection-rate``, ``--node-rate`` new connections a second from everyone; past it 503
``server_busy``). A refused client backs off as its mode says.

Reported per run: seconds from the kill until 50%, 99% and 100% of the storm clients have fresh snapshots, the
refusals seen (HTTP 429/503) and other failed attempts, and B's own clients' latency p50/p99 before (5 s before
the kill), during (the kill until 100% are back) and after (the next 5 s). Bounded: ``--clients`` at most
50,000, every run at most ``--deadline`` seconds after the kill; all processes are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_fanout_load import raise_nofile, watchlists  # noqa: E402
from tickfan_proto import stream_pb2 as pb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MAX_CLIENTS = 50_000
CONNECT_CONCURRENCY = 64  # handshakes in flight per process while the storm clients first connect to A
HOT = ["TSLA", "NVDA", "AAPL", "AMZN", "MSFT"]
SNAPSHOT_TAG = 0x0A  # ServerMessage.snapshot, field 1, length-delimited
QUOTES_TAG = 0x12
SUBSCRIBED_TAG = 0x3A  # ServerMessage.subscribed, field 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------ client side
def storm_process(index: int, clients: int, per_process: int, url_a: str, url_b: str, symbols: int, sources: int,
                  mode: str, initial_ms: float, max_ms: float, connected_q: Any, kill_at: Any, out: Any,
                  deadline: float) -> None:
    """``clients`` connections: to A first; after A dies, each to B with its resume token (see the docstring)."""
    import uvloop
    from picows import WSListener, WSMsgType, ws_connect

    raise_nofile()
    lists = watchlists(index, clients, symbols, (3, 15))
    tokens = [""] * clients
    fresh = [float("nan")] * clients  # monotonic time of the snapshot from B
    counts = {"connected_a": 0, "failed_a": 0, "refused_429": 0, "refused_503": 0, "failed_other": 0,
              "attempts_b": 0}
    pending: set[int] = set()
    on_a: set[int] = set()  # the clients that were connected to A

    def source(i: int) -> str:
        return f"127.0.0.{2 + (index * per_process + i) % sources}"

    class OnA(WSListener):
        def __init__(self, i: int) -> None:
            self.i = i

        def on_ws_connected(self, transport: Any) -> None:
            msg = pb.ClientMessage(subscribe=pb.Subscribe(symbols=lists[self.i]))
            transport.send(WSMsgType.BINARY, msg.SerializeToString())

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            data = frame.get_payload_as_bytes()
            if data and data[0] == SUBSCRIBED_TAG and not tokens[self.i]:
                tokens[self.i] = pb.ServerMessage.FromString(data).subscribed.resume_token

        def on_ws_disconnected(self, transport: Any) -> None:
            if self.i not in pending and fresh[self.i] != fresh[self.i]:
                pending.add(self.i)
                loop.call_soon(start_reconnect, self.i)

    class OnB(WSListener):
        def __init__(self, i: int) -> None:
            self.i = i

        def on_ws_connected(self, transport: Any) -> None:
            msg = pb.ClientMessage(subscribe=pb.Subscribe(resume_token=tokens[self.i]))
            transport.send(WSMsgType.BINARY, msg.SerializeToString())

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            data = frame.get_payload_as_bytes()
            if data and data[0] == SNAPSHOT_TAG and fresh[self.i] != fresh[self.i]:
                fresh[self.i] = time.monotonic()
                pending.discard(self.i)

    def start_reconnect(i: int) -> None:
        task = loop.create_task(reconnect(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def reconnect(i: int) -> None:
        import asyncio

        attempt = 0
        while time.monotonic() < stop_at:
            if mode == "jitter":
                await asyncio.sleep(random.random() * min(max_ms, initial_ms * 2 ** attempt) / 1000)
            elif attempt:
                await asyncio.sleep(0.1)
            attempt += 1
            counts["attempts_b"] += 1
            try:
                await ws_connect(lambda: OnB(i), url_b, local_addr=(source(i), 0), websocket_handshake_timeout=10)
                return
            except Exception as e:
                status = int(getattr(getattr(e, "response", None), "status", 0) or 0)
                key = {429: "refused_429", 503: "refused_503"}.get(status, "failed_other")
                counts[key] += 1
                if key == "failed_other":  # which kind: a handshake timeout, a reset, a refused TCP connect
                    name = f"failed:{type(e).__name__}"
                    counts[name] = counts.get(name, 0) + 1

    async def connect_a(i: int, gate: Any) -> None:
        import asyncio

        async with gate:
            for attempt in range(5):
                try:
                    await ws_connect(lambda: OnA(i), url_a, local_addr=(source(i), 0))
                    counts["connected_a"] += 1
                    on_a.add(i)
                    return
                except Exception:
                    await asyncio.sleep(0.5 * (attempt + 1))
        counts["failed_a"] += 1

    tasks: set[Any] = set()
    stop_at = float("inf")
    loop: Any = None

    async def main() -> None:
        import asyncio

        nonlocal loop, stop_at
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        await asyncio.gather(*(connect_a(i, gate) for i in range(clients)))
        wait_tokens = time.monotonic() + 30
        while sum(1 for t in tokens if t) < counts["connected_a"] and time.monotonic() < wait_tokens:
            await asyncio.sleep(0.05)
        connected_q.put((index, counts["connected_a"], counts["failed_a"]))
        while kill_at.value == 0.0:
            await asyncio.sleep(0.01)
        stop_at = kill_at.value + deadline
        while time.monotonic() < stop_at and any(fresh[i] != fresh[i] for i in on_a):
            await asyncio.sleep(0.05)

    uvloop.run(main())
    out.put(("storm", index, fresh, counts))
    out.close()
    out.join_thread()
    os._exit(0)


def own_process(clients: int, url_b: str, connected_q: Any, stop: Any, out: Any) -> None:
    """B's own clients: hot tickers' quotes, every quote's latency (ms) with its arrival time."""
    import asyncio

    import uvloop
    from picows import WSListener, WSMsgType, ws_connect

    raise_nofile()
    samples: list[tuple[float, float]] = []
    lost = {"own_lost": 0}  # connections of B's own clients that B (or the machine) closed during the run

    class Own(WSListener):
        def on_ws_connected(self, transport: Any) -> None:
            transport.send(WSMsgType.BINARY, pb.ClientMessage(subscribe=pb.Subscribe(symbols=HOT)).SerializeToString())

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            data = frame.get_payload_as_bytes()
            if data and data[0] == QUOTES_TAG:
                now_ns, mono = time.time_ns(), time.monotonic()
                for q in pb.ServerMessage.FromString(data).quotes.quotes:
                    samples.append((mono, (now_ns - q.exchange_time_ns) / 1e6))

        def on_ws_disconnected(self, transport: Any) -> None:
            if not stop.is_set():
                lost["own_lost"] += 1

    async def main() -> None:
        connected = 0
        for _ in range(clients):
            for attempt in range(20):
                try:  # 127.0.0.1: never one of the storm's source addresses
                    await ws_connect(Own, url_b, local_addr=("127.0.0.1", 0))
                    connected += 1
                    break
                except Exception:
                    await asyncio.sleep(0.1 * (attempt + 1))
        connected_q.put(("own", connected, clients - connected))
        while not stop.is_set():
            await asyncio.sleep(0.05)

    uvloop.run(main())
    out.put(("own", 0, samples, lost))
    out.close()
    out.join_thread()
    os._exit(0)


# ------------------------------------------------------------------------------------------------ server side
class Cluster:
    """redis-server, the publisher and the two edges, on free loopback ports; everything stopped by ``close``."""

    def __init__(self, symbols: int, rate: int, log: Any) -> None:
        self.symbols, self.rate, self.log = symbols, rate, log
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "TICKFAN_RESUME_SECRET": "bench-reconnect-storm",
                    "TICKFAN_JWT_SECRET": os.environ.get("TICKFAN_JWT_SECRET", "bench-reconnect-storm-" + "x" * 32)}
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"

    def spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=self.env, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def start_feed(self) -> None:
        self.spawn(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"])
        time.sleep(0.3)
        self.spawn([sys.executable, "-m", "tickfan", "demo", "--redis", self.redis_url, "--no-trading",
                    "--symbols", str(self.symbols), "--rate", str(self.rate), "--duration", "100000",
                    "--feed", f"127.0.0.1:{free_port()}", "--no-rewinder", "--luld-every", "0",
                    "--status-every", "0", "--http", f"127.0.0.1:{free_port()}", "--ws", f"127.0.0.1:{free_port()}",
                    "--quiet"])
        self.wait_redis_quotes()

    def wait_redis_quotes(self, timeout: float = 120) -> None:
        import redis

        r = redis.Redis(port=self.redis_port)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if all(r.hget(f"quote:{s}", "bid_price") for s in HOT):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.2)
        raise TimeoutError("the publisher's quotes never reached Redis")

    def edge(self, limits: list[str]) -> tuple[subprocess.Popen[bytes], str]:
        import httpx

        http, ws = free_port(), free_port()
        cmd = [sys.executable, "-m", "tickfan", "node", "--from-redis", self.redis_url, "--http", f"127.0.0.1:{http}",
               "--ws", f"127.0.0.1:{ws}", "--quiet", *limits]
        proc = self.spawn(cmd)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            assert proc.poll() is None, "an edge exited early (see --log)"
            try:
                if int(httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=1).json()["symbols"]) >= self.symbols:
                    return proc, f"ws://127.0.0.1:{ws}/v1/stream"
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        raise TimeoutError("an edge did not come up")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


@dataclass
class Run:
    mode: str
    limits: str
    clients: int
    connected: int = 0
    fresh: int = 0
    t50_s: float = float("nan")
    t99_s: float = float("nan")
    t100_s: float = float("nan")
    refused_429: int = 0
    refused_503: int = 0
    failed_other: int = 0
    attempts: int = 0
    own: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # failed_other by exception
    own_lost: int = 0  # B's own clients disconnected during the run (a slow consumer dropped: no "after")
    latency_ms: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # window -> (p50, p99, n)

    def line(self) -> str:
        lat = "  ".join(f"{w} p50 {p50:.0f} / p99 {p99:.0f} ms" for w, (p50, p99, _) in self.latency_ms.items())
        return (f"{self.mode:>9} limits={self.limits:<4} {self.fresh:,}/{self.connected:,} "
                f"back: 50% {self.t50_s:.2f} s, 99% {self.t99_s:.2f} s, 100% {self.t100_s:.2f} s; "
                f"429 {self.refused_429:,}, 503 {self.refused_503:,}, other {self.failed_other:,} "
                f"({self.attempts:,} attempts{'; ' if self.failures else ''}"
                f"{', '.join(f'{k} {v:,}' for k, v in sorted(self.failures.items()))}) | "
                f"B's own {self.own} ({self.own_lost} lost): {lat}")


def window(samples: list[tuple[float, float]], lo: float, hi: float) -> tuple[float, float, int]:
    lat = np.array([ms for t, ms in samples if lo <= t < hi])
    if not len(lat):
        return (float("nan"), float("nan"), 0)
    p50, p99 = np.percentile(lat, [50, 99])
    return (float(p50), float(p99), len(lat))


def limit_flags(case: str, args: argparse.Namespace) -> list[str]:
    return {"off": [], "ip": ["--limit-loopback"], "node": ["--connection-rate", str(args.node_rate)]}[case]


def run_once(cluster: Cluster, mode: str, limits: str, args: argparse.Namespace) -> Run:
    ctx = mp.get_context("fork")
    out, connected_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    kill_at = ctx.Value("d", 0.0)
    a, url_a = cluster.edge([])  # A is about to die: its own limits are not what is measured
    b, url_b = cluster.edge(limit_flags(limits, args))
    result = Run(mode, limits, args.clients)
    n, k = args.clients, args.processes
    per = [n // k + (1 if i < n % k else 0) for i in range(k)]
    procs = [ctx.Process(target=own_process, args=(args.own, url_b, connected_q, stop, out), daemon=True)]
    procs += [ctx.Process(target=storm_process, args=(i, per[i], per[0], url_a, url_b, args.symbols, args.sources,
                                                      mode, args.initial_ms, args.max_ms, connected_q, kill_at, out,
                                                      args.deadline), daemon=True) for i in range(k)]
    try:
        started = time.monotonic()
        for p in procs:
            p.start()
        for _ in procs:
            tag, ok, failed = connected_q.get(timeout=600)
            if tag == "own":
                result.own = ok
            else:
                result.connected += ok
            print(f"  {'own' if tag == 'own' else f'storm {tag}'}: {ok:,} connected ({failed} failed) "
                  f"at {time.monotonic() - started:.1f} s", flush=True)
        time.sleep(args.before)
        profiler = None
        if args.profile:  # node B's Python stacks while the herd lands, as py-spy's raw (collapsed) stacks
            spy = Path(sys.executable).with_name("py-spy")
            profiler = subprocess.Popen([str(spy), "record", "--nonblocking", "--format", "raw", "--duration",
                                         str(int(args.profile_seconds)), "--pid", str(b.pid), "-o",
                                         f"{args.profile}.{mode}.{limits}.txt"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_kill = time.monotonic()
        os.kill(a.pid, signal.SIGKILL)
        kill_at.value = t_kill
        print(f"  node A killed; {result.connected:,} clients reconnecting to B ({mode})", flush=True)
        storms: list[tuple[list[float], dict[str, int]]] = []
        while len(storms) < k:
            try:
                tag, _, fresh, counts = out.get(timeout=5)
            except Exception:
                print(f"  ... {time.monotonic() - t_kill:.0f} s since the kill", flush=True)
                continue
            storms.append((fresh, counts))
        back = sorted(t - t_kill for fresh, _ in storms for t in fresh if t == t)
        result.fresh = len(back)
        for key in ("refused_429", "refused_503", "failed_other"):
            setattr(result, key, sum(c[key] for _, c in storms))
        result.attempts = sum(c["attempts_b"] for _, c in storms)
        for _, c in storms:
            for key, n in c.items():
                if key.startswith("failed:"):
                    result.failures[key[7:]] = result.failures.get(key[7:], 0) + n
        if back and result.connected:
            def at(q: float) -> float:
                need = max(1, int(np.ceil(q * result.connected)))
                return back[need - 1] if need <= len(back) else float("nan")
            result.t50_s, result.t99_s, result.t100_s = at(0.5), at(0.99), at(1.0)
        storm_end = t_kill + (result.t100_s if result.t100_s == result.t100_s else args.deadline)
        time.sleep(max(0.0, storm_end + args.after - time.monotonic()))
        stop.set()
        _, _, samples, own_counts = out.get(timeout=60)
        result.own_lost = int(own_counts.get("own_lost", 0))
        if profiler is not None:
            profiler.wait(timeout=args.profile_seconds + 30)
        result.latency_ms = {"before": window(samples, t_kill - args.before, t_kill),
                             "during": window(samples, t_kill, storm_end),
                             "after": window(samples, storm_end, storm_end + args.after)}
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        cluster.stop(b)
        cluster.stop(a)
        cluster.procs = [p for p in cluster.procs if p not in (a, b)]
    return result


def median_of(runs: list[Run]) -> dict[str, Any]:
    def med(values: list[float]) -> float:
        values = [v for v in values if v == v]
        return statistics.median(values) if values else float("nan")

    out: dict[str, Any] = {key: med([getattr(r, key) for r in runs])
                           for key in ("t50_s", "t99_s", "t100_s", "refused_429", "refused_503", "failed_other",
                                       "attempts", "fresh", "connected")}
    for w in ("before", "during", "after"):
        out[f"{w}_p50_ms"] = med([r.latency_ms[w][0] for r in runs])
        out[f"{w}_p99_ms"] = med([r.latency_ms[w][1] for r in runs])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000, help=f"storm clients (at most {MAX_CLIENTS:,}; "
                                                                     "default %(default)s)")
    parser.add_argument("--own", type=int, default=100, help="node B's own measured clients (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="storm client processes (default %(default)s)")
    parser.add_argument("--sources", type=int, default=100,
                        help="127.0.0.x source addresses the storm clients spread over (default %(default)s)")
    parser.add_argument("--mode", choices=("immediate", "jitter", "both"), default="both",
                        help="how the storm reconnects (both: interleaved, immediate first; default %(default)s)")
    parser.add_argument("--limits", default="off",
                        help="node B's admission cases, comma-separated, interleaved: off, ip (--limit-loopback), "
                             "node (--connection-rate --node-rate) (default %(default)s)")
    parser.add_argument("--node-rate", type=float, default=250.0,
                        help="the node case's --connection-rate, new connections/s (default %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each case, interleaved (default %(default)s)")
    parser.add_argument("--initial-ms", type=float, default=250.0, help="jitter: first delay's cap (default 250)")
    parser.add_argument("--max-ms", type=float, default=30_000.0, help="jitter: largest cap (default 30,000)")
    parser.add_argument("--symbols", type=int, default=500, help="the publisher's universe (default %(default)s)")
    parser.add_argument("--rate", type=int, default=5000, help="feed messages/s (default %(default)s)")
    parser.add_argument("--before", type=float, default=5.0, help="seconds measured before the kill")
    parser.add_argument("--after", type=float, default=5.0, help="seconds measured after the storm")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds the storm may take at most")
    parser.add_argument("--profile", default="", metavar="PREFIX",
                        help="py-spy node B from the kill on; raw stacks to PREFIX.<mode>.<limits>.txt")
    parser.add_argument("--profile-seconds", type=float, default=20.0, help="how long to profile (default 20)")
    parser.add_argument("--log", default="/tmp/bench_reconnect_storm.log", help="the servers' output")
    parser.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be 1..{MAX_CLIENTS}")
    raise_nofile()
    modes = ["immediate", "jitter"] if args.mode == "both" else [args.mode]
    limit_cases = args.limits.split(",")
    if not set(limit_cases) <= {"off", "ip", "node"}:
        parser.error("--limits: off, ip or node, comma-separated")
    runs: list[Run] = []
    with open(args.log, "ab") as log:
        cluster = Cluster(args.symbols, args.rate, log)
        try:
            cluster.start_feed()
            for i in range(args.runs):
                for limits in limit_cases:
                    for mode in modes:
                        print(f"run {i + 1}/{args.runs}: {mode}, limits {limits}", flush=True)
                        run = run_once(cluster, mode, limits, args)
                        print("  " + run.line(), flush=True)
                        runs.append(run)
        finally:
            cluster.close()
    summary = {f"{m} limits={lim}": median_of([r for r in runs if r.mode == m and r.limits == lim])
               for lim in limit_cases for m in modes}
    print("\nmedians:")
    for case, s in summary.items():
        print(f"  {case}: 50% {s['t50_s']:.2f} s, 99% {s['t99_s']:.2f} s, 100% {s['t100_s']:.2f} s; "
              f"429 {s['refused_429']:.0f}, 503 {s['refused_503']:.0f}; B's own p50/p99 ms before "
              f"{s['before_p50_ms']:.0f}/{s['before_p99_ms']:.0f}, during {s['during_p50_ms']:.0f}/"
              f"{s['during_p99_ms']:.0f}, after {s['after_p50_ms']:.0f}/{s['after_p99_ms']:.0f}")
    if args.json:
        print(json.dumps({"runs": [asdict(r) for r in runs], "medians": summary}, indent=1))


if __name__ == "__main__":
    main()
