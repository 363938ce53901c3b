"""``tickfan simulate``: the simulated exchange on the wire (the feed on UDP, optionally a rewinder and a
snapshot server), until Ctrl-C, SIGTERM or ``--duration``. The venue does the work (``venue.feed.serve``);
this module only reads the command line and reports progress.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from ingest.moldudp64 import MAX_PAYLOAD
from tickfan.args import date_arg, hostport
from tickfan.httpserver import SideServer
from tickfan.venue_cli import PATH, session_route
from venue.feed import Burst, serve
from venue.schedule import SYSTEM_EVENTS, CalendarSchedule
from venue.simulator import ExchangeSimulator
from venue.status import DEMO, StatusConfig
from vocab import calendar


def add_status_arguments(parser: argparse.ArgumentParser, defaults: StatusConfig = DEMO) -> None:
    """The simulated exchange's trading status events (``venue.status``): the demo's by default (``tickfan
    simulate`` alone emits none unless asked, so its stream stays a pure function of the seed); the demo passes
    them on to its simulator."""
    parser.add_argument("--luld-every", type=float, default=defaults.luld_every or 0, metavar="SECONDS",
                        help="a LULD pause (H 'P' LUDP, its auction collar J, then H 'T') every this many seconds, "
                             "one symbol at a time (default %(default)s; 0: none)")
    parser.add_argument("--luld-pause", type=float, default=defaults.luld_pause, metavar="SECONDS",
                        help="how long each LULD pause lasts, at most 10 (default %(default)s)")
    parser.add_argument("--luld-symbols", default=",".join(defaults.luld_symbols), metavar="SYM,SYM",
                        help="the symbols LULD pauses take in turn (default %(default)s)")
    parser.add_argument("--status-every", type=float, default=defaults.events_every or 0, metavar="SECONDS",
                        help="one other status event (Reg SHO, IPO quoting period, operational halt, circuit "
                             "breaker levels) every this many seconds (default %(default)s; 0: none)")
    parser.add_argument("--mwcb-breach", action="store_true",
                        help="include a market-wide circuit breaker level 1 breach among those events")
    parser.add_argument("--close-after", type=float, default=None, metavar="SECONDS",
                        help="end market hours (S 'M': orders refused from then on) this long after the start "
                             "(default: the market stays open)")
    parser.add_argument("--calendar", action="store_true",
                        help="follow the exchange calendar (New York time): start in the day's phase (closed, "
                             "pre-market, open, after hours) and send its system events as the day moves (default: "
                             "the market opens at the start and stays open)")
    parser.add_argument("--control", type=hostport, default=None, metavar="HOST:PORT",
                        help="serve POST /v1/venue/session here, to move the simulated day on demand (`tickfan "
                             "venue`; the demo serves its market maker's on the next port); an operator's port: "
                             "bind it to loopback or a private network")


def status_config(args: argparse.Namespace) -> StatusConfig:
    """Raises ValueError with a message for the command line."""
    return StatusConfig(luld_every=args.luld_every or None, luld_pause=args.luld_pause,
                        luld_symbols=tuple(s.strip().upper() for s in args.luld_symbols.split(",") if s.strip()),
                        events_every=args.status_every or None, breach=args.mwcb_breach)


def status_flags(args: argparse.Namespace) -> list[str]:
    """The same settings as ``tickfan simulate`` flags (for a parent that starts the simulator)."""
    flags = ["--luld-every", str(args.luld_every or 0), "--luld-pause", str(args.luld_pause),
             "--luld-symbols", args.luld_symbols, "--status-every", str(args.status_every or 0)]
    if args.mwcb_breach:
        flags.append("--mwcb-breach")
    if args.close_after is not None:
        flags += ["--close-after", str(args.close_after)]
    if args.calendar:
        flags.append("--calendar")
    if args.control is not None:
        flags += ["--control", f"{args.control[0]}:{args.control[1]}"]
    return flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", type=hostport, action="append", metavar="HOST:PORT",
                        help="where to send; a multicast group (224.0.0.0/4) sends multicast; repeat for redundant "
                             "lines A and B carrying the same session (default 127.0.0.1:30001)")
    parser.add_argument("--rewinder", type=hostport, default=None, metavar="HOST:PORT",
                        help="serve MoldUDP64 re-requests on this UDP address (default: no rewinder)")
    parser.add_argument("--burst", default=None, metavar="FACTOR@START+SECONDS",
                        help="a burst: e.g. 10@5+5 sends ten times --rate from 5 s in, for 5 s (the market open)")
    parser.add_argument("--snapshot", type=hostport, default=None, metavar="HOST:PORT",
                        help="serve GLIMPSE-style book snapshots over TCP on this address (default: none)")
    parser.add_argument("--history", type=int, default=200_000,
                        help="messages the rewinder keeps for re-requests (default %(default)s)")
    parser.add_argument("--rate", type=float, default=20_000, help="ITCH messages per second (default %(default)s)")
    parser.add_argument("--symbols", type=int, default=10_000, help="number of symbols (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default %(default)s)")
    parser.add_argument("--session", default="TICKFAN001",
                        help="MoldUDP64 session name, <= 10 chars (default %(default)s)")
    parser.add_argument("--session-date", type=date_arg, default=None, metavar="YYYY-MM-DD",
                        help="the trading day: messages are stamped, as Nasdaq stamps ITCH, in ns since its "
                             "midnight US Eastern (default: today in New York)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--interface", default="127.0.0.1",
                        help="local interface address multicast leaves from (default %(default)s: this host only)")
    parser.add_argument("--max-payload", type=int, default=MAX_PAYLOAD,
                        help="max UDP payload bytes per packet (default %(default)s: fits one Ethernet frame)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    add_status_arguments(parser, StatusConfig())


def main(args: argparse.Namespace) -> int:
    import signal

    import uvloop

    targets: list[tuple[str, int]] = args.target or [("127.0.0.1", 30001)]
    try:
        burst = Burst.parse(args.burst) if args.burst else None
    except ValueError as exc:
        print(f"tickfan simulate: {exc}", file=sys.stderr)
        return 2
    try:
        status = status_config(args)
    except ValueError as exc:
        print(f"tickfan simulate: {exc}", file=sys.stderr)
        return 2
    if args.rate <= 0 or not 1 <= args.symbols <= 65535 or len(args.session) > 10:
        print("tickfan simulate: need --rate > 0, 1 <= --symbols <= 65535, --session <= 10 chars",
              file=sys.stderr)
        return 2

    def show(sent: int, rate: float, packets: int) -> None:
        print(f"\rsent {sent:>12,} messages  {rate:>10,.0f} msg/s  {packets:>10,} packets",
              end="", file=sys.stderr, flush=True)

    now = dt.datetime.now(dt.UTC)

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sim = ExchangeSimulator(args.symbols, seed=args.seed, session_date=args.session_date, status=status,
                                opening_phase=calendar.clock(now).phase if args.calendar else "open")
        control = None
        if args.control is not None:
            def session_event(event: str) -> dict[str, object]:
                sim.session_event(event)
                return {"system_event": SYSTEM_EVENTS[event]}
            control = SideServer(args.control[0], args.control[1], [session_route(session_event)])
            await control.start()
            print(f"simulate: session control on http://{args.control[0]}:{control.port}{PATH}", file=sys.stderr)
        try:
            return await feed(sim, stop)
        finally:
            if control is not None:
                await control.close()

    async def feed(sim: ExchangeSimulator, stop: asyncio.Event) -> int:
        sent = await serve(targets, rate=args.rate, symbols=args.symbols, seed=args.seed,
                           session=args.session, duration=args.duration, stop=stop,
                           max_payload=args.max_payload, progress=None if args.quiet else show,
                           interface=args.interface, rewinder=args.rewinder, history=args.history,
                           snapshot=args.snapshot, burst=burst, session_date=args.session_date,
                           close_after=args.close_after, simulator=sim,
                           schedule=CalendarSchedule(now) if args.calendar else None)
        if not args.quiet:
            print(f"\nsent {sent:,} messages", file=sys.stderr)
        return 0

    return int(uvloop.run(run()))
