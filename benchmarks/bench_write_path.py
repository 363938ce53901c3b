"""The fan-out's write path alone: CPU per frame of a flush to N subscribed clients, beside the socket floor.

    .venv/bin/python benchmarks/bench_write_path.py --clients 10000 --flushes 30

One ``FanoutServer`` process (uvloop and picows' transport, as ``tickfan node``) with N clients connected from
other processes (``bench_conn_memory``'s: raw sockets, one ``Subscribe`` of 3-15 heavy-tailed quotes symbols each,
reading everything). No feed: before each flush every symbol's version is bumped, so every client owes a frame;
then one ``_write`` (the hub's flush and the writes) is timed in the server's own CPU time (``time.process_time``,
which a busy shared machine does not inflate the way wall time is), and split into the hub's part (conflation,
grouping, encoding) and the rest (the sends). Reports per flush: frames, µs of CPU per frame in all, in the hub
and in the writes, and the same process's plain ``socket.send`` to the same sockets (the floor: the system call
and the kernel's loopback TCP path, no Python per client beyond a call) of a 102-byte frame and of the same
WebSocket frames the last flush wrote (framed beforehand). Medians over --flushes. ``--profile FILE``: py-spy
(native frames too) on the server over the timed flushes, as collapsed stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_conn_memory import clients, server_books  # noqa: E402

from vocab.limits import raise_open_files  # noqa: E402


def ws_framed(frame: bytes | str) -> bytes:
    """A server's (unmasked) WebSocket frame of one message."""
    data, op = (frame.encode(), 0x81) if isinstance(frame, str) else (frame, 0x82)
    n = len(data)
    if n < 126:
        return bytes((op, n)) + data
    if n < 1 << 16:
        return bytes((op, 126)) + n.to_bytes(2, "big") + data
    return bytes((op, 127)) + n.to_bytes(8, "big") + data


def serve(port: int, symbols: int, ready: Any, go: Any, out: Any, flushes: int, transport: str,
          profile: str | None) -> None:
    from fanout.config import FanoutConfig
    from fanout.server import FanoutServer
    books = server_books(symbols, transport)

    async def main() -> None:
        # flush_interval long: the server's own loop stays out of the way of the timed flushes
        server = FanoutServer(books, FanoutConfig(host="127.0.0.1", port=port, flush_interval=3600.0,
                                                  poll_interval=3600.0, heartbeat_interval=3600.0,
                                                  ping_idle_timeout=3600.0))
        await server.start()
        ready.put(1)
        while go.empty():
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        hub = server.hub
        flush = hub.flush
        hub_cpu = [0.0]
        last: list[Any] = []  # the hub's results of the latest flush (one a window)

        def timed_flush(now_ns: int, send_time_ns: int = 0, **window: Any) -> Any:
            t = time.process_time()
            result = flush(now_ns, send_time_ns=send_time_ns, **window)
            last.append(result)
            hub_cpu[0] += time.process_time() - t
            return result

        hub.flush = timed_flush  # type: ignore[method-assign,assignment]
        rows: list[tuple[int, float, float, float]] = []
        high = books.high_locate + 1
        gc.collect()
        spy = None
        if profile:  # py-spy on this process over the timed flushes only (the sleeps between them are idle)
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(os.getpid()),
                                    "--rate", "500", "--native", "--format", "raw", "--output", profile],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(2.0)
        for _ in range(flushes):
            books.seq[1:high] += 1
            hub_cpu[0] = 0.0
            before = server.stats.frames_sent
            last.clear()
            t = time.process_time()
            await server._write(server._clients)
            cpu = time.process_time() - t
            n = server.stats.frames_sent - before
            rows.append((n, cpu, hub_cpu[0], cpu - hub_cpu[0]))
            await asyncio.sleep(0.3)  # the clients read
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        # the floor: the same number of plain sends of a frame's size to the same sockets
        socks = []
        sock_of = {}
        for client in server._clients.values():
            if client.transport is not None:
                # the transport's own descriptor (a dup of each would need twice the open files); detached after
                socks.append(socket.socket(fileno=client.transport.underlying_transport
                                           .get_extra_info("socket").fileno()))
                socks[-1].setblocking(False)  # a full socket is skipped, never waited for
                sock_of[client.sub.id] = socks[-1]
        payload = b"\x82" + bytes([100]) + b"x" * 100
        floor = []
        for _ in range(min(flushes, 10)):
            t = time.process_time()
            for s in socks:
                try:
                    s.send(payload)
                except OSError:  # full (the client is behind) or gone
                    pass
            floor.append((time.process_time() - t) / max(len(socks), 1))
            await asyncio.sleep(0.3)
        # the floor for the same job: each client's frames of the last flush, WebSocket-framed beforehand
        same = [(sock_of[sub.id], ws_framed(frame)) for result in last for sub, frames in result
                if sub.id in sock_of for frame in frames]
        floor_same = []
        for _ in range(min(flushes, 10)):
            t = time.process_time()
            for s, data in same:
                try:
                    s.send(data)
                except OSError:
                    pass
            floor_same.append((time.process_time() - t) / max(len(same), 1))
            await asyncio.sleep(0.3)
        for s in socks:
            s.detach()
        out.put((rows, floor, floor_same, len(server._clients)))
        await server.close()

    import uvloop
    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000, help="connections (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default %(default)s)")
    parser.add_argument("--symbols", type=int, default=10_000, help="symbols the books hold (default %(default)s)")
    parser.add_argument("--transport", choices=("aiofastnet", "asyncio"), default="aiofastnet",
                        help="asyncio: aiofastnet made unimportable in the server. Since 45fb990 a plain-TCP server "
                             "takes the "
                             "loop's transport anyway, so this changes nothing without TLS; before it, aiofastnet "
                             "(the default) was picows' choice (the comparison in RESULTS)")
    parser.add_argument("--flushes", type=int, default=30, help="timed flushes (default %(default)s)")
    parser.add_argument("--profile", metavar="FILE", help="py-spy (with native frames) on the server over the timed "
                                                          "flushes, collapsed stacks into FILE")
    args = parser.parse_args()
    raise_open_files(1 << 20)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    ready, go, out, connected, hold = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    server = ctx.Process(target=serve, args=(port, args.symbols, ready, go, out, args.flushes, args.transport,
                                             args.profile))
    server.start()
    ready.get(timeout=120)
    per = [args.clients // args.processes + (k < args.clients % args.processes) for k in range(args.processes)]
    procs = [ctx.Process(target=clients, args=(port, n, k, args.symbols, connected, hold)) for k, n in enumerate(per)]
    for p in procs:
        p.start()
    total = sum(connected.get(timeout=600) for _ in procs)
    go.put(1)
    rows, floor, floor_same, served = out.get(timeout=600)
    for _ in procs:
        hold.put(1)
    for p in [*procs, server]:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    frames = statistics.median(r[0] for r in rows)
    per_frame = statistics.median(r[1] / max(r[0], 1) for r in rows) * 1e6
    hub = statistics.median(r[2] / max(r[0], 1) for r in rows) * 1e6
    writes = statistics.median(r[3] / max(r[0], 1) for r in rows) * 1e6
    flush_ms = statistics.median(r[1] for r in rows) * 1e3
    print(f"{total} connected, {served} served; median of {len(rows)} flushes: {frames:.0f} frames, "
          f"{flush_ms:.1f} ms CPU per flush")
    print(f"  CPU per frame: {per_frame:.2f} us (hub {hub:.2f} us, writes {writes:.2f} us); "
          f"plain socket.send floor {statistics.median(floor) * 1e6:.2f} us, "
          f"of the same frames {statistics.median(floor_same) * 1e6:.2f} us")


if __name__ == "__main__":
    main()
