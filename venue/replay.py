"""``tickfan record`` and ``tickfan replay``: capture a live feed to a file, and play a file back onto UDP.

Recording listens like a feed handler (lines A/B, gap recovery when a rewinder is given) and writes the
messages in sequence order. Replay packs the file's messages into MoldUDP64 packets and paces them by their
ITCH timestamps divided by ``--speed`` (or as fast as possible with ``--speed 0``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

from ingest import itch
from ingest.capture import CaptureError, CaptureWriter, iter_messages, timestamp_of
from ingest.handler import open_feeds
from ingest.messages import Message
from ingest.moldudp64 import MAX_PAYLOAD, PacketBuilder, end_of_session
from ingest.udp import send_packet, sender_socket
from vocab.addr import parse_hostport

# ---------------------------------------------------------------- record

def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="capture file to write (length-prefixed ITCH 5.0)")
    parser.add_argument("--feed", type=parse_hostport, action="append", metavar="HOST:PORT",
                        help="UDP address of the feed; repeat for lines A and B (default 127.0.0.1:30001)")
    parser.add_argument("--rewinder", type=parse_hostport, default=None, metavar="HOST:PORT",
                        help="MoldUDP64 re-request server, to record without holes")
    parser.add_argument("--interface", default="127.0.0.1", help="interface for a multicast feed")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this long (default: until end of session or Ctrl-C)")


def record_main(args: argparse.Namespace) -> int:
    import uvloop

    return uvloop.run(_record(args))


async def _record(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    with open(args.file, "wb", buffering=1 << 20) as f:
        writer = CaptureWriter(f)
        encode = itch.encode

        def sink(messages: list[Message]) -> None:
            for m in messages:
                writer.write(encode(m))

        try:
            handler = await open_feeds(args.feed or [("127.0.0.1", 30001)], sink, rewinder=args.rewinder,
                                       interface=args.interface)
        except OSError as exc:
            print(f"tickfan record: cannot listen: {exc}", file=sys.stderr)
            return 1
        try:
            while not stop.is_set() and not handler.session.ended:
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass
                c = handler.session.counters
                print(f"\rrecorded {writer.messages:>12,} messages  {writer.bytes:>14,} bytes  gaps {c['gaps']}",
                      end="", file=sys.stderr, flush=True)
        finally:
            handler.close()
    print(f"\nwrote {writer.messages:,} messages to {args.file}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- replay

def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="capture or Nasdaq ITCH 5.0 file (length-prefixed messages)")
    parser.add_argument("--target", type=parse_hostport, action="append", metavar="HOST:PORT",
                        help="where to send; repeat for lines A and B (default 127.0.0.1:30001)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="pace as recorded times this factor; 0 = as fast as possible (default %(default)s)")
    parser.add_argument("--session", default="REPLAY0001", help="MoldUDP64 session name (default %(default)s)")
    parser.add_argument("--interface", default="127.0.0.1", help="interface multicast leaves from")
    parser.add_argument("--max-payload", type=int, default=MAX_PAYLOAD, help="max UDP payload bytes")


def replay_main(args: argparse.Namespace) -> int:
    import uvloop

    if args.speed < 0:
        print("tickfan replay: --speed must be >= 0", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"tickfan replay: no such file: {args.file}", file=sys.stderr)
        return 2
    try:
        sent = uvloop.run(replay(args.file, args.target or [("127.0.0.1", 30001)], speed=args.speed,
                                 session=args.session, interface=args.interface, max_payload=args.max_payload,
                                 progress=True))
    except CaptureError as exc:
        print(f"\ntickfan replay: {args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"\nreplayed {sent:,} messages", file=sys.stderr)
    return 0


async def replay(path: Path, targets: list[tuple[str, int]], *, speed: float = 1.0, session: str = "REPLAY0001",
                 interface: str = "127.0.0.1", max_payload: int = MAX_PAYLOAD, progress: bool = False) -> int:
    """Send a capture as MoldUDP64; returns the number of messages sent."""
    socks = [sender_socket(host, port, interface=interface) for host, port in targets]

    def send(packet: bytes) -> None:
        for s in socks:
            send_packet(s, packet)

    builder = PacketBuilder(session, max_payload=max_payload)
    sent = 0
    start_wall = time.monotonic()
    first_ts: int | None = None
    last_report = start_wall
    try:
        with open(path, "rb") as f:
            for message in iter_messages(f):
                if speed > 0:
                    ts = timestamp_of(message)
                    if first_ts is None:
                        first_ts = ts
                    due = start_wall + (ts - first_ts) / 1e9 / speed
                    wait = due - time.monotonic()
                    if wait > 0.001:
                        tail = builder.flush()  # what is due now goes out before we wait
                        if tail is not None:
                            send(tail)
                        await asyncio.sleep(wait)
                packet = builder.add(message)
                if packet is not None:
                    send(packet)
                sent += 1
                if sent % 4096 == 0:
                    await asyncio.sleep(0)
                    now = time.monotonic()
                    if progress and now - last_report >= 1.0:
                        print(f"\rreplayed {sent:>12,} messages  {sent / (now - start_wall):>10,.0f} msg/s",
                              end="", file=sys.stderr, flush=True)
                        last_report = now
            tail = builder.flush()
            if tail is not None:
                send(tail)
            send(end_of_session(session, builder.next_seq))
    finally:
        for s in socks:
            s.close()
    return sent
