"""``tickfan market-maker``: the FIX 4.4 market-maker simulator as a command (flags, signals, status line).

The simulator itself is ``venue.marketmaker`` (engine, quotes, acceptor); this module only turns flags into
its objects and runs it until SIGINT/SIGTERM. SIGUSR1 toggles "down" (refuse connections, drop the open ones);
SIGUSR2 drops every connection now. See ``order_api/FIX.md`` for the dialect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import signal
import sys

from tickfan.args import add_tls_arguments, hostport, tls_files
from tickfan.health import CheckResult, Health, add_health_http, start_health_http
from tickfan.metrics_orders import MarketMakerCollector, metrics_route
from tickfan.metrics_share import add_metrics_dir_arguments, writer_of
from tickfan.venue_cli import follow_calendar, session_route
from venue.marketmaker import (
    DEFAULT_ACCEPTED_COMP_IDS,
    DEFAULT_COMP_ID,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_QUOTES_URL,
    MAX_ORDERS,
    Faults,
    HttpQuoteProvider,
    MarketMaker,
    QuoteProvider,
    StaticQuoteProvider,
    parse_static_quotes,
)
from vocab import calendar
from vocab.digits import is_ascii_digits, parse_ascii_int
from vocab.tls import client_context, server_context_of


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("expected a fraction between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number >= 0")
    return value


def _positive_int(text: str) -> int:
    value = parse_ascii_int(text) if is_ascii_digits(text) else 0
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number >= 1")
    return value


def _schedule(text: str) -> tuple[float, float]:
    up, sep, down = text.partition("/")
    try:
        pair = (float(up), float(down))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected UP/DOWN seconds, got {text!r}") from None
    if not sep or pair[0] <= 0 or pair[1] <= 0:
        raise argparse.ArgumentTypeError(f"expected UP/DOWN seconds, both > 0, got {text!r}")
    return pair


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Signals: SIGUSR1 toggles 'down' (refuse connections), SIGUSR2 drops every connection now. "
                     "See order_api/FIX.md for the FIX dialect.")
    parser.add_argument("--listen", type=hostport, default=(DEFAULT_HOST, DEFAULT_PORT), metavar="HOST:PORT",
                        help=f"where to accept FIX 4.4 connections (default {DEFAULT_HOST}:{DEFAULT_PORT})")
    parser.add_argument("--comp-id", default=DEFAULT_COMP_ID,
                        help="our SenderCompID; initiators must target it (default %(default)s)")
    src = parser.add_mutually_exclusive_group()
    parser.add_argument("--accept-comp-id", action="append", default=None, metavar="COMPID",
                        help="a SenderCompID allowed to log on (repeatable; a trailing * accepts a prefix). A Logon "
                             "from any other, or a second one for a CompID already logged on, is refused with a "
                             "Logout saying why (default: " + " ".join(DEFAULT_ACCEPTED_COMP_IDS) + ", the FIX "
                             "client's default and the execution workers' TF-<name>)")
    src.add_argument("--quotes-url", default=DEFAULT_QUOTES_URL, metavar="URL",
                     help="snapshot service whose GET /v1/quotes gives the book to fill against "
                          "(default %(default)s, the HTTP port of `tickfan node`/`tickfan demo`)")
    src.add_argument("--static-quotes", metavar="SYM=BIDxSIZE/ASKxSIZE,...",
                     help="fill against this fixed book instead of the snapshot service, "
                          "e.g. AAPL=189.25x300/189.26x200")
    parser.add_argument("--quote-interval", type=_non_negative, default=0.25, metavar="SECONDS",
                        help="how often the snapshot service is polled for the symbols traded (default %(default)s)")
    parser.add_argument("--quote-max-age", type=_non_negative, default=5.0, metavar="SECONDS",
                        help="a quote older than this (service unreachable) counts as none: orders are rejected "
                             "(default %(default)s)")
    parser.add_argument("--fill-interval-ms", type=_non_negative, default=5.0, metavar="MS",
                        help="time between the executions of a partly filled order (default %(default)s)")
    parser.add_argument("--recheck-interval-ms", type=_non_negative, default=50.0, metavar="MS",
                        help="how often resting day orders are re-checked against the book (default %(default)s)")
    parser.add_argument("--max-orders", type=_positive_int, default=MAX_ORDERS, metavar="N",
                        help="orders kept in memory; the oldest finished ones are forgotten first "
                             "(default %(default)s)")
    parser.add_argument("--status-interval", type=_non_negative, default=5.0, metavar="SECONDS",
                        help="print a one-line status this often; 0 for never (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed the random choices (rejects, jitter) for a repeatable run")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every session start and end")
    add_metrics_dir_arguments(parser)
    add_tls_arguments(parser, "accept FIX over TLS (with --fix-tls-client-ca: mutual TLS, the CompID bound to "
                              "the client certificate's CN)", prefix="fix-")
    add_health_http(parser)
    parser.add_argument("--calendar", action="store_true",
                        help="follow the exchange calendar (New York time): the opening and closing crosses at the "
                             "session's open and close, day orders expired at the end of after hours; without it "
                             "the day moves only when told (POST /v1/venue/session on --http: `tickfan venue`)")
    parser.add_argument("--quotes-ca", default=None, metavar="PEM",
                        help="verify an https:// --quotes-url against this CA (default: the system's trust store)")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--latency-ms", type=_non_negative, default=0.0, metavar="MS",
                        help="delay before each execution report (default %(default)s)")
    faults.add_argument("--jitter-ms", type=_non_negative, default=0.0, metavar="MS",
                        help="extra random delay in [0, MS] before each execution report (default %(default)s)")
    faults.add_argument("--reject-rate", type=_rate, default=0.0, metavar="FRACTION",
                        help="fraction of new orders rejected with 'simulated reject' (default %(default)s)")
    faults.add_argument("--max-fill-qty", type=_positive_int, default=None, metavar="SHARES",
                        help="cap each execution at SHARES, forcing more partial fills (default: the displayed size)")
    faults.add_argument("--no-partial-fills", action="store_true",
                        help="fill the whole remainder in one execution whatever size the book shows")
    faults.add_argument("--drop-after", type=_positive_int, default=None, metavar="N",
                        help="abort each connection (no Logout) after it has sent N execution reports")
    faults.add_argument("--slow", action="store_true",
                        help="send no heartbeats and answer no TestRequests, so clients declare us dead")
    faults.add_argument("--down", action="store_true",
                        help="start 'down': refuse connections until SIGUSR1")
    faults.add_argument("--down-schedule", type=_schedule, default=None, metavar="UP/DOWN",
                        help="alternate: accept connections for UP seconds, then refuse them (and drop the "
                             "open ones) for DOWN seconds, e.g. 30/5")


def _faults_from(args: argparse.Namespace) -> Faults:
    return Faults(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, reject_rate=args.reject_rate,
                  partial_fills=not args.no_partial_fills, max_fill_qty=args.max_fill_qty,
                  drop_after=args.drop_after, slow=args.slow)


async def serve(args: argparse.Namespace) -> int:
    provider: QuoteProvider
    poller: asyncio.Task[None] | None = None
    if args.static_quotes:
        provider = StaticQuoteProvider(parse_static_quotes(args.static_quotes))
        source = f"static quotes ({', '.join(sorted(provider.quotes))})"
    else:
        http = HttpQuoteProvider(args.quotes_url, interval=args.quote_interval, max_age=args.quote_max_age,
                                 tls=client_context(args.quotes_ca) if args.quotes_ca else None)
        provider, source = http, f"quotes from {http.base_url}/v1/quotes"
        poller = asyncio.create_task(http.run(), name="quotes")
    host, port = args.listen
    mm = MarketMaker(provider, host=host, port=port, comp_id=args.comp_id,
                     accept_comp_ids=args.accept_comp_id or DEFAULT_ACCEPTED_COMP_IDS, faults=_faults_from(args),
                     seed=args.seed, max_orders=args.max_orders, fill_interval=args.fill_interval_ms / 1000,
                     recheck_interval=args.recheck_interval_ms / 1000, tls=server_context_of(tls_files(args)))
    try:
        await mm.start()
    except OSError as e:
        print(f"market-maker: cannot listen on {host}:{port}: {e}", file=sys.stderr)
        if poller is not None:
            poller.cancel()
        return 1
    over = ("" if mm.tls is None else " over mutual TLS" if args.tls_client_ca else " over TLS")
    print(f"market maker {args.comp_id} listening on {mm.host}:{mm.port} (FIX 4.4{over}), {source}", flush=True)
    health = Health()

    def session_event(event: str) -> dict[str, object]:
        return {"reports": mm.session_event(event)}

    def quotes_fresh() -> CheckResult:
        error = provider.last_error if isinstance(provider, HttpQuoteProvider) else None
        return CheckResult(error is None and not mm.down, error or ("down (SIGUSR1)" if mm.down else source))
    health.add_sync("quotes", quotes_fresh)
    collectors = [MarketMakerCollector(mm)]
    try:
        side = await start_health_http(args, "market-maker", health,
                                       [metrics_route(collectors), session_route(session_event)])
    except SystemExit as e:
        print(e, file=sys.stderr)
        await mm.stop()
        if poller is not None:
            poller.cancel()
        return 1
    writer = writer_of(args, "market-maker", collectors)
    if writer is not None:
        writer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    background: list[asyncio.Task[None]] = []

    def toggle_down() -> None:
        background.append(asyncio.create_task(mm.set_down(not mm.down)))

    def drop_all() -> None:
        print(f"market-maker: dropped {mm.drop_connections()} connection(s)", flush=True)

    for sig, handler in ((signal.SIGINT, stop.set), (signal.SIGTERM, stop.set), (signal.SIGUSR1, toggle_down),
                         (signal.SIGUSR2, drop_all)):
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(sig, handler)
    if args.down:
        await mm.set_down(True)

    async def flap(up: float, down: float) -> None:
        while True:
            await asyncio.sleep(up)
            await mm.set_down(True)
            print(f"market-maker: down for {down:g} s (--down-schedule)", flush=True)
            await asyncio.sleep(down)
            await mm.set_down(False)
            print("market-maker: up again", flush=True)

    async def report() -> None:
        while True:
            await asyncio.sleep(args.status_interval)
            line = mm.status_line()
            if isinstance(provider, HttpQuoteProvider) and provider.last_error:
                line += f" | quotes: {provider.last_error}"
            print(line, flush=True)

    if args.down_schedule is not None:
        background.append(asyncio.create_task(flap(*args.down_schedule)))
    if args.status_interval > 0:
        background.append(asyncio.create_task(report()))
    if args.calendar:
        # start in the day's trading hours (the schedule then moves them at each session event)
        mm.engine.enter(calendar.clock(dt.datetime.now(dt.UTC)).phase)
        background.append(asyncio.create_task(follow_calendar(session_event), name="calendar"))
    try:
        await stop.wait()
    finally:
        for t in background + ([poller] if poller is not None else []):
            t.cancel()
        await asyncio.gather(*background, *([poller] if poller is not None else []), return_exceptions=True)
        await mm.stop()
        if writer is not None:
            await writer.close()
        if side is not None:
            await side.close()
        print(mm.status_line(), flush=True)
    return 0


def main(args: argparse.Namespace) -> int:
    """Entry point for ``tickfan market-maker`` (see tickfan/cli.py)."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")  # unless tickfan.logs did
    if args.verbose:
        root = logging.getLogger()
        root.setLevel(min(root.level, logging.INFO))
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130


__all__ = ["add_arguments", "main", "serve"]
