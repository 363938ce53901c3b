"""A true 10x burst at the open: pre-generated feed, paced sender, the batched handler, recovery, latency.

    .venv/bin/python benchmarks/bench_feed_burst.py [--rate 100000] [--factor 10] [--before 5] [--burst 5] [--after 5]

The live simulator cannot generate a million messages a second, so the sender process generates the whole
session first (untimed: about 40 s for 6M messages), then sends it paced: --rate msg/s, --factor times that
during the burst, stamping each packet's messages with the send time, with a rewinder over everything.
The feed handler runs here on the batched path (``KernelBooks.apply_bytes``) and must end with every
message applied (lost ones recovered from the rewinder). Latency is stamp -> book updated, per batch.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.clock import ns_since_midnight  # noqa: E402
from ingest.handler import open_feeds  # noqa: E402
from ingest.session import State  # noqa: E402


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sender(target: int, rewinder_port: int, schedule: list[tuple[float, float]], symbols: int, ready: mp.Event,
           go: mp.Event, done: mp.Queue) -> None:  # type: ignore[type-arg]
    import uvloop

    from ingest.moldudp64 import PacketBuilder, end_of_session
    from ingest.simulator import ExchangeSimulator, Rewinder
    from ingest.udp import send_packet, sender_socket

    total = int(sum(rate * secs for rate, secs in schedule))
    sim = ExchangeSimulator(symbols, seed=5)
    messages = sim.generate_encoded(total)  # untimed, like everything up to ``ready``
    builder = PacketBuilder("BURST")
    packets: list[tuple[bytearray, np.ndarray, int]] = []  # (packet, timestamp byte positions, messages)
    pending: list[int] = []
    for m in messages:
        full = builder.add(m)
        if full is not None:
            packets.append(_stampable(full))
        pending.append(len(m))
    tail = builder.flush()
    if tail is not None:
        packets.append(_stampable(tail))
    rw = Rewinder("BURST", len(messages) + 10)
    for m in messages:  # the rewinder answers from the whole session (re-sent stamps are generation time)
        rw.append(m)
    del messages, pending
    ready.set()
    go.wait()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: rw, local_addr=("127.0.0.1", rewinder_port))
        sock = sender_socket("127.0.0.1", target)
        sent = 0
        i = 0
        start = time.monotonic()
        phase_start, due = start, 0.0
        for rate, secs in schedule:
            phase_end = phase_start + secs
            while time.monotonic() < phase_end and i < len(packets):
                owed = due + (time.monotonic() - phase_start) * rate - sent
                budget = 4000  # per tick: stamps stay fresh and the loop answers re-requests in between
                while owed > 0 and budget > 0 and i < len(packets):
                    packet, where, n = packets[i]
                    ts = ns_since_midnight()
                    view = np.frombuffer(packet, np.uint8)
                    view[where] = np.tile(np.frombuffer(ts.to_bytes(6, "big"), np.uint8), n)
                    send_packet(sock, bytes(packet))
                    i += 1
                    sent += n
                    owed -= n
                    budget -= n
                await asyncio.sleep(0)
            due += secs * rate
            phase_start = phase_end
        send_packet(sock, end_of_session("BURST", rw.next_seq))
        done.put((sent, time.monotonic() - start))
        await asyncio.sleep(20)  # keep answering re-requests while the handler catches up
        transport.close()

    uvloop.run(run())


def _stampable(packet: bytes) -> tuple[bytearray, np.ndarray, int]:
    """A packet and the positions of its messages' 6 timestamp bytes, to stamp it just before sending."""
    count = int.from_bytes(packet[18:20], "big")
    pos, starts = 20, []
    for _ in range(count):
        starts.append(pos + 2 + 5)  # length prefix, then type(1) locate(2) tracking(2), then the timestamp
        pos += 2 + int.from_bytes(packet[pos:pos + 2], "big")
    where = (np.array(starts, np.int64)[:, None] + np.arange(6)).ravel()
    return bytearray(packet), where, count


async def run(args: argparse.Namespace) -> None:
    from normalize.kernel import KernelBooks, warm_up

    warm_up()
    books = KernelBooks()
    lat_t: list[float] = []
    lat: list[int] = []
    counts: list[int] = []

    def raw_sink(blocks: bytes) -> None:
        books.apply_bytes(blocks)
        now = time.monotonic()
        lat_t.append(now)
        # the newest stamp in the batch: its last message's timestamp
        lat.append(ns_since_midnight() - int(books.exchange_time[: books.high_locate + 1].max()))
        counts.append(0)

    rewinder = ("127.0.0.1", free_udp_port())
    handler = await open_feeds([("127.0.0.1", 0)], books.apply_batch, rewinder=rewinder, recovery_timeout=60.0,
                               raw_sink=raw_sink)
    port = handler.lines[0].get_extra_info("sockname")[1]
    schedule = [(args.rate, args.before), (args.rate * args.factor, args.burst), (args.rate, args.after)]
    ready, go, done = mp.Event(), mp.Event(), mp.Queue()
    proc = mp.get_context("fork").Process(target=sender, args=(port, rewinder[1], schedule, args.symbols, ready,
                                                               go, done))
    proc.start()
    print(f"generating {int(sum(r * s for r, s in schedule)):,} messages in the sender (untimed) ...", flush=True)
    while not ready.is_set():
        await asyncio.sleep(0.5)
    start = time.monotonic()
    go.set()
    while done.empty():
        if not proc.is_alive():
            raise SystemExit(f"the sender died (exit code {proc.exitcode})")
        await asyncio.sleep(0.5)
        c = handler.session.counters
        print(f"  t={time.monotonic() - start:5.1f}s applied {c['messages']:>10,}  gaps {c['gaps']:>4}  "
              f"recovered {c['messages_recovered']:>9,}  {handler.session.state.value}", flush=True)
    sent, span = done.get()
    deadline = time.monotonic() + 60
    while (handler.session.state is State.RECOVERING or not handler.session.ended) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    caught_up = time.monotonic() - start
    handler.close()
    proc.terminate()
    c = handler.session.counters
    t = np.array(lat_t) - start
    ms = np.array(lat) / 1e6
    print(f"\nsent {sent:,} messages in {span:.1f} s: {args.rate:,.0f} msg/s, {args.factor:g}x for {args.burst:g} s")
    phases = [("before", 0, args.before), ("burst", args.before, args.before + args.burst),
              ("after", args.before + args.burst, caught_up)]
    for name, lo, hi in phases:
        sel = (t >= lo) & (t < hi)
        if sel.any():
            print(f"  {name:<7} stamp -> book updated: p50 {np.percentile(ms[sel], 50):8.2f} ms   "
                  f"p99 {np.percentile(ms[sel], 99):8.2f} ms")
    total = (handler.session.next_seq or 1) - 1
    print(f"  sequenced {total:,}; applied {c['messages']:,}; gaps {c['gaps']}; recovered {c['messages_recovered']:,}"
          f" via {c['requests_sent']} requests; missed {c['messages_missed']}; all caught up at {caught_up:.1f} s")
    ok = c["messages_missed"] == 0 and total == sent and c["recovery_failures"] == 0
    print("  LOSSLESS after recovery" if ok else "  NOT lossless")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100_000)
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--burst", type=float, default=5.0)
    parser.add_argument("--after", type=float, default=5.0)
    parser.add_argument("--symbols", type=int, default=10_000)
    args = parser.parse_args()
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
