"""Can the simulator sustain a rate over real UDP? Sends for a while and counts what a receiver got.

    .venv/bin/python benchmarks/bench_simulator_udp.py [--rate 100000] [--seconds 10]

The receiver is a separate process that only reads MoldUDP64 headers (sequence and count), so it is not
the bottleneck; it reports messages received, the achieved rate, and any sequence gaps (loss).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import struct
import subprocess
import sys
import time


def receive(port_out: mp.Queue, result: mp.Queue, seconds: float) -> None:  # type: ignore[type-arg]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    port_out.put(sock.getsockname()[1])
    sock.settimeout(2.0)
    header = struct.Struct(">10sQH")
    expected = None
    messages = gaps = missed = 0
    first = last = None
    deadline = time.monotonic() + seconds + 30
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if first is not None:
                break
            continue
        _, seq, count = header.unpack_from(data)
        if count == 0xFFFF:
            break
        if count == 0:
            continue
        now = time.monotonic()
        first = first or now
        last = now
        if expected is not None and seq > expected:
            gaps += 1
            missed += seq - expected
        expected = seq + count
        messages += count
    span = (last or 0) - (first or 0)
    result.put((messages, span, gaps, missed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100_000, help="messages/s to ask for (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to send (default %(default)s)")
    parser.add_argument("--symbols", type=int, default=10_000)
    args = parser.parse_args()
    ports: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    rx = mp.Process(target=receive, args=(ports, results, args.seconds))
    rx.start()
    port = ports.get(timeout=10)
    cmd = [sys.executable, "-m", "tickfan", "simulate", "--target", f"127.0.0.1:{port}", "--rate", str(args.rate),
           "--symbols", str(args.symbols), "--duration", str(args.seconds)]
    print("running:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    messages, span, gaps, missed = results.get(timeout=60)
    rx.join()
    print(f"asked {args.rate:,.0f} msg/s for {args.seconds:.0f} s: received {messages:,} messages over {span:.2f} s "
          f"= {messages / max(span, 1e-9):,.0f} msg/s; gaps {gaps}, messages missed {missed}")


if __name__ == "__main__":
    main()
