"""The limit fan-out works against: how many socket writes per second one core makes, whatever the library.

    .venv/bin/python benchmarks/bench_socket_writes.py [--connections 100] [--seconds 3]

A writer process sends over N loopback TCP connections (TCP_NODELAY on) as fast as it can, in two ways:
one small write per update (~60 bytes, a quote), and one write per connection carrying 50 updates (what
conflation + one frame per client per flush does). A reader process drains every connection. Reports
writes/s and updates/s for both: throughput comes from packing updates into writes, not from the library.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import selectors
import socket
import time


def reader(port_q: mp.Queue, n: int, stop: mp.Event) -> None:  # type: ignore[type-arg]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(n)
    port_q.put(srv.getsockname()[1])
    sel = selectors.DefaultSelector()
    for _ in range(n):
        conn, _ = srv.accept()
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ)
    while not stop.is_set():
        for key, _ in sel.select(0.1):
            try:
                key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            except BlockingIOError:
                pass


def run(n: int, seconds: float, per_write: int) -> tuple[float, float]:
    port_q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    stop = mp.Event()
    rd = mp.Process(target=reader, args=(port_q, n, stop))
    rd.start()
    port = port_q.get()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    payload = b"x" * (60 * per_write)
    writes = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        for s in socks:
            s.send(payload)
        writes += n
    elapsed = time.perf_counter() - start
    stop.set()
    rd.join()
    for s in socks:
        s.close()
    return writes / elapsed, writes * per_write / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=50, help="updates per write in the packed case")
    args = parser.parse_args()
    w1, u1 = run(args.connections, args.seconds, 1)
    wb, ub = run(args.connections, args.seconds, args.batch)
    print(f"{args.connections} loopback TCP connections, TCP_NODELAY, one writer process:")
    print(f"  one ~60-byte write per update:      {w1:>12,.0f} writes/s  {u1:>14,.0f} updates/s")
    print(f"  {args.batch} updates per write (~{60 * args.batch} bytes): {wb:>12,.0f} writes/s  {ub:>14,.0f} updates/s")


if __name__ == "__main__":
    main()
