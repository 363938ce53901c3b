"""The open's 10x burst into a live node, with clients subscribed: ``bench_feed_burst.py``'s session and rewinder,
sent into a whole ``tickfan`` node (feed handler on the default batched path, books, bars, fan-out) while
``--clients`` WebSocket clients (``bench_fanout_load.run_clients``) watch it.

    .venv/bin/python benchmarks/bench_feed_burst_node.py --rate 100000 --factor 10 --before 5 --burst 60 --after 5 \\
        --clients 1000

The node is ``tickfan.node.Node`` (what ``tickfan node`` runs) in this process, so its books can be compared,
array by array, with books built from the session file directly (``bench_feed_burst.reference_books``); the
clients run in ``--processes`` processes of their own; the rewinder in one of its own, serving the session file
through an index (``MmapRewinder``: a 60 s burst is 61M messages, too many to hold as Python objects). The
sender streams the file: packets are cut once (untimed) into an index, and each packet is the file's bytes
behind a MoldUDP64 header, its messages stamped with the moment it is sent (the capture format IS the
MoldUDP64 message block). Latency: for each batch the node applies, its first message's stamp (the oldest in
the batch) -> the batch applied; grouped by the phase it was sent in. Lossless: every message sequenced, no
gap left unrecovered, no recovery failure, and the books EQUAL to the reference's.
"""

from __future__ import annotations

import argparse
import asyncio
import mmap
import multiprocessing as mp
import os
import socket
import sys
import time
from multiprocessing.sharedctypes import RawArray
from pathlib import Path
from typing import Any

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fanout_load import run_clients  # noqa: E402
from bench_feed_burst import DAY, SESSION, compare_books, free_udp_port, reference_books, session_file  # noqa: E402

from ingest.batch import frame  # noqa: E402
from ingest.moldudp64 import HEADER, HEADER_SIZE, MAX_PAYLOAD, end_of_session, session_bytes  # noqa: E402
from ingest.session import State  # noqa: E402
from vocab.clock import itch_now  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@numba.njit(cache=True)
def _cut(buf: Any, end: int, max_block: int, starts: Any, counts: Any) -> int:  # pragma: no cover
    """Greedy packets as ``PacketBuilder`` makes them: as many whole messages as fit in ``max_block`` bytes."""
    pos = 0
    k = 0
    while pos < end:
        starts[k] = pos
        size = 0
        n = 0
        while pos < end:
            m = 2 + ((int(buf[pos]) << 8) | int(buf[pos + 1]))
            if n > 0 and size + m > max_block:
                break
            size += m
            pos += m
            n += 1
        counts[k] = n
        k += 1
    starts[k] = pos
    return k


def packet_index(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Where each packet's messages start in the file (one more entry: the end) and how many it has."""
    buf = np.asarray(np.memmap(path, np.uint8, mode="r"))
    size = int(buf.shape[0])
    starts = np.empty(size // 3 + 2, np.int64)
    counts = np.empty(size // 3 + 1, np.int64)
    k = _cut(buf, size, MAX_PAYLOAD - HEADER_SIZE, starts, counts)
    return starts[: k + 1].copy(), counts[:k].copy()


def sender_main(target: int, schedule: list[tuple[float, float]], path: Path, sent_ns: Any, ready: Any, go: Any,
                done: Any) -> None:
    from ingest.udp import send_packet, sender_socket

    starts, counts = packet_index(path)
    first_seq = np.concatenate(([1], 1 + np.cumsum(counts)[:-1]))
    # where each message's 6 stamp bytes sit in its packet (header, then type, locate, tracking)
    offsets, _ = frame(np.asarray(np.memmap(path, np.uint8, mode="r")), int(starts[-1]))
    stamp_at = offsets - np.repeat(starts[:-1], counts) + HEADER_SIZE + 5
    del offsets
    six = np.arange(6)
    f = path.open("rb")
    data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    sent_arr = np.frombuffer(sent_ns, np.int64)
    sock = sender_socket("127.0.0.1", target)
    session = session_bytes(SESSION)
    pack = HEADER.pack
    ready.set()
    go.wait()
    sent = i = 0
    npackets = len(counts)
    start = time.monotonic()
    start_ns = itch_now(DAY)
    phase_start = start
    phases: list[tuple[int, float]] = []
    for k, (rate, secs) in enumerate(schedule):
        phase_end = phase_start + secs
        last = k == len(schedule) - 1
        base = sent  # a shortfall is not banked into the next phase
        while i < npackets:
            now = time.monotonic()
            if now >= phase_end and not last:
                break
            owed = base + (now - phase_start) * rate - sent
            if owed <= 0:
                time.sleep(0.0001)
                continue
            while owed > 0 and i < npackets:
                s, e, n, seq = int(starts[i]), int(starts[i + 1]), int(counts[i]), int(first_seq[i])
                ts = itch_now(DAY)
                packet = bytearray(pack(session, seq, n) + data[s:e])
                view = np.frombuffer(packet, np.uint8)
                view[(stamp_at[seq - 1:seq - 1 + n, None] + six).ravel()] = np.tile(
                    np.frombuffer(ts.to_bytes(6, "big"), np.uint8), n)
                send_packet(sock, bytes(packet))
                sent_arr[seq:seq + n] = ts  # a re-sent message is stamped as its packet was
                i += 1
                sent += n
                owed -= n
        phases.append((sent - base, time.monotonic() - phase_start))
        phase_start = max(phase_end, time.monotonic())
    done.put((sent, time.monotonic() - start, start_ns, phases, 0))
    # the End of Session, again and again until terminated, as an exchange's heartbeats keep coming: a node whose
    # queue was full dropped the last packets and the first announcements, and learns the tail's gap from these
    eos = end_of_session(SESSION, sent + 1)
    while True:
        send_packet(sock, eos)
        time.sleep(0.25)


def rewinder_main(path: Path, sent_ns: Any, port: int, ready: Any) -> None:
    """The re-request server over the session file: message ``seq`` is read at its offset (an index of the file,
    8 bytes a message), re-stamped with the stamp its packet was first sent with."""
    import uvloop

    from venue.rewinder import Rewinder

    buf = np.asarray(np.memmap(path, np.uint8, mode="r"))
    size = int(buf.shape[0])
    offsets, _ = frame(buf, size)  # every message is well formed: the index is every message's
    f = path.open("rb")
    data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    sent = np.frombuffer(sent_ns, np.int64)

    class MmapRewinder(Rewinder):
        def message(self, seq: int) -> bytes:
            off = int(offsets[seq - 1])
            n = (data[off - 2] << 8) | data[off - 1]
            m = data[off:off + n]
            t = int(sent[seq])
            return m[:5] + t.to_bytes(6, "big") + m[11:] if t else m

    rw = MmapRewinder(SESSION, 1)
    rw.next_seq = len(offsets) + 1
    rw._held = len(offsets)

    async def serve() -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: rw, local_addr=("127.0.0.1", port))
        ready.set()
        await asyncio.Event().wait()  # until terminated

    uvloop.run(serve())


async def run(args: argparse.Namespace) -> bool:
    from tickfan.node import Node, NodeConfig

    schedule = [(args.rate, args.before), (args.rate * args.factor, args.burst), (args.rate, args.after)]
    total = int(sum(rate * secs for rate, secs in schedule))
    path = session_file(args.cache_dir, args.symbols, total)
    port, ws, http = free_udp_port(), free_port(), free_port()
    rewinder = ("127.0.0.1", free_udp_port())
    node = Node(NodeConfig(feeds=[("127.0.0.1", port)], rewinder=rewinder, session=SESSION, session_date=DAY,
                           recovery_timeout=args.recovery_timeout, ws=("127.0.0.1", ws), http=("127.0.0.1", http),
                           batched=not args.plain))
    await node.start()
    handler = node.feed
    assert handler is not None and handler.raw_sink is not None or args.plain
    assert handler is not None
    books = node.books
    batches: list[tuple[float, int, int]] = []  # (applied at, messages, first message's stamp -> applied ns)
    if handler.raw_sink is not None:
        apply = handler.raw_sink
        counters = books.counters

        def timed(blocks: bytes) -> None:
            before = counters["messages"]
            apply(blocks)
            now = itch_now(DAY)
            batches.append((time.monotonic(), counters["messages"] - before,
                            now - int.from_bytes(blocks[7:13], "big")))

        handler.raw_sink = timed
    sent_ns = RawArray("q", total + 2)
    ctx = mp.get_context("fork")
    ready, go, done, rw_ready = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Event()
    rw_proc = ctx.Process(target=rewinder_main, args=(path, sent_ns, rewinder[1], rw_ready), daemon=True)
    proc = ctx.Process(target=sender_main, args=(port, schedule, path, sent_ns, ready, go, done), daemon=True)
    rw_proc.start()
    proc.start()
    print("indexing the session in the sender and the rewinder (untimed) ...", flush=True)
    while not (ready.is_set() and rw_ready.is_set()):
        if not (proc.is_alive() and rw_proc.is_alive()):
            raise SystemExit(f"the sender or the rewinder died (exit codes {proc.exitcode}, {rw_proc.exitcode})")
        await asyncio.sleep(0.2)
    session = handler.session
    c = session.counters
    go.set()
    start = time.monotonic()
    cpu0 = time.process_time()  # this process is the node (clients, sender, rewinder run in their own)
    # clients subscribe once the node knows the symbols (the session's directory comes first), during "before"
    while len(books.locate_of) < args.symbols and time.monotonic() - start < args.before:
        await asyncio.sleep(0.05)
    connected = asyncio.Event()
    loop = asyncio.get_running_loop()
    load = asyncio.create_task(asyncio.to_thread(
        run_clients, f"ws://127.0.0.1:{ws}/v1/stream", args.clients, args.processes,
        sum(s for _, s in schedule) - (time.monotonic() - start), symbols=args.symbols, warmup=0.0,
        on_connected=lambda: loop.call_soon_threadsafe(connected.set), progress=args.verbose,
        server_pids=lambda: [os.getpid()]))
    await connected.wait()
    print(f"{args.clients:,} clients connected {time.monotonic() - start:.1f} s after the first packet", flush=True)
    while done.empty():
        if not proc.is_alive():
            raise SystemExit(f"the sender died (exit code {proc.exitcode})")
        await asyncio.sleep(0.5)
        if args.verbose:
            print(f"  t={time.monotonic() - start:5.1f}s sequenced {(session.next_seq or 1) - 1:>11,}  queued "
                  f"{handler.queued_bytes >> 10:>7,} KiB  gaps {c['gaps']:>4}  recovered "
                  f"{c['messages_recovered']:>9,}  dropped {handler.dropped_datagrams:>6,}  {session.state.value}",
                  flush=True)
    sent, span, start_ns, phases_sent, _ = done.get()
    deadline = time.monotonic() + args.drain
    # not waiting for the End of Session: its few datagrams may be dropped while the node's queue is full
    while (session.state is State.RECOVERING or (session.next_seq or 1) <= sent or handler.queued_bytes) \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if args.verbose:
            print(f"  draining t={time.monotonic() - start:5.1f}s sequenced {(session.next_seq or 1) - 1:>11,} of "
                  f"{sent:,}  queued {handler.queued_bytes >> 10:>7,} KiB  {session.state.value}", flush=True)
    caught_up = time.monotonic() - start
    node_cpu = time.process_time() - cpu0
    clients = await load
    for p in (proc, rw_proc):
        p.terminate()
        p.join()
    sequenced = (session.next_seq or 1) - 1
    print(f"\nsent {sent:,} messages in {span:.1f} s; the node caught up at {caught_up:.1f} s")
    names = (f"before ({args.rate:,.0f}/s asked)", f"burst ({args.rate * args.factor:,.0f}/s asked)",
             f"after ({args.rate:,.0f}/s asked)")
    bt = np.array([t for t, _, _ in batches]) - start
    bn = np.array([n for _, n, _ in batches])
    lat = np.array([ns for _, _, ns in batches]) / 1e6
    edges = np.cumsum([0.0, *(s for _, s in phases_sent)])
    edges[-1] = max(edges[-1], 1e9)
    print(f"  {'phase':<27} {'sent msg/s':>11} {'applied msg/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for k, name in enumerate(names):
        n_sent, secs = phases_sent[k]
        lo, hi = edges[k], edges[k + 1]
        sel = (bt >= lo) & (bt < hi)
        hi_applied = min(hi, lo + secs)
        applied = bn[(bt >= lo) & (bt < hi_applied)].sum() / max(hi_applied - lo, 1e-9)
        p50, p99, mx = (np.percentile(lat[sel], 50), np.percentile(lat[sel], 99), lat[sel].max()) if sel.any() \
            else (float("nan"),) * 3
        print(f"  {name:<27} {n_sent / secs:>11,.0f} {applied:>14,.0f} {p50:>8.2f} {p99:>8.2f} {mx:>8.1f}")
    print(f"  sequenced {sequenced:,}; gaps {c['gaps']}; recovered {c['messages_recovered']:,} via "
          f"{c['requests_sent']} requests; missed {c['messages_missed']}; recovery failures "
          f"{c['recovery_failures']}; dropped before sequencing (queue full) {handler.dropped_datagrams:,}")
    print(f"  clients: {clients.connected:,} connected, {clients.closed} closed while measuring, "
          f"{clients.updates_per_s:,.0f} updates/s, {clients.frames_per_s:,.0f} frames/s, p50 {clients.p50_ms:.1f} ms "
          f"p99 {clients.p99_ms:.1f} ms; node process CPU {clients.server_cpu:.2f} cores")
    print(f"  node process CPU from the first packet to caught up: {node_cpu:.1f} s, "
          f"{node_cpu / max(sequenced, 1) * 1e9:,.0f} ns per message sequenced (the machine's load aside)")
    lossless = c["messages_missed"] == 0 and sequenced == sent and c["recovery_failures"] == 0 \
        and not session.needs_rebuild
    await node.close()
    print("  comparing with books built from the session file directly ...", flush=True)
    want = reference_books(path) if sent == total else None
    diffs = compare_books(books, want) if want is not None else ["not every message was sent"]
    print("  books EQUAL" if not diffs else f"  books DIFFER: {diffs}")
    print("  LOSSLESS after recovery" if lossless else "  NOT lossless")
    return lossless and not diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100_000, help="msg/s before and after the burst")
    parser.add_argument("--factor", type=float, default=10.0, help="the burst's rate, times --rate")
    parser.add_argument("--before", type=float, default=5.0, help="seconds before the burst")
    parser.add_argument("--burst", type=float, default=60.0, help="seconds of burst (default %(default)s)")
    parser.add_argument("--after", type=float, default=5.0, help="seconds after the burst")
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=1_000, help="WebSocket clients subscribed throughout")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--recovery-timeout", type=float, default=10.0,
                        help="the node's recovery timeout, s (a loaded machine answers re-requests late)")
    parser.add_argument("--drain", type=float, default=180.0, help="seconds allowed to catch up after sending")
    parser.add_argument("--plain", action="store_true", help="the node on the plain engine (for comparison)")
    parser.add_argument("--cache-dir", default="/tmp", help="where the generated session is kept between runs")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress twice a second")
    args = parser.parse_args()
    import uvloop
    from bench_fanout_load import raise_nofile

    from vocab.auth import new_secret

    raise_nofile()
    # a node refuses to start without a token key; these clients are anonymous, so any key serves
    os.environ.setdefault("TICKFAN_JWT_SECRET", new_secret())

    ok = uvloop.run(run(args))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
