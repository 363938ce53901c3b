"""Fan-out under many connections: K WebSocket clients in separate processes against a running server.

    .venv/bin/tickfan demo --rate 20000 &          # or any node with a feed
    .venv/bin/python benchmarks/bench_fanout_load.py --clients 1000 --processes 2 --seconds 20 --node-pid PID

Client processes use picows (the cheapest Python WebSocket client we have), spread their connections over
several 127.0.0.x source addresses so the ephemeral port range is no limit, raise their own open-files
limit to the hard limit, and subscribe each connection to a heavy-tailed watchlist (most watch the hot
tickers): by a ``Subscribe`` message (tickfan and the Python peers), or in the URL path
(``--url ws://.../sub/{symbols}``, nchan's multiplexed channels). Every frame of quotes counts (frames whose
first byte is not the ``quotes`` tag are other messages: snapshots, heartbeats); the exchange timestamp of
every quote in one frame out of ``--sample`` is compared with the client's clock, and every quote of every
frame is counted fresh when it arrives within ``--fresh-ms`` of its exchange timestamp (an update that comes
seconds late is not a price). Reports client updates/s, fresh updates/s, frames/s, latency p50/p99/p999, the
server's CPU over the run and its memory per connection (RSS growth over the run's connections, from /proc,
summed over the server's process tree, when --node-pid is given). ``--capped F --max-rate-hz R``: a fraction F
of the connections asks for at most R updates/s per symbol (``Subscribe.max_rate_hz``, conflation tiers); their
frames and updates are also reported on their own, and the latency is the uncapped clients' only.

``bench_peers.py`` drives the same clients (``run_clients``) against tickfan and the peer servers.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import queue
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tickfan_proto import stream_pb2 as pb  # noqa: E402
from venue.simulator import fixed_universe  # noqa: E402
from vocab.limits import raise_open_files  # noqa: E402

QUOTES_TAG = 0x12  # ServerMessage.quotes, field 2, length-delimited
CONNECT_CONCURRENCY = 64  # handshakes in flight per client process (listen backlogs are ~100 by default)
FRESH_MS = 500.0  # an update delivered within this long of its exchange timestamp counts as fresh


def raise_nofile() -> int:
    """Raise this process's open-files limit as far as it may (the servers it starts inherit it)."""
    return raise_open_files(1 << 20)


def watchlist(rng: random.Random, universe: list[str], weights: list[float], size: tuple[int, int]) -> list[str]:
    return sorted(set(rng.choices(universe, weights=weights, k=rng.randint(*size))))


def watchlists(process: int, clients: int, symbols: int, size: tuple[int, int]) -> list[list[str]]:
    """The watchlists of one client process's connections (deterministic: the feed of a peer can be told
    which symbols anyone watches)."""
    universe = fixed_universe(symbols)
    weights = [1.0 / (r + 1) ** 1.1 for r in range(len(universe))]
    rng = random.Random(process)
    return [watchlist(rng, universe, weights, size) for _ in range(clients)]


def client_process(index: int, clients: int, url: str, symbols: int, size: tuple[int, int], sample: int,
                   connected_q: Any, measure: Any, stop: Any, out: Any, cap: tuple[float, float] = (0.0, 0.0),
                   fresh_ms: float = FRESH_MS) -> None:
    import uvloop
    from picows import WSListener, WSMsgType, ws_connect

    raise_nofile()
    lists = watchlists(index, clients, symbols, size)
    latencies: list[int] = []
    counts = {"frames": 0, "updates": 0, "fresh": 0, "bytes": 0, "errors": 0, "connected": 0, "closed": 0,
              "connect_failures": 0, "other_frames": 0, "capped_frames": 0, "capped_updates": 0, "capped": 0}
    capped_fraction, max_rate_hz = cap
    fresh_ns = int(fresh_ms * 1e6)
    measuring = [False]
    from_quote = pb.ServerMessage.FromString
    in_path = "{symbols}" in url
    # a ServerMessage may come as one frame (tickfan) or as several WebSocket frames of one message each

    class Client(WSListener):  # type: ignore[misc]
        def __init__(self, symbols_: list[str], capped: bool = False) -> None:
            self.symbols = symbols_
            self.capped = capped

        def on_ws_connected(self, transport: Any) -> None:
            counts["connected"] += 1
            counts["capped"] += self.capped
            if not in_path:
                sub = pb.Subscribe(symbols=self.symbols)
                if self.capped:
                    sub.max_rate_hz = max_rate_hz
                msg = pb.ClientMessage(subscribe=sub)
                transport.send(WSMsgType.BINARY, msg.SerializeToString())

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if not measuring[0]:
                return
            if counts["frames"] & 255 == 255 and stop.is_set():
                # the window is over: a server seconds behind keeps this loop busy with its backlog, and the
                # coroutine that would notice the stop may not run for a long time (socketify at 10,000 clients)
                measuring[0] = False
                return
            data = frame.get_payload_as_bytes()
            if not data or data[0] != QUOTES_TAG:
                counts["other_frames"] += 1
                return
            now = time.time_ns()  # exchange_time_ns is Unix epoch ns
            quotes = from_quote(data).quotes.quotes
            counts["frames"] += 1
            counts["bytes"] += len(data)
            counts["updates"] += len(quotes)
            if self.capped:
                counts["capped_frames"] += 1
                counts["capped_updates"] += len(quotes)
            cut = now - fresh_ns
            # decoding is the client's cost, not the server's; a capped client's quotes wait for it by design
            if counts["frames"] % sample == 0 and not self.capped:
                stamps = [q.exchange_time_ns for q in quotes]
                latencies.extend(now - t for t in stamps)
                counts["fresh"] += sum(t >= cut for t in stamps)
            else:
                counts["fresh"] += sum(q.exchange_time_ns >= cut for q in quotes)

        def on_ws_disconnected(self, transport: Any) -> None:
            counts["closed"] += 1

    async def connect_one(i: int, gate: asyncio.Semaphore) -> None:
        host = url.split("//", 1)[1].split(":", 1)[0]
        source = f"127.0.0.{2 + (index * clients + i) // 20_000 % 250}" if host.startswith("127.") else None
        target = url.replace("{symbols}", ",".join(lists[i])) if in_path else url
        async with gate:
            for attempt in range(3):
                try:
                    await ws_connect(lambda: Client(lists[i], i < capped_fraction * clients), target,
                                     local_addr=(source, 0) if source else None)
                    return
                except (TimeoutError, OSError):
                    await asyncio.sleep(0.5 * (attempt + 1))
                except Exception:
                    break
            counts["connect_failures"] += 1

    async def main() -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        await asyncio.gather(*(connect_one(i, gate) for i in range(clients)))
        connected_q.put((index, counts["connected"], counts["connect_failures"]))
        while not measure.is_set() and not stop.is_set():
            await asyncio.sleep(0.02)
        closed_before = counts["closed"]
        measuring[0] = True
        started = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        measuring[0] = False
        counts["measured_s"] = time.monotonic() - started  # type: ignore[assignment]
        counts["closed_while_measuring"] = counts["closed"] - closed_before

    uvloop.run(main())
    out.put((counts, latencies))
    out.close()
    out.join_thread()  # the results are in the pipe before we go
    os._exit(0)  # tens of thousands of sockets: let the kernel close them, not a slow teardown


# ---------------------------------------------------------------------------------------------- server side
def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def proc_stat(pids: list[int]) -> tuple[float, int]:
    """(CPU seconds, resident bytes) summed over processes (ones that are gone count nothing)."""
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu, rss = 0.0, 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / ticks
        rss += int(fields[21]) * page
    return cpu, rss


@dataclass
class LoadResult:
    clients: int
    connected: int = 0
    connect_failures: int = 0
    closed: int = 0
    seconds: float = 0.0
    updates_per_s: float = 0.0
    fresh_updates_per_s: float = 0.0  # delivered within fresh_ms of the exchange timestamp
    fresh_ms: float = FRESH_MS
    frames_per_s: float = 0.0
    mb_per_s: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    p999_ms: float = float("nan")
    samples: int = 0
    server_cpu: float = float("nan")  # cores while measuring
    client_cpu: float = float("nan")
    server_rss_mb: float = float("nan")
    kb_per_connection: float = float("nan")
    connect_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{self.connected:,} connected of {self.clients:,} ({self.connect_failures} failed, "
               f"{self.closed} closed while measuring) in {self.connect_seconds:.0f} s; "
               f"{self.seconds:.0f} s measured",
               f"  client updates delivered {self.updates_per_s:>12,.0f} /s",
               f"{f'  fresh (<= {self.fresh_ms:g} ms)':<27}{self.fresh_updates_per_s:>12,.0f} /s",
               f"  frames                   {self.frames_per_s:>12,.0f} /s   ({self.mb_per_s:,.1f} MB/s)"]
        if self.samples:
            out.append(f"  latency exchange -> client: p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms  "
                       f"p99.9 {self.p999_ms:.1f} ms ({self.samples:,} samples)")
        if self.server_cpu == self.server_cpu:
            out.append(f"  server CPU {self.server_cpu * 100:.0f}% of a core while measuring (clients "
                       f"{self.client_cpu * 100:.0f}%); server memory {self.server_rss_mb:,.0f} MB, "
                       f"{self.kb_per_connection:,.1f} kB per connection")
        if self.extra.get("capped"):
            out.append(f"  of which the {self.extra['capped']:,} capped clients: "
                       f"{self.extra['capped_frames_per_s']:,.0f} frames/s, "
                       f"{self.extra['capped_updates_per_s']:,.0f} updates/s")
        if self.extra.get("server_cpu_by_pid"):
            out.append("  server CPU by process (cores): " + ", ".join(
                f"{pid}: {c:.2f}" for pid, c in self.extra["server_cpu_by_pid"].items()))
        return out


def run_clients(url: str, clients: int, processes: int, seconds: float, *, symbols: int = 10_000,
                size: tuple[int, int] = (3, 15), sample: int = 4, warmup: float = 3.0,
                server_pids: Callable[[], list[int]] | None = None, connect_timeout: float = 300.0,
                on_connected: Callable[[], None] | None = None, on_measure: Callable[[], None] | None = None,
                progress: bool = True, capped: float = 0.0, max_rate_hz: float = 0.0,
                fresh_ms: float = FRESH_MS) -> LoadResult:
    """Connect ``clients`` over ``processes``, call ``on_connected`` (the feed goes to full rate), wait
    ``warmup`` seconds, measure for ``seconds``. Bounded: a process that does not report in time is killed.
    ``capped``: the fraction of each process's connections that ask for at most ``max_rate_hz``."""
    ctx = mp.get_context("fork")
    out, connected_q = ctx.Queue(), ctx.Queue()
    measure, stop = ctx.Event(), ctx.Event()
    per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    pids = server_pids() if server_pids else []
    base = proc_stat(pids) if pids else None
    procs = [ctx.Process(target=client_process, args=(i, per[i], url, symbols, size, sample, connected_q,
                                                      measure, stop, out, (capped, max_rate_hz), fresh_ms),
                             daemon=True)
             for i in range(processes)]
    result = LoadResult(clients, fresh_ms=fresh_ms)
    started = time.monotonic()
    try:
        for p in procs:
            p.start()
        reported = 0
        deadline = started + connect_timeout
        while reported < processes:
            try:
                _, ok, failed = connected_q.get(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
                reported += 1
                result.connected += ok
                result.connect_failures += failed
            except Exception:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"clients not connected after {connect_timeout:.0f} s") from None
                if progress:
                    print(f"  ... connecting ({time.monotonic() - started:.0f} s)", flush=True)
        result.connect_seconds = time.monotonic() - started
        if progress:
            print(f"  {result.connected:,} connected in {result.connect_seconds:.1f} s", flush=True)
        if on_connected is not None:
            on_connected()
        time.sleep(warmup)
        pids = server_pids() if server_pids else []
        client_pids = [p.pid for p in procs if p.pid is not None]
        before, cbefore = (proc_stat(pids), proc_stat(client_pids))
        per_pid_before = {pid: proc_stat([pid])[0] for pid in pids}
        t0 = time.monotonic()
        measure.set()
        if on_measure is not None:
            on_measure()
        while time.monotonic() - t0 < seconds:
            time.sleep(min(5.0, seconds - (time.monotonic() - t0)))
            if progress:
                print(f"  ... measuring {time.monotonic() - t0:.0f}/{seconds:.0f} s", flush=True)
        after, cafter = proc_stat(pids), proc_stat(client_pids)
        per_pid = {pid: proc_stat([pid])[0] for pid in pids}
        elapsed = time.monotonic() - t0
        stop.set()
        try:
            results = [out.get(timeout=120) for _ in procs]
        except queue.Empty:
            raise TimeoutError("a client process did not report within 120 s of the window's end") from None
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    total: dict[str, float] = {k: sum(r[0].get(k, 0) for r in results) for k in results[0][0]}
    lat = np.concatenate([np.array(r[1], dtype=np.int64) for r in results]) / 1e6
    result.seconds = elapsed
    result.closed = int(total.get("closed_while_measuring", 0))
    result.updates_per_s = total["updates"] / elapsed
    result.fresh_updates_per_s = total["fresh"] / elapsed
    result.frames_per_s = total["frames"] / elapsed
    result.mb_per_s = total["bytes"] / elapsed / 1e6
    result.samples = len(lat)
    if total.get("capped"):
        result.extra.update(capped=int(total["capped"]), capped_frames_per_s=total["capped_frames"] / elapsed,
                            capped_updates_per_s=total["capped_updates"] / elapsed)
    if len(lat):
        result.p50_ms, result.p99_ms, result.p999_ms = (float(x) for x in np.percentile(lat, [50, 99, 99.9]))
    if base is not None:
        result.server_cpu = (after[0] - before[0]) / elapsed
        result.server_rss_mb = after[1] / 1e6
        result.kb_per_connection = (after[1] - base[1]) / max(result.connected, 1) / 1e3
        result.client_cpu = (cafter[0] - cbefore[0]) / elapsed
        result.extra["server_cpu_by_pid"] = {pid: round((per_pid[pid] - per_pid_before.get(pid, 0.0)) / elapsed, 2)
                                             for pid in per_pid}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8765/v1/stream",
                        help="server URL; '{symbols}' in it is replaced by the comma-separated watchlist "
                             "and no Subscribe message is sent (default %(default)s)")
    parser.add_argument("--clients", type=int, default=1000, help="connections in all (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after connecting (default %(default)s)")
    parser.add_argument("--symbols", type=int, default=10_000, help="universe size the node serves")
    parser.add_argument("--watch", default="3-15", help="watchlist size range per client (default %(default)s)")
    parser.add_argument("--sample", type=int, default=4, help="take latencies from 1 frame in N")
    parser.add_argument("--capped", type=float, default=0.0,
                        help="fraction of the connections that send --max-rate-hz (default %(default)s)")
    parser.add_argument("--max-rate-hz", type=float, default=2.0,
                        help="the capped connections' Subscribe.max_rate_hz (default %(default)s)")
    parser.add_argument("--fresh-ms", type=float, default=FRESH_MS,
                        help="an update delivered within this many ms of its exchange timestamp is fresh "
                             "(default %(default)s)")
    parser.add_argument("--node-pid", type=int, default=None,
                        help="server process (its descendants are counted too), for CPU and memory")
    args = parser.parse_args()
    lo, _, hi = args.watch.partition("-")
    res = run_clients(args.url, args.clients, args.processes, args.seconds, symbols=args.symbols,
                      size=(int(lo), int(hi or lo)), sample=args.sample, warmup=args.warmup,
                      server_pids=(lambda: process_tree(args.node_pid)) if args.node_pid else None,
                      capped=args.capped, max_rate_hz=args.max_rate_hz, fresh_ms=args.fresh_ms)
    print("\n".join(res.lines()))


if __name__ == "__main__":
    main()
