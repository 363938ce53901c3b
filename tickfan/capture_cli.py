"""``tickfan record`` and ``tickfan replay``: capture a live feed to a file, and play a file back onto UDP.

The work is done below: recording is a consumer (``ingest.record``), replay is the venue's sender
(``venue.replay``). This module reads the command lines, wires signals and prints progress.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from ingest.capture import CaptureError, CaptureWriter
from ingest.moldudp64 import MAX_PAYLOAD
from ingest.record import record
from ingest.session import FeedSession
from tickfan.args import date_arg, hostport
from venue.replay import replay, replay_date, replay_session

# ---------------------------------------------------------------- record


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="capture file to write (length-prefixed ITCH 5.0)")
    parser.add_argument("--feed", type=hostport, action="append", metavar="HOST:PORT",
                        help="UDP address of the feed; repeat for lines A and B (default 127.0.0.1:30001)")
    parser.add_argument("--rewinder", type=hostport, default=None, metavar="HOST:PORT",
                        help="MoldUDP64 re-request server, to record without holes")
    parser.add_argument("--interface", default="127.0.0.1", help="interface for a multicast feed")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this long (default: until end of session or Ctrl-C)")


def record_main(args: argparse.Namespace) -> int:
    import uvloop

    return int(uvloop.run(_record(args)))


def _show_recording(writer: CaptureWriter, session: FeedSession) -> None:
    print(f"\rrecorded {writer.messages:>12,} messages  {writer.bytes:>14,} bytes  gaps {session.counters['gaps']}",
          end="", file=sys.stderr, flush=True)


async def _record(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    with open(args.file, "wb", buffering=1 << 20) as f:
        try:
            writer = await record(f, args.feed or [("127.0.0.1", 30001)], stop=stop, rewinder=args.rewinder,
                                  interface=args.interface, tick=_show_recording)
        except OSError as exc:
            print(f"tickfan record: cannot listen: {exc}", file=sys.stderr)
            return 1
    print(f"\nwrote {writer.messages:,} messages to {args.file}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- replay

def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path,
                        help="capture or Nasdaq ITCH 5.0 file (length-prefixed messages), gzipped or not, e.g. "
                             "01302019.NASDAQ_ITCH50.gz as Nasdaq publishes it")
    parser.add_argument("--target", type=hostport, action="append", metavar="HOST:PORT",
                        help="where to send; repeat for lines A and B (default 127.0.0.1:30001)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="pace as recorded times this factor; 0 = as fast as possible (default %(default)s)")
    parser.add_argument("--session-date", "--date", type=date_arg, default=None, metavar="YYYY-MM-DD",
                        help="the trading day the file's ITCH timestamps count from, where its name does not say "
                             "(Nasdaq's names do: MMDDYYYY.NASDAQ_ITCH50, SMMDDYY-v50.txt.gz); --date is its old "
                             "spelling")
    parser.add_argument("--session", default=None,
                        help="MoldUDP64 session name (default: the date as YYYYMMDD + 'RP', which tells a node "
                             "started with that --session and no --session-date the file's date; REPLAY0001 when "
                             "the date is unknown)")
    parser.add_argument("--interface", default="127.0.0.1", help="interface multicast leaves from")
    parser.add_argument("--max-payload", type=int, default=MAX_PAYLOAD, help="max UDP payload bytes")


def _show_replay(sent: int, rate: float) -> None:
    print(f"\rreplayed {sent:>12,} messages  {rate:>10,.0f} msg/s", end="", file=sys.stderr, flush=True)


def replay_main(args: argparse.Namespace) -> int:
    import uvloop

    if args.speed < 0:
        print("tickfan replay: --speed must be >= 0", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"tickfan replay: no such file: {args.file}", file=sys.stderr)
        return 2
    day = replay_date(args.file, args.session_date)
    session = args.session or replay_session(args.file, day)
    if day is None:
        print("tickfan replay: the file's name carries no date and --session-date is not given: a node converts its "
              "timestamps with its own --session-date (default today)", file=sys.stderr)
    elif args.session:
        print(f"tickfan replay: session {session!r} does not carry the date: start the node with --session-date "
              f"{day.isoformat()}", file=sys.stderr)
    else:
        print(f"tickfan replay: trading day {day.isoformat()}, session {session} (a node started with --session "
              f"{session} converts its times with that date)", file=sys.stderr)
    try:
        sent = uvloop.run(replay(args.file, args.target or [("127.0.0.1", 30001)], speed=args.speed,
                                 session=session, interface=args.interface, max_payload=args.max_payload,
                                 progress=_show_replay))
    except CaptureError as exc:
        print(f"\ntickfan replay: {args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"\nreplayed {sent:,} messages", file=sys.stderr)
    return 0
