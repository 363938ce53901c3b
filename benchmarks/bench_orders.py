"""Order acknowledgement latency and throughput: POST /v1/orders against `tickfan api` on real PostgreSQL.

The API runs as its own process (uvloop + uvicorn, two ledger shards on the local PostgreSQL, quotes from
Redis hashes in a benchmark-only Redis database); this process is the load: keep-alive HTTP/1.1 connections
on raw asyncio streams over uvloop, so the client takes as little as it can of the two cores it shares with
the server and PostgreSQL. Two phases:

- paced: orders sent open-loop at ``--rate`` orders/s for ``--seconds``; latency is measured from the moment
  each order was *due* (not sent), so a stalled server cannot hide queueing (no coordinated omission);
- ceiling: ``--concurrency`` connections send back to back for ``--seconds``; orders/s is the ceiling.

Every order is a real placement: a hold, a journal transaction, an outbox row; the ledger invariants are
checked at the end. Usage: .venv/bin/python benchmarks/bench_orders.py --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid

import asyncpg
import orjson
import uvloop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from order_api.db import Ledger  # noqa: E402
from vocab.auth import mint_token, new_secret  # noqa: E402
from vocab.keys import MARKET_STATUS  # noqa: E402
from vocab.redisconn import open_redis  # noqa: E402

SERVER = "postgresql://postgres@127.0.0.1:5432"
# TICKFAN_BENCH_DB: the shards' name prefix (each run drops and recreates them: two checkouts benchmarking side by side
# need their own)
_BENCH_DB = os.environ.get("TICKFAN_BENCH_DB", "tickfan_bench")
DSNS = [f"{SERVER}/{_BENCH_DB}_0", f"{SERVER}/{_BENCH_DB}_1"]
REDIS_URL = "redis://127.0.0.1:6379/7"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN"]


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time per phase of the API process, of the PostgreSQL backends serving the bench shards, and of this
    load generator: a measure that other work on a shared machine disturbs far less than latency."""

    def __init__(self, api_pid: int) -> None:
        self.api_pid = api_pid

    @staticmethod
    def _backends() -> list[int]:
        async def pids() -> list[int]:
            conn = await asyncpg.connect(f"{SERVER}/postgres")
            try:
                rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[]) "
                                        "AND pid <> pg_backend_pid()", [d.rsplit("/", 1)[1] for d in DSNS])
            finally:
                await conn.close()
            return [int(r["pid"]) for r in rows]
        return asyncio.run(pids())

    def start(self) -> None:
        self.backends = {pid: _proc_cpu(pid) for pid in self._backends()}
        self.api, self.load, self.wall = _proc_cpu(self.api_pid), time.process_time(), time.perf_counter()

    def stop(self, orders: int) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        api = _proc_cpu(self.api_pid) - self.api
        # a backend opened during the phase counts from 0: all its CPU is this phase's
        pg = sum(_proc_cpu(pid) - self.backends.get(pid, 0.0) for pid in {*self.backends, *self._backends()})
        load = time.process_time() - self.load
        per = 1000 / max(1, orders)
        return {"api_ms_per_order": api * per, "pg_ms_per_order": pg * per, "load_ms_per_order": load * per,
                "api_cores": api / wall, "pg_cores": pg / wall, "load_cores": load / wall}


def cpu_line(c: dict[str, float]) -> str:
    return (f"cpu per order: api {c['api_ms_per_order']:.3f} ms ({c['api_cores']:.2f} core), postgres "
            f"{c['pg_ms_per_order']:.3f} ms ({c['pg_cores']:.2f} core), load {c['load_ms_per_order']:.3f} ms "
            f"({c['load_cores']:.2f} core); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Conn:
    """One keep-alive HTTP/1.1 connection: send a request, read one response (Content-Length framed)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(r, w)

    async def post(self, path: str, body: bytes, token: str) -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload


# what each order asks for (--kind): a whole share, a fraction of one, or a dollar amount (issue 15); or one share
# by a stop order type, which rests as pending_trigger (no trigger watcher runs here: the placement is measured)
AMOUNTS: dict[str, dict[str, object]] = {"whole": {"qty": 1}, "fractional": {"qty": "0.25"},
                                         "notional": {"notional": "10"},
                                         "stop": {"qty": 1, "type": "stop", "stop_price": "101"},
                                         "stop_limit": {"qty": 1, "type": "stop_limit", "stop_price": "101",
                                                        "limit_price": "101.5"},
                                         "trailing_stop": {"qty": 1, "type": "trailing_stop", "trail_percent": "1"}}
AMOUNT: dict[str, object] = AMOUNTS["whole"]


def order_body(i: int) -> bytes:
    return orjson.dumps({"symbol": SYMBOLS[i % len(SYMBOLS)], "side": "buy", **AMOUNT,
                         "idempotency_key": uuid.uuid4().hex})


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def paced(port: int, tokens: list[str], rate: float, seconds: float, conns: int) -> dict[str, float]:
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await Conn.open(port))
    lat: list[float] = []
    errors = 0
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / rate
        c = await pool.get()
        try:
            status, _ = await c.post("/v1/orders", order_body(i), tokens[i % len(tokens)])
        finally:
            pool.put_nowait(c)
        if status != 201:
            errors += 1
        lat.append(time.perf_counter() - due)

    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
        if i % max(1, int(rate)) == 0 and i:
            print(f"  paced: {i}/{total} sent", flush=True)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    return {"orders": total, "orders_per_s": total / elapsed, "p50_ms": 1000 * statistics.median(lat),
            "p90_ms": 1000 * pct(lat, 0.90), "p99_ms": 1000 * pct(lat, 0.99), "max_ms": 1000 * max(lat),
            "errors": errors}


async def ceiling(port: int, tokens: list[str], seconds: float, conns: int) -> dict[str, float]:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal errors
        c = await Conn.open(port)
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            status, _ = await c.post("/v1/orders", order_body(i), tokens[i % len(tokens)])
            lat.append(time.perf_counter() - t0)
            if status != 201:
                errors += 1
            i += conns
        c.writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(conns)))
    elapsed = time.perf_counter() - t0
    return {"orders": len(lat), "orders_per_s": len(lat) / elapsed, "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * pct(lat, 0.99), "errors": errors}


async def prepare(users: list[str], redis_url: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    for dsn in DSNS:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()
    from order_api.db import migrate
    await migrate(DSNS)
    ledger = await Ledger.connect(DSNS, max_size=4)
    for u in users:
        await ledger.deposit(u, 10_000_000 * 10_000)
    await ledger.close()
    r = open_redis(redis_url)
    for s in SYMBOLS:
        await r.hset(f"quote:{s}", mapping={"bid_price": "100.0000", "ask_price": "100.0100",
                                            "last_price": "100.0000", "halted": "False", "stale": "False"})
    # market hours come from the feed (issue 11): without an open market every order is market_closed
    await r.hset(MARKET_STATUS, mapping={"version": "1", "system_event": "Q", "market_open": "True"})
    await r.aclose()


async def check() -> list[str]:
    ledger = await Ledger.connect(DSNS, max_size=2)
    try:
        return await ledger.check()
    finally:
        await ledger.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=1000, help="paced phase: orders/s (default %(default)s)")
    ap.add_argument("--seconds", type=float, default=10, help="length of each phase (default %(default)s)")
    ap.add_argument("--warmup", type=float, default=2, help="unmeasured paced seconds first (default %(default)s)")
    ap.add_argument("--users", type=int, default=200, help="distinct users placing orders (default %(default)s)")
    ap.add_argument("--conns", type=int, default=64, help="paced phase: keep-alive connections (default %(default)s)")
    ap.add_argument("--concurrency", type=int, default=32, help="ceiling phase: connections (default %(default)s)")
    ap.add_argument("--pool", type=int, default=20, help="API's PostgreSQL pool size per shard (default %(default)s)")
    ap.add_argument("--redis", default=REDIS_URL, metavar="URL",
                    help="the API's Redis (quotes): a server, or redis+cluster://HOST:PORT,... (default %(default)s)")
    ap.add_argument("--kind", choices=sorted(AMOUNTS), default="whole",
                    help="what each order buys: 1 share, 0.25 of one, or $10 (notional); or 1 share by a stop, "
                         "stop_limit or trailing_stop order (they rest: placement only) (default %(default)s)")
    args = ap.parse_args()
    global AMOUNT
    AMOUNT = AMOUNTS[args.kind]

    users = [f"bench-{i}" for i in range(args.users)]
    print(f"preparing {len(DSNS)} ledger shards and {len(users)} funded users ...", flush=True)
    asyncio.run(prepare(users, args.redis))
    key = os.environ.get("TICKFAN_JWT_SECRET") or new_secret()  # the API refuses to start without one
    tokens = [mint_token(u, key=key) for u in users]
    port = free_port()
    env = {**os.environ, "TICKFAN_DATABASE_URLS": ",".join(DSNS), "TICKFAN_REDIS_URL": args.redis,
           "TICKFAN_JWT_SECRET": key}
    # the per-user rate limit stays on (its cost is measured) but far above the load: a bench user sends
    # thousands of orders a minute, and a 429 is not a placement
    limit = ["--rate-limit", str(10**9)] if "--rate-limit" in subprocess.run(
        [sys.executable, "-m", "tickfan", "api", "--help"], capture_output=True, text=True, env=env).stdout else []
    server = subprocess.Popen([sys.executable, "-m", "tickfan", "api", "--port", str(port), "--no-relay", *limit],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if "order API on" not in line:
            print("the API did not start", file=sys.stderr)
            return 1
        if args.warmup > 0:
            # new pool connections prepare their statements and learn the row types on first use: not measured
            print(f"API up on port {port}; warm-up at {args.rate:,.0f} orders/s for {args.warmup:g} s", flush=True)
            uvloop.run(paced(port, tokens, args.rate, args.warmup, args.conns))
        print(f"paced phase at {args.rate:,.0f} orders/s for {args.seconds:g} s", flush=True)
        meter = CpuMeter(server.pid)
        meter.start()
        p = uvloop.run(paced(port, tokens, args.rate, args.seconds, args.conns))
        p_cpu = meter.stop(int(p["orders"]))
        print(f"paced:   {p['orders']:,.0f} orders, {p['orders_per_s']:,.0f}/s, ack p50 {p['p50_ms']:.2f} ms, "
              f"p90 {p['p90_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms, max {p['max_ms']:.1f} ms, "
              f"errors {p['errors']:.0f}", flush=True)
        print(f"paced:   {cpu_line(p_cpu)}", flush=True)
        print(f"ceiling phase: {args.concurrency} connections back to back for {args.seconds:g} s", flush=True)
        meter.start()
        c = uvloop.run(ceiling(port, tokens, args.seconds, args.concurrency))
        c_cpu = meter.stop(int(c["orders"]))
        print(f"ceiling: {c['orders']:,.0f} orders, {c['orders_per_s']:,.0f}/s, ack p50 {c['p50_ms']:.2f} ms, "
              f"p99 {c['p99_ms']:.2f} ms, errors {c['errors']:.0f}", flush=True)
        print(f"ceiling: {cpu_line(c_cpu)}", flush=True)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    problems = asyncio.run(check())
    print("ledger invariants:", "all hold" if not problems else problems[:5], flush=True)
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
