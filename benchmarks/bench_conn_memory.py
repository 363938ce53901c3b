"""What a fan-out connection costs in memory: N idle subscribed clients against ``FanoutServer`` processes.

    .venv/bin/python benchmarks/bench_conn_memory.py --clients 10000
    .venv/bin/python benchmarks/bench_conn_memory.py --clients 50000 --servers 3 --processes 4
    .venv/bin/python benchmarks/bench_conn_memory.py --clients 10000 --tracemalloc   # where it goes (slower)

Each server process (``--servers`` of them on one port, SO_REUSEPORT: the open-files hard limit here is 20,000
per process) serves books of ``--symbols`` symbols with no feed; client processes open raw TCP connections
from several 127.0.0.x addresses, upgrade, and send one ``Subscribe`` of 3-15 quotes symbols each (what
``bench_fanout_load.py``'s clients watch), then hold them, reading what arrives (snapshots, heartbeats). Reports
each server's RSS growth from before the first connection to all of them connected and subscribed, per
connection; with ``--tracemalloc`` also the Python allocations per connection by file and line (the rest of the
RSS growth is what C allocates: picows' buffers, the event loop's transports, malloc's overhead). The kernel's
socket buffers are not in RSS (``--socket-send-buffer`` bounds them).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import multiprocessing as mp
import os
import random
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tickfan_proto import stream_pb2 as pb  # noqa: E402
from venue.simulator import fixed_universe  # noqa: E402
from vocab.limits import raise_open_files  # noqa: E402

CONNECT_CONCURRENCY = 64


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_books(symbols: int, transport: str) -> Any:
    """In a server process: the transport chosen, open files raised, a token key for anonymous clients, and
    books of ``symbols`` priced symbols for the server to serve."""
    from ingest.messages import AddOrder, StockDirectory, SystemEvent
    from normalize import Books

    if transport == "asyncio":
        sys.modules["aiofastnet"] = None  # type: ignore[assignment]  # the server then takes the loop's own
    raise_open_files(1 << 20)
    os.environ.setdefault("TICKFAN_JWT_SECRET", "bench-only-secret-" + "x" * 32)  # anonymous clients here
    books = Books()
    books.apply(SystemEvent(0, 0, 1, "Q"))
    for loc, sym in enumerate(fixed_universe(symbols), start=1):
        books.apply(StockDirectory(loc, 0, 1, sym, "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1", "N", 0, "N"))
        books.apply(AddOrder(loc, 0, 2, 2 * loc, "B", 100, sym, 1_000_000))
        books.apply(AddOrder(loc, 0, 3, 2 * loc + 1, "S", 100, sym, 1_000_100))
    return books


def serve(port: int, symbols: int, ready: Any, go: Any, out: Any, trace: bool, send_buffer: int, loop: str,
          transport: str, trim: bool) -> None:
    from fanout.config import FanoutConfig
    from fanout.server import FanoutServer
    books = server_books(symbols, transport)

    async def main() -> None:
        # the raw clients do not answer pings: none are sent while they are held
        server = FanoutServer(books, FanoutConfig(host="127.0.0.1", port=port, reuse_port=True,
                                                  ping_idle_timeout=3600.0, socket_send_buffer=send_buffer))
        await server.start()
        gc.collect()
        if trace:
            import tracemalloc
            tracemalloc.start(1)
        before = rss_kb()
        snap0 = tracemalloc.take_snapshot() if trace else None
        ready.put(before)
        while go.empty():
            await asyncio.sleep(0.2)
        gc.collect()
        after, clients = rss_kb(), len(server._clients)
        top: list[tuple[str, int]] = []
        if trace:
            assert snap0 is not None
            snap1 = tracemalloc.take_snapshot()
            lines = snap1.compare_to(snap0, "lineno")
            top = [(str(s.traceback[0]), s.size_diff) for s in lines[:30]]
            top.append(("(every traced allocation)", sum(s.size_diff for s in lines)))
            by_file = snap1.compare_to(snap0, "filename")[:12]
            top += [(f"(file) {s.traceback[0].filename}", s.size_diff) for s in by_file]
        trimmed = after
        if trim:  # what glibc holds free inside the heap, given back (the figure without it is the one reported)
            import ctypes
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            trimmed = rss_kb()
        out.put((os.getpid(), before, after, clients, top, trimmed))
        await server.close()

    if loop == "uvloop":  # what ``tickfan node`` runs
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())


def ws_frame(payload: bytes) -> bytes:
    """A masked binary WebSocket frame (a client's)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x82, 0x80 | n]) if n < 126 else bytes([0x82, 0x80 | 126]) + struct.pack("!H", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def clients(port: int, n: int, proc: int, symbols: int, connected: Any, hold: Any) -> None:
    raise_open_files(1 << 20)
    universe = fixed_universe(symbols)
    weights = [1.0 / (r + 1) ** 1.1 for r in range(len(universe))]
    rng = random.Random(proc)

    async def one(i: int, gate: asyncio.Semaphore, conns: list[Any]) -> None:
        watch = sorted(set(rng.choices(universe, weights=weights, k=rng.randint(3, 15))))
        src = f"127.0.{proc + 1}.{i % 250 + 1}"
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 60)
            except (OSError, TimeoutError) as e:
                print(f"connection {i} failed: {e!r}", file=sys.stderr)
                return
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                         .encode())
            await reader.readuntil(b"\r\n\r\n")
            msg = pb.ClientMessage(subscribe=pb.Subscribe(symbols=watch))
            writer.write(ws_frame(msg.SerializeToString()))
        conns.append((reader, writer))

    async def drain(conns: list[Any]) -> None:
        while True:
            for reader, _ in conns:
                reader._buffer.clear()  # what arrived is not looked at: only the server's memory counts
            await asyncio.sleep(0.5)

    async def main() -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        conns: list[Any] = []
        await asyncio.gather(*(one(i, gate, conns) for i in range(n)))
        connected.put(len(conns))
        task = asyncio.create_task(drain(conns))
        while hold.empty():
            await asyncio.sleep(0.2)
        task.cancel()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000, help="connections in all (default %(default)s)")
    parser.add_argument("--servers", type=int, default=1, help="server processes on one port (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default %(default)s)")
    parser.add_argument("--symbols", type=int, default=10_000, help="symbols the books hold (default %(default)s)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after all connected (default %(default)s)")
    parser.add_argument("--socket-send-buffer", type=int, default=None, metavar="BYTES",
                        help="the servers' SO_SNDBUF per client (default: FanoutConfig's)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the servers' event loop (default %(default)s, as tickfan node)")
    parser.add_argument("--transport", choices=("aiofastnet", "asyncio"), default="aiofastnet",
                        help="asyncio: aiofastnet made unimportable in the server. Since 45fb990 a plain-TCP server "
                             "takes the "
                             "loop's transport anyway, so this changes nothing without TLS; before it, aiofastnet "
                             "(the default) was picows' choice (the comparison in RESULTS)")
    parser.add_argument("--tracemalloc", action="store_true", help="Python allocations per connection, by line")
    parser.add_argument("--trim", action="store_true",
                        help="also the RSS after malloc_trim(0) in each server (what malloc held free)")
    args = parser.parse_args()
    raise_open_files(1 << 20)
    from fanout.config import FanoutConfig
    send_buffer = FanoutConfig().socket_send_buffer if args.socket_send_buffer is None else args.socket_send_buffer
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    ready, go, out, connected, hold = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    servers = [ctx.Process(target=serve, args=(port, args.symbols, ready, go, out, args.tracemalloc, send_buffer,
                                                    args.loop, args.transport, args.trim))
               for _ in range(args.servers)]
    for p in servers:
        p.start()
    for _ in servers:
        ready.get(timeout=120)
    started = time.monotonic()
    per = [args.clients // args.processes + (k < args.clients % args.processes) for k in range(args.processes)]
    procs = [ctx.Process(target=clients, args=(port, n, k, args.symbols, connected, hold)) for k, n in enumerate(per)]
    for p in procs:
        p.start()
    total = sum(connected.get(timeout=600) for _ in procs)
    print(f"{total} connected in {time.monotonic() - started:.1f} s", flush=True)
    time.sleep(args.settle)
    for _ in servers:
        go.put(1)
    results = [out.get(timeout=120) for _ in servers]
    for _ in procs:
        hold.put(1)
    for p in procs + servers:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    grown = sum(r[2] - r[1] for r in results)
    served = sum(r[3] for r in results)
    for pid, before, after, n, top, trimmed in results:
        print(f"server {pid}: {n} clients, RSS {before / 1024:.1f} MB -> {after / 1024:.1f} MB, "
              f"{(after - before) * 1024 / max(n, 1) / 1000:.2f} kB per connection"
              + (f"; after malloc_trim {(trimmed - before) * 1024 / max(n, 1) / 1000:.2f} kB" if args.trim else ""))
        for where, size in top:
            print(f"    {size / max(n, 1):8.0f} B/conn  {where}")
    print(f"RSS per connection: {grown * 1024 / max(served, 1) / 1000:.2f} kB ({served} connections, "
          f"{args.servers} server process(es), {args.loop}, {args.transport} transport)")


if __name__ == "__main__":
    main()
