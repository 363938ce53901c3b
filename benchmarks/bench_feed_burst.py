"""A true 10x burst at the open: pre-generated feed, paced sender, the batched handler, recovery, latency.

    .venv/bin/python benchmarks/bench_feed_burst.py [--rate 100000] [--factor 10] [--before 5] [--burst 5] [--after 5]

The live simulator cannot generate a million messages a second, so the session is generated first (untimed:
about 40 s for 6M messages, cached in --cache-dir for the next run) and sent as pre-built packets by a sender
process: --rate msg/s, --factor times that during the burst, each packet's messages stamped (ITCH timestamp)
with the moment it is sent. A rewinder runs in a process of its own over the whole session and re-sends a
message with the stamp it was first sent with, so a lost-and-recovered message's latency counts its loss.

The feed handler runs here on the batched path (``KernelBooks``: frame + decode + book in numpy/numba, as
``tickfan`` does) and must end with every message applied, lost ones recovered from the rewinder. Latency
is per message (one in --sample, by its position in each batch): stamp (= the packet's send, i.e. its
arrival over loopback) -> its batch applied to the books, grouped by the phase the message was sent in.
At the end the books are compared with books built from the generated session directly: every published
array, the live orders and the counters must be equal. ``bench_feed_burst_node.py`` sends the same sessions
into a whole node (fan-out and clients included).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import sys
import time
from multiprocessing.sharedctypes import RawArray
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.batch import decode_buffer, read_capture  # noqa: E402
from ingest.handler import open_feeds  # noqa: E402
from ingest.session import State  # noqa: E402
from vocab.clock import itch_now, today_eastern  # noqa: E402

SESSION = "BURST"
SEED = 5
DAY = today_eastern()  # packets are stamped in ITCH time of this date, and compared with raw ITCH stamps
FIELDS = ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume", "halted",
          "round_lot", "known")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BASE_MAX = 6_100_000  # messages the simulator generates at most; a longer session repeats them (see below)
REF_FIELDS = {ord("A"): (11,), ord("F"): (11,), ord("E"): (11,), ord("C"): (11,), ord("X"): (11,), ord("D"): (11,),
              ord("U"): (11, 19), ord("P"): (11,)}
MATCH_FIELDS = {ord("E"): 23, ord("C"): 23, ord("P"): 36, ord("Q"): 31, ord("B"): 11}


def session_file(cache_dir: str, symbols: int, total: int) -> Path:
    """The generated session as a capture (length-prefixed ITCH): generated once, then reused.

    The simulator makes some 150,000 messages a second on an idle core, 30,000 on this shared machine: a 60 s
    burst (61M messages) would take half an hour to generate. Beyond ``BASE_MAX`` messages the session is
    the first ``BASE_MAX`` repeated, each repetition's order references and match numbers moved by
    ``repetition << 40`` (``repeated``), so every order is a new one; its directory entries and opening events
    come again (the books recognise a repeated directory entry). The reference books are built from this same
    file, so equality still checks every message."""
    path = Path(cache_dir) / f"tickfan-burst-{symbols}-{total}-{SEED}.itch"
    if path.exists():
        return path
    base = path if total <= BASE_MAX else session_file(cache_dir, symbols, BASE_MAX)
    if total > BASE_MAX:
        return repeated(base, path, total)
    from venue.simulator import ExchangeSimulator

    t = time.monotonic()
    print(f"generating {total:,} messages (untimed, once; cached as {path}) ...", flush=True)
    sim = ExchangeSimulator(symbols, seed=SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as f:
        left = total
        while left:
            n = min(left, 1_000_000)
            f.write(b"".join(len(m).to_bytes(2, "big") + m for m in sim.generate_encoded(n)))
            left -= n
    tmp.replace(path)
    print(f"  generated in {time.monotonic() - t:.0f} s", flush=True)
    return path


def repeated(base: Path, path: Path, total: int) -> Path:
    """``base`` repeated until ``total`` messages, order references and match numbers moved per repetition."""
    from ingest.batch import frame

    t = time.monotonic()
    print(f"repeating {base.name} to {total:,} messages (untimed, once; cached as {path}) ...", flush=True)
    buf, size = read_capture(base)
    offsets, counts = frame(buf, size)
    starts = offsets - 2  # each message's length prefix
    kinds = buf[offsets]
    fields = [offsets[kinds == k] + off for k, offs in REF_FIELDS.items() for off in offs]
    fields += [offsets[kinds == k] + off for k, off in MATCH_FIELDS.items()]
    where = np.concatenate(fields)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    written = rep = 0
    with tmp.open("wb") as f:
        while written < total:
            n = min(counts.messages, total - written)
            data = buf[:size].copy()
            if rep:
                u8 = np.ndarray((size - 7,), dtype=np.dtype(">u8"), buffer=data, strides=(1,))
                u8[where] = u8[where] + (rep << 40)  # big-endian in place: refs stay below 2^40 per repetition
            end = int(starts[n]) if n < counts.messages else size
            f.write(data[:end].tobytes())
            written += n
            rep += 1
    tmp.replace(path)
    print(f"  {rep} repetitions in {time.monotonic() - t:.0f} s", flush=True)
    return path


def read_messages(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        n = (data[pos] << 8) | data[pos + 1]
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def rewinder_main(path: Path, sent_ns: Any, port: int, ready: Any) -> None:
    """The re-request server, in a process of its own (as at an exchange): re-sent messages keep the stamp
    their first copy was sent with."""
    import uvloop

    from venue.rewinder import Rewinder

    messages = read_messages(path)
    sent = np.frombuffer(sent_ns, np.int64)

    class Stamped(Rewinder):
        def message(self, seq: int) -> bytes:
            m = super().message(seq)
            t = int(sent[seq])
            return m[:5] + t.to_bytes(6, "big") + m[11:] if t else m

    rw = Stamped(SESSION, len(messages) + 1)
    for m in messages:
        rw.append(m)

    async def serve() -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: rw, local_addr=("127.0.0.1", port))
        ready.set()
        await asyncio.Event().wait()  # until terminated

    uvloop.run(serve())


def sender_main(target: int, schedule: list[tuple[float, float]], drops: tuple[float, int], path: Path,
                sent_ns: Any, ready: Any, go: Any, done: Any) -> None:
    from ingest.moldudp64 import PacketBuilder, end_of_session
    from ingest.udp import send_packet, sender_socket

    messages = read_messages(path)
    builder = PacketBuilder(SESSION)
    packets: list[tuple[bytearray, np.ndarray, int, int]] = []  # (packet, timestamp byte positions, seq, n)
    for m in messages:
        full = builder.add(m)
        if full is not None:
            packets.append(_stampable(full))
    tail = builder.flush()
    if tail is not None:
        packets.append(_stampable(tail))
    del messages
    sent_arr = np.frombuffer(sent_ns, np.int64)
    sock = sender_socket("127.0.0.1", target)
    ready.set()
    go.wait()

    sent = i = 0
    start = time.monotonic()
    start_ns = itch_now(DAY)
    phase_start = start
    phases: list[tuple[int, float]] = []
    drop_every, drop_packets = drops
    dropped = 0
    for k, (rate, secs) in enumerate(schedule):
        phase_end = phase_start + secs
        last = k == len(schedule) - 1
        next_drop = phase_start + drop_every / 2 if k == 1 and drop_packets else float("inf")
        base = sent  # a shortfall is not banked into the next phase
        while i < len(packets):
            now = time.monotonic()
            if now >= phase_end and not last:
                break
            owed = base + (now - phase_start) * rate - sent
            if owed <= 0:
                time.sleep(0.0001)
                continue
            while owed > 0 and i < len(packets):
                packet, where, seq, n = packets[i]
                ts = itch_now(DAY)
                view = np.frombuffer(packet, np.uint8)
                view[where] = np.tile(np.frombuffer(ts.to_bytes(6, "big"), np.uint8), n)
                sent_arr[seq:seq + n] = ts
                if now >= next_drop:  # lost on purpose: the handler must recover it under the burst
                    dropped += 1
                    if dropped % drop_packets == 0:
                        next_drop += drop_every
                else:
                    send_packet(sock, bytes(packet))
                i += 1
                sent += n
                owed -= n
        phases.append((sent - base, time.monotonic() - phase_start))
        phase_start = max(phase_end, time.monotonic())
    eos = end_of_session(SESSION, packets[i - 1][2] + packets[i - 1][3] if i else 1)
    for _ in range(5):  # as the simulator does: a lost End of Session is announced again
        send_packet(sock, eos)
        time.sleep(0.02)
    done.put((sent, time.monotonic() - start, start_ns, phases, dropped))


def _stampable(packet: bytes) -> tuple[bytearray, np.ndarray, int, int]:
    """A packet and the positions of its messages' 6 timestamp bytes, to stamp it just before sending."""
    seq = int.from_bytes(packet[10:18], "big")
    count = int.from_bytes(packet[18:20], "big")
    pos, starts = 20, []
    for _ in range(count):
        starts.append(pos + 2 + 5)  # length prefix, then type(1) locate(2) tracking(2), then the timestamp
        pos += 2 + int.from_bytes(packet[pos:pos + 2], "big")
    where = (np.array(starts, np.int64)[:, None] + np.arange(6)).ravel()
    return bytearray(packet), where, seq, count


def reference_books(path: Path) -> Any:
    """Books built from the generated session directly, with no network and no loss."""
    from normalize.kernel import KernelBooks

    books = KernelBooks()
    buf, size = read_capture(path)
    chunk = 32 << 20
    pos = 0
    while pos < size:
        pos += books.apply_bytes(buf[pos:min(pos + chunk, size)].tobytes())
    return books


def compare_books(got: Any, want: Any) -> list[str]:
    """Every difference between two books, except the ITCH timestamps (the sender re-stamps at send time)."""
    diffs = [name for name in FIELDS if not np.array_equal(getattr(got, name), getattr(want, name))]
    if got.live_orders() != want.live_orders():
        diffs.append("live orders")
    if got.counters != want.counters:
        diffs.append(f"counters {got.counters} != {want.counters}")
    if got.symbol_of != want.symbol_of:
        diffs.append("symbol names")
    return diffs


async def run(args: argparse.Namespace) -> bool:
    from normalize.kernel import KernelBooks, warm_up

    schedule = [(args.rate, args.before), (args.rate * args.factor, args.burst), (args.rate, args.after)]
    total = int(sum(rate * secs for rate, secs in schedule))
    path = session_file(args.cache_dir, args.symbols, total)
    warm_up()
    books = KernelBooks()
    stride = args.sample
    lat_chunks: list[np.ndarray] = []  # (stamp, latency) pairs, one in ``stride`` messages
    batches: list[tuple[float, int]] = []

    def raw_sink(blocks: bytes) -> None:  # what ``KernelBooks.apply_bytes`` does, keeping the stamps
        buf, cols, counts = decode_buffer(blocks)
        books.frame_counters["unknown_types"] += counts.unknown_types
        books.frame_counters["bad_lengths"] += counts.bad_lengths
        books.apply_columns(cols, buf)
        now = itch_now(DAY)
        stamps = cols.timestamp[::stride]
        lat_chunks.append(np.stack((stamps, now - stamps)))
        batches.append((time.monotonic(), cols.messages))

    rewinder = ("127.0.0.1", free_udp_port())
    handler = await open_feeds([("127.0.0.1", 0)], books.apply_batch, rewinder=rewinder,
                               recovery_timeout=args.recovery_timeout, raw_sink=raw_sink)
    port = handler.lines[0].get_extra_info("sockname")[1]
    sent_ns = RawArray("q", total + 2)  # message seq -> the stamp it was sent with (for the rewinder)
    ctx = mp.get_context("fork")
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Queue()
    rw_ready = ctx.Event()
    rw_proc = ctx.Process(target=rewinder_main, args=(path, sent_ns, rewinder[1], rw_ready), daemon=True)
    rw_proc.start()
    proc = ctx.Process(target=sender_main, args=(port, schedule, (args.drop_every, args.drop_packets), path,
                                                 sent_ns, ready, go, done), daemon=True)
    proc.start()
    print("building packets in the sender, loading the rewinder (untimed) ...", flush=True)
    while not (ready.is_set() and rw_ready.is_set()):
        if not (proc.is_alive() and rw_proc.is_alive()):
            raise SystemExit(f"the sender or the rewinder died (exit codes {proc.exitcode}, {rw_proc.exitcode})")
        await asyncio.sleep(0.2)
    start = time.monotonic()
    go.set()
    session = handler.session
    c = session.counters
    while done.empty():
        if not proc.is_alive():
            raise SystemExit(f"the sender died (exit code {proc.exitcode})")
        await asyncio.sleep(0.5)
        if args.verbose:
            print(f"  t={time.monotonic() - start:5.1f}s sequenced {(session.next_seq or 1) - 1:>10,}  "
                  f"gaps {c['gaps']:>4}  recovered {c['messages_recovered']:>9,}  {session.state.value}", flush=True)
    sent, span, start_ns, phases_sent, dropped = done.get()
    deadline = time.monotonic() + 120
    while (session.state is State.RECOVERING or not session.ended or (session.next_seq or 1) <= sent) \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    caught_up = time.monotonic() - start
    handler.close()
    for p in (proc, rw_proc):
        p.terminate()
        p.join()

    sequenced = (session.next_seq or 1) - 1
    print(f"\nsent {sent:,} messages in {span:.1f} s ({dropped} packets of them lost on purpose); handler caught "
          f"up at {caught_up:.1f} s")
    lat = np.concatenate(lat_chunks, axis=1) if lat_chunks else np.zeros((2, 0), np.int64)
    when = (lat[0] - start_ns) / 1e9  # send time of each sampled message, from the sender's start
    ms = lat[1] / 1e6
    bt = np.array([t for t, _ in batches]) - start
    bn = np.array([n for _, n in batches])
    names = (f"before ({args.rate:,.0f}/s asked)", f"burst ({args.rate * args.factor:,.0f}/s asked)",
             f"after ({args.rate:,.0f}/s asked)")
    edges = np.cumsum([0.0, *(s for _, s in phases_sent)])
    edges[-1] = max(edges[-1], 1e9)
    print(f"  {'phase':<27} {'sent msg/s':>11} {'applied msg/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    results = []
    for k, name in enumerate(names):
        n_sent, secs = phases_sent[k]
        lo, hi = edges[k], edges[k + 1]
        sel = (when >= lo) & (when < hi)
        hi_applied = min(hi, edges[k] + secs)
        applied = bn[(bt >= lo) & (bt < hi_applied)].sum() / max(hi_applied - lo, 1e-9)
        p50, p99, mx = (np.percentile(ms[sel], 50), np.percentile(ms[sel], 99), ms[sel].max()) if sel.any() \
            else (float("nan"),) * 3
        results.append((p50, p99))
        print(f"  {name:<27} {n_sent / secs:>11,.0f} {applied:>14,.0f} {p50:>8.2f} {p99:>8.2f} {mx:>8.1f}")
    print(f"  sequenced {sequenced:,}; gaps {c['gaps']}; recovered {c['messages_recovered']:,} via "
          f"{c['requests_sent']} requests; missed {c['messages_missed']}; recovery failures "
          f"{c['recovery_failures']}; held overflow {c['pending_overflow']}")
    times = sorted(session.recovery_seconds)
    if times:
        print(f"  recoveries {c['recoveries']}: longest {times[-1] * 1000:.0f} ms")
    lossless = c["messages_missed"] == 0 and sequenced == sent and c["recovery_failures"] == 0 \
        and not session.needs_rebuild
    print("  comparing with books built from the session directly ...", flush=True)
    want = reference_books(path) if sent == total else None
    diffs = compare_books(books, want) if want is not None else ["not every message was sent"]
    print("  books EQUAL" if not diffs else f"  books DIFFER: {diffs}")
    ok = lossless and not diffs
    print("  LOSSLESS after recovery" if lossless else "  NOT lossless")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100_000)
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--burst", type=float, default=5.0)
    parser.add_argument("--after", type=float, default=5.0)
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--recovery-timeout", type=float, default=2.0,
                        help="the handler's recovery timeout, s (default: the handler's own default, 2)")
    parser.add_argument("--drop-every", type=float, default=0.5, metavar="SECONDS",
                        help="with --drop-packets: lose packets on purpose this often during the burst")
    parser.add_argument("--drop-packets", type=int, default=0, metavar="N",
                        help="packets lost on purpose each time (default 0: none; ~30 messages a packet)")
    parser.add_argument("--sample", type=int, default=16, help="measure the latency of one message in N")
    parser.add_argument("--cache-dir", default="/tmp", help="where the generated session is kept between runs")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress twice a second")
    args = parser.parse_args()
    import uvloop

    ok = uvloop.run(run(args))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
