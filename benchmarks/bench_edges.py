"""Many edge nodes: one publisher node and N ``--from-redis`` edge nodes on one host, clients spread over them.

    .venv/bin/python benchmarks/bench_edges.py --edges 1,2,4 --clients 1000 --rate 20000 --seconds 15
    .venv/bin/python benchmarks/bench_edges.py --redis redis+cluster://127.0.0.1:7000 --edges 2
    .venv/bin/python benchmarks/bench_edges.py --shard --subscribers 1,4,16,64 --payload 1500

Edge mode (the default), for each N of ``--edges`` (and ``--repeat`` times, the N interleaved):

- a private ``redis-server`` on a free port (or ``--redis URL``, a single server or ``redis+cluster://``);
- the publisher: ``tickfan demo --redis URL --no-trading`` (its simulator at ``--rate`` ITCH msg/s, on free
  ports), which writes the ``quote:{SYMBOL}`` hashes and SPUBLISHes one batch per partition per round;
- N edges: ``tickfan node --from-redis URL``, each on its own WebSocket and HTTP ports;
- ``--clients`` WebSocket clients in all, an equal share per edge, driven by ``bench_fanout_load.run_clients``
  (``--client-processes`` processes in all, whatever N is, so the clients' own CPU is the same for every N).

All edges' clients connect, then start their warm-up and their measured window together; over the same
window the script reads the publisher's CPU (/proc, the demo process; its simulator child apart), Redis's CPU,
network bytes in/out and SPUBLISH/HSET counts (INFO deltas, summed over a cluster's nodes), each edge's CPU,
and each edge's clients' delivered updates/s and exchange-stamp-to-client latency p50/p99.

Shard mode (``--shard``): what one redis-server sustains for sharded pub/sub. ``redis-benchmark`` SPUBLISHes
``--payload``-byte messages, pipelined, on 16 channels as fast as it can; K subscribers (raw sockets that
count and drop the bytes, so that the subscriber is never the bottleneck) SSUBSCRIBE to all 16. Reports
messages/s published, deliveries/s (messages x K), bytes/s out of Redis and Redis's CPU, per K.

Everything on loopback, bounded in time (``--seconds``, start-up deadlines) and count. ``--json FILE`` writes
every run and the medians per N.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_fanout_load import proc_stat, raise_nofile, run_clients  # noqa: E402

from vocab.auth import new_secret  # noqa: E402
from vocab.keys import SYMBOLS  # noqa: E402
from vocab.redisconn import is_cluster, open_redis  # noqa: E402

TICKFAN = [sys.executable, "-m", "tickfan"]
START_TIMEOUT = 120.0
# every node takes a token key (anonymous clients need none; the nodes refuse to start without one)
ENV = {**os.environ, "TICKFAN_JWT_SECRET": os.environ.get("TICKFAN_JWT_SECRET") or new_secret()}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ---------------------------------------------------------------------------------------------- Redis
async def _info(url: str) -> list[dict[str, Any]]:
    r = open_redis(url)
    try:
        if is_cluster(url):
            from redis.asyncio.cluster import RedisCluster

            per_node = await r.info("all", target_nodes=RedisCluster.ALL_NODES)
            return list(per_node.values())
        return [await r.info("all")]
    finally:
        await r.aclose()


def redis_counters(url: str) -> dict[str, float]:
    """CPU seconds, network bytes and command counts, summed over the server (or every node of a cluster)."""
    out = {"cpu_s": 0.0, "net_out": 0.0, "net_in": 0.0, "spublish": 0.0, "hset": 0.0, "commands": 0.0}
    for info in asyncio.run(_info(url)):
        out["cpu_s"] += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        out["net_out"] += float(info["total_net_output_bytes"])
        out["net_in"] += float(info["total_net_input_bytes"])
        out["commands"] += float(info["total_commands_processed"])
        for name in ("spublish", "hset"):
            out[name] += float(info.get(f"cmdstat_{name}", {}).get("calls", 0))
    return out


async def _symbols(url: str) -> int:
    r = open_redis(url)
    try:
        return int(await r.hlen(SYMBOLS))
    finally:
        await r.aclose()


class PrivateRedis:
    """A redis-server of our own on a free port, no persistence; stopped with the benchmark."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------------------- nodes
class Proc:
    """A tickfan command in its own process group, waited for until it prints its ready line."""

    def __init__(self, name: str, cmd: list[str], log: Path) -> None:
        self.name, self.cmd = name, cmd
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT,
                                     start_new_session=True, env=ENV)
        assert self.proc.stdout is not None
        for _ in range(50):  # notices (a development key, ...) may come before the ready line
            line = self.proc.stdout.readline()
            if not line or "is up" in line:
                break
        if "is up" not in line:
            self.stop()
            raise RuntimeError(f"{name} did not start ({line!r}); see {log}")
        # keep reading its output so that it never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in self.proc.stdout or []], daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def start_publisher(args: argparse.Namespace, url: str, duration: float, logs: Path) -> Proc:
    udp = socket.SOCK_DGRAM
    cmd = [*TICKFAN, "demo", "--redis", url, "--no-trading", "--quiet", "--rate", str(args.rate),
           "--symbols", str(args.symbols), "--flush-ms", str(args.flush_ms), "--duration", str(int(duration)),
           "--feed", f"127.0.0.1:{free_port(udp)}", "--rewinder", f"127.0.0.1:{free_port(udp)}",
           "--snapshot", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{free_port()}",
           "--ws", f"127.0.0.1:{free_port()}", "--luld-every", "0", "--status-every", "0"]
    if args.batched:
        cmd.append("--batched")
    return Proc("publisher", cmd, logs / "publisher.log")


def start_edge(k: int, args: argparse.Namespace, url: str, duration: float, logs: Path) -> tuple[Proc, str, str]:
    """An edge: its process, its stream URL, its HTTP base URL."""
    ws, http = free_port(), free_port()
    cmd = [*TICKFAN, "node", "--from-redis", url, "--quiet", "--flush-ms", str(args.flush_ms),
           "--duration", str(int(duration)), "--ws", f"127.0.0.1:{ws}", "--http", f"127.0.0.1:{http}"]
    return Proc(f"edge {k}", cmd, logs / f"edge{k}.log"), f"ws://127.0.0.1:{ws}/v1/stream", f"http://127.0.0.1:{http}"


def seeded(http: str) -> int:
    """Symbols the edge has seeded from their hashes (its /metrics)."""
    import urllib.request

    with urllib.request.urlopen(f"{http}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if 'kind="seeded"' in line and not line.startswith("#"):
                return int(float(line.split()[-1]))
    return 0


def wait_seeded(https: list[str], timeout: float) -> tuple[float, list[int]]:
    """Until no edge seeds any more symbol for 2 s: a symbol seeded late reaches its clients as an update
    with the exchange time of its last change, which is not a latency of the stream."""
    started, last, stable = time.monotonic(), [-1] * len(https), 0
    while time.monotonic() - started < timeout:
        now = [seeded(h) for h in https]
        stable = stable + 1 if now == last and min(now) > 0 else 0
        if stable >= 2:
            break
        last = now
        time.sleep(1.0)
    return time.monotonic() - started, last


# ---------------------------------------------------------------------------------------------- clients
def _edge_clients(url: str, clients: int, processes: int, edge_pid: int, args: argparse.Namespace,
                  ready: Any, go: Any, out: Any) -> None:
    """One edge's share of the clients (a process of its own: run_clients blocks and forks its clients)."""
    lo, _, hi = args.watch.partition("-")

    def on_connected() -> None:
        ready.put(url)
        go.wait(START_TIMEOUT * 4)  # the parent waits for the edges' seeding first

    try:
        res = run_clients(url, clients, processes, args.seconds, symbols=args.symbols, size=(int(lo), int(hi or lo)),
                          sample=args.sample, warmup=args.warmup, server_pids=lambda: [edge_pid],
                          connect_timeout=START_TIMEOUT, on_connected=on_connected, progress=False)
        out.put((url, asdict(res)))
    except Exception as exc:  # the parent reports it; it must not wait for us forever
        ready.put(url)
        out.put((url, {"error": repr(exc)}))


def one_run(n: int, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """Publisher + n edges + the clients; the figures of one measured window."""
    budget = START_TIMEOUT * 4 + args.warmup + args.seconds + 30  # start, connect, seed, measure
    redis = PrivateRedis() if args.redis is None else None
    url = redis.url if redis is not None else args.redis
    procs: list[Proc] = []
    workers: list[Any] = []
    try:
        publisher = start_publisher(args, url, budget, logs)
        procs.append(publisher)
        deadline = time.monotonic() + START_TIMEOUT
        while asyncio.run(_symbols(url)) < args.symbols:
            if time.monotonic() > deadline or publisher.proc.poll() is not None:
                raise RuntimeError("the publisher's directory did not reach Redis")
            time.sleep(0.5)
        edges = [start_edge(k, args, url, budget, logs) for k in range(n)]
        procs += [p for p, _, _ in edges]
        say(f"N={n}: publisher pid {publisher.pid}, edges {[p.pid for p, _, _ in edges]}, Redis {url}")
        ctx = mp.get_context("fork")
        ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        per_edge = [args.clients // n + (1 if k < args.clients % n else 0) for k in range(n)]
        procs_per_edge = max(1, args.client_processes // n)
        for k, (edge, ws, _) in enumerate(edges):
            w = ctx.Process(target=_edge_clients, args=(ws, per_edge[k], procs_per_edge, edge.pid, args, ready,
                                                        go, out))
            w.start()
            workers.append(w)
        started = time.monotonic()
        for _ in edges:
            ready.get(timeout=START_TIMEOUT + 30)
        say(f"N={n}: {args.clients:,} clients connected over {n} edge(s) in {time.monotonic() - started:.1f} s")
        seed_s, seeds = wait_seeded([h for _, _, h in edges], START_TIMEOUT * 2)
        say(f"N={n}: edges seeded {seeds} symbols in {seed_s:.1f} s; warm-up {args.warmup:.0f} s, "
            f"measuring {args.seconds:.0f} s")
        go.set()
        time.sleep(args.warmup)
        r0, p0, t0 = redis_counters(url), proc_stat([publisher.pid]), time.monotonic()
        time.sleep(args.seconds)
        r1, p1, t1 = redis_counters(url), proc_stat([publisher.pid]), time.monotonic()
        window = t1 - t0
        results = dict(out.get(timeout=120) for _ in edges)
        d = {k: (r1[k] - r0[k]) / window for k in r0}
        row: dict[str, Any] = {
            "edges": n, "clients": args.clients, "rate": args.rate, "seconds": round(window, 2),
            "publisher_cpu": round((p1[0] - p0[0]) / window, 3),
            "redis_cpu": round(d["cpu_s"], 3), "redis_out_mb_s": round(d["net_out"] / 1e6, 3),
            "redis_in_mb_s": round(d["net_in"] / 1e6, 3), "spublish_per_s": round(d["spublish"], 1),
            "hset_per_s": round(d["hset"], 1), "redis_commands_per_s": round(d["commands"], 1),
            "bytes_per_spublish": round(d["net_in"] / d["spublish"]) if d["spublish"] else None,
            "seed_s": round(seed_s, 1), "per_edge": [],
        }
        for (edge, ws, _), symbols_seeded in zip(edges, seeds, strict=True):
            res = results[ws]
            if "error" in res:
                raise RuntimeError(f"clients of {ws}: {res['error']}")
            row["per_edge"].append({
                "pid": edge.pid, "clients": res["clients"], "connected": res["connected"], "seeded": symbols_seeded,
                "cpu": round(res["server_cpu"], 3), "updates_per_s": round(res["updates_per_s"]),
                "frames_per_s": round(res["frames_per_s"]), "p50_ms": round(res["p50_ms"], 1),
                "p99_ms": round(res["p99_ms"], 1), "rss_mb": round(res["server_rss_mb"], 1)})
        pe = row["per_edge"]
        row["updates_per_s_total"] = sum(e["updates_per_s"] for e in pe)
        row["edge_cpu_total"] = round(sum(e["cpu"] for e in pe), 3)
        row["p99_ms_worst"] = max(e["p99_ms"] for e in pe)
        row["p50_ms_median"] = statistics.median(e["p50_ms"] for e in pe)
        # a publisher that fell behind its feed (gaps, a stale book) publishes less: such a run is no figure
        log = (logs / "publisher.log").read_text(errors="replace")
        row["publisher_feed_gaps"] = log.count("feed gap")
        row["publisher_stale"] = log.count("books are stale")
        return row
    finally:
        for w in workers:
            w.join(timeout=60)
            if w.is_alive():
                w.kill()
                w.join()
        for p in reversed(procs):
            p.stop()
        if redis is not None:
            redis.stop()


def edge_lines(row: dict[str, Any]) -> list[str]:
    out = [f"N={row['edges']}: publisher CPU {row['publisher_cpu'] * 100:.0f}% | "
           f"Redis CPU {row['redis_cpu'] * 100:.0f}%, out {row['redis_out_mb_s']:.2f} MB/s, "
           f"in {row['redis_in_mb_s']:.2f} MB/s, "
           f"{row['spublish_per_s']:.0f} SPUBLISH/s (~{row['bytes_per_spublish']} B in per publish), "
           f"{row['hset_per_s']:,.0f} HSET/s; publisher feed gaps {row['publisher_feed_gaps']}, "
           f"stale {row['publisher_stale']}"]
    for k, e in enumerate(row["per_edge"]):
        out.append(f"  edge {k}: {e['connected']:,}/{e['clients']:,} clients, CPU {e['cpu'] * 100:.0f}%, "
                   f"{e['updates_per_s']:,} updates/s, {e['frames_per_s']:,} frames/s, p50 {e['p50_ms']} ms, "
                   f"p99 {e['p99_ms']} ms, {e['rss_mb']:.0f} MB")
    return out


# ---------------------------------------------------------------------------------------------- shard mode
def _subscribe_sink(port: int, channels: list[str], count: int, stop: Any, got: Any) -> None:
    """``count`` subscribers on raw sockets, each SSUBSCRIBEd to ``channels``, counting the bytes they get (a
    child process: it must keep up, or Redis drops it at its pub/sub output-buffer limit)."""
    sel = selectors.DefaultSelector()
    words = ["SSUBSCRIBE", *channels]
    command = f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.sendall(command)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    local = [0] * count
    while not stop.is_set():
        for key, _ in sel.select(0.1):
            try:
                data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            local[key.data] += len(data)
        for i in range(count):
            got[i] = local[i]
    os._exit(0)


async def _paced_publish(url: str, payload: bytes, rounds_per_s: float, seconds: float) -> int:
    """Every 1/rounds_per_s s, one SPUBLISH per quotes partition (the publisher's round); returns rounds done."""
    from vocab.keys import QUOTE_PARTITIONS, quotes_channel

    r = open_redis(url)
    done = 0
    try:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            pipe = r.pipeline(transaction=False)
            for p in range(QUOTE_PARTITIONS):
                pipe.spublish(quotes_channel(p), payload)
            await pipe.execute()
            done += 1
            await asyncio.sleep(max(0.0, start + done / rounds_per_s - time.monotonic()))
    finally:
        await r.aclose()
    return done


def shard_run(k: int, args: argparse.Namespace) -> dict[str, Any]:
    """K subscribers (edges) on every partition; the publisher's rounds paced at ``--rounds-per-s``."""
    from vocab.keys import QUOTE_PARTITIONS, quotes_channel

    redis = PrivateRedis()
    ctx = mp.get_context("fork")
    stop, got = ctx.Event(), ctx.Array("q", k, lock=False)
    channels = [quotes_channel(p) for p in range(QUOTE_PARTITIONS)]
    sink = ctx.Process(target=_subscribe_sink, args=(redis.port, channels, k, stop, got), daemon=True)
    try:
        sink.start()
        deadline = time.monotonic() + 30
        while int(asyncio.run(_info(redis.url))[0]["connected_clients"]) < k + 1:  # + our INFO connection
            if time.monotonic() > deadline or not sink.is_alive():
                raise RuntimeError("subscribers did not subscribe")
            time.sleep(0.1)
        payload = b"x" * args.payload
        r0, g0 = redis_counters(redis.url), sum(got)
        t0 = time.monotonic()
        rounds = asyncio.run(_paced_publish(redis.url, payload, args.rounds_per_s, args.seconds))
        time.sleep(0.2)  # the last round reaches the subscribers
        r1, g1, w = redis_counters(redis.url), sum(got), time.monotonic() - t0
        connected = int(asyncio.run(_info(redis.url))[0]["connected_clients"]) - 1
        published = (r1["spublish"] - r0["spublish"]) / w
        cpu = (r1["cpu_s"] - r0["cpu_s"]) / w
        deliveries = published * k
        return {"subscribers": k, "still_subscribed": connected, "payload": args.payload,
                "rounds_per_s": round(rounds / w, 1), "published_per_s": round(published),
                "deliveries_per_s": round(deliveries),
                "redis_out_mb_s": round((r1["net_out"] - r0["net_out"]) / w / 1e6, 2),
                "received_mb_s": round((g1 - g0) / w / 1e6, 2), "redis_cpu": round(cpu, 3),
                "redis_us_per_delivery": round(cpu / deliveries * 1e6, 2) if deliveries else None}
    finally:
        stop.set()
        sink.join(10)
        if sink.is_alive():
            sink.kill()
        redis.stop()


# ---------------------------------------------------------------------------------------------- main
def median_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["publisher_cpu", "redis_cpu", "redis_out_mb_s", "redis_in_mb_s", "spublish_per_s", "hset_per_s",
            "bytes_per_spublish", "updates_per_s_total", "edge_cpu_total", "p99_ms_worst", "p50_ms_median"]
    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    med: dict[str, Any] = {k: median([r[k] for r in rows if r[k] is not None and r[k] == r[k]]) for k in keys}
    for name, key in (("per_edge_updates_per_s", "updates_per_s"), ("per_edge_p99_ms", "p99_ms"),
                      ("per_edge_cpu", "cpu")):
        med[name] = median([e[key] for r in rows for e in r["per_edge"] if e[key] == e[key]])
    med["runs"] = len(rows)
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", default="1,2,4", help="edge counts N to run, comma-separated (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per N, interleaved (default %(default)s)")
    parser.add_argument("--clients", type=int, default=1000, help="clients in all, split over the edges "
                                                                  "(default %(default)s)")
    parser.add_argument("--client-processes", type=int, default=4,
                        help="client processes in all (at least one per edge) (default %(default)s)")
    parser.add_argument("--rate", type=float, default=20_000, help="publisher's simulated feed, ITCH msg/s "
                                                                   "(default %(default)s)")
    parser.add_argument("--symbols", type=int, default=10_000, help="simulated symbols (default %(default)s)")
    parser.add_argument("--batched", action="store_true", help="the publisher decodes on the batched path")
    parser.add_argument("--flush-ms", type=float, default=50.0, help="publish round and edge flush bound, ms "
                                                                     "(default %(default)s)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after all clients connected "
                                                                  "(default %(default)s)")
    parser.add_argument("--watch", default="3-15", help="watchlist size range per client (default %(default)s)")
    parser.add_argument("--sample", type=int, default=4, help="take latencies from 1 frame in N (default %(default)s)")
    parser.add_argument("--redis", default=None, metavar="URL",
                        help="use this Redis (redis:// or redis+cluster://) instead of a private redis-server; "
                             "its INFO deltas then include anyone else's traffic")
    parser.add_argument("--shard", action="store_true", help="shard mode: one redis-server's sharded pub/sub "
                                                             "throughput (see above)")
    parser.add_argument("--subscribers", default="1,4,16,64", help="shard mode: subscriber counts K "
                                                                   "(default %(default)s)")
    parser.add_argument("--payload", type=int, default=14_000,
                        help="shard mode: bytes per message (default %(default)s: a round's ~312 quotes of one "
                             "partition at 10,000 tickers x 10 updates/s, ~45 bytes each)")
    parser.add_argument("--rounds-per-s", type=float, default=20.0,
                        help="shard mode: publisher rounds a second, 16 messages each (default %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write every run and the medians here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what we started (finally blocks), then go
    raise_nofile()
    logs = ROOT / "build" / "bench_edges"
    logs.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"argv": sys.argv[1:], "runs": rows}
    if args.shard:
        for rep in range(args.repeat):
            for k in (int(x) for x in args.subscribers.split(",")):
                say(f"shard: {k} subscriber(s), {args.payload}-byte messages (run {rep + 1}/{args.repeat})")
                row = shard_run(k, args)
                rows.append(row)
                say(f"  {row['published_per_s']:,} published/s, {row['deliveries_per_s']:,} deliveries/s, "
                    f"Redis out {row['redis_out_mb_s']} MB/s (subscribers got {row['received_mb_s']} MB/s, "
                    f"{row['still_subscribed']} of {k} still subscribed), Redis CPU {row['redis_cpu'] * 100:.1f}% "
                    f"({row['redis_us_per_delivery']} us per delivery)")
    else:
        ns = [int(x) for x in args.edges.split(",")]
        if args.client_processes < max(ns):
            parser.error("--client-processes must be at least the largest N (one per edge)")
        for rep in range(args.repeat):
            for n in ns:
                say(f"run {rep + 1}/{args.repeat}, N={n} edge(s)")
                row = one_run(n, args, logs)
                rows.append(row)
                print("\n".join(edge_lines(row)), flush=True)
        report["medians"] = {str(n): median_rows([r for r in rows if r["edges"] == n]) for n in ns}
        for n, med in report["medians"].items():
            say(f"median N={n} over {med['runs']} run(s): publisher CPU {med['publisher_cpu'] * 100:.0f}%, Redis CPU "
                f"{med['redis_cpu'] * 100:.0f}%, Redis out {med['redis_out_mb_s']:.2f} MB/s, per edge "
                f"{med['per_edge_updates_per_s']:,.0f} updates/s, p99 {med['per_edge_p99_ms']} ms")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
        say(f"wrote {args.json}")


if __name__ == "__main__":
    main()
