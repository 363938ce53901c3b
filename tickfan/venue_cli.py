"""``tickfan venue EVENT``: drive the simulated venue's day on demand, and the HTTP control that takes it.

The simulated venue is two processes: the feed (``tickfan simulate``, its ITCH system events) and the FIX market
maker (``tickfan market-maker``, its crosses and expiries). Each serves ``POST /v1/venue/session`` with
``{"event": "premarket" | "open" | "close" | "rollover"}`` (``venue.schedule`` says what each does): the
simulator on ``--control HOST:PORT``, the market maker on its ``--http`` server. This command sends an event to
both, in the order a real venue keeps: on ``open`` the feed opens first, then the opening cross fills; on
``close`` and ``rollover`` the market maker acts first (the closing cross, the day's expiries), then the feed
ends market or system hours. Either process can instead follow the exchange calendar itself (``--calendar``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from venue.schedule import EVENTS, CalendarSchedule

PATH = "/v1/venue/session"


def session_route(apply: Callable[[str], dict[str, object]]) -> Route:
    """``POST /v1/venue/session``: ``apply(event)`` answers what it did; an unknown event or a bad body is a 400."""

    async def endpoint(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            event = body["event"] if isinstance(body, dict) else None
        except (ValueError, KeyError):
            event = None
        if event not in EVENTS:
            return JSONResponse({"error": {"code": "invalid_event", "message": f"body: {{\"event\": one of "
                                           f"{', '.join(EVENTS)}}}"}}, 400)
        return JSONResponse({"event": event, **apply(event)})

    return Route(PATH, endpoint, methods=["POST"])


async def follow_calendar(apply: Callable[[str], object], *, every: float = 1.0) -> None:
    """Apply the exchange calendar's session events as the wall clock reaches them (until cancelled)."""
    schedule = CalendarSchedule(dt.datetime.now(dt.UTC))
    while True:
        await asyncio.sleep(every)
        for event in schedule.due(dt.datetime.now(dt.UTC)):
            print(f"venue: {event} (the exchange calendar)", flush=True)
            apply(event)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[1] if __doc__ else None
    parser.add_argument("event", choices=EVENTS,
                        help="premarket (start of system hours), open (market hours and the opening cross), close "
                             "(the closing cross and the end of market hours), rollover (day orders expire, gtc "
                             "orders rest on; the end of system hours)")
    parser.add_argument("--feed-control", action="append", default=[], metavar="URL",
                        help="a simulator's --control address, e.g. http://127.0.0.1:9401 (repeatable)")
    parser.add_argument("--mm-control", action="append", default=[], metavar="URL",
                        help="a market maker's --http address, e.g. http://127.0.0.1:9402 (repeatable)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="per request (default %(default)s)")


def _post(url: str, event: str, timeout: float) -> str:
    req = urllib.request.Request(url.rstrip("/") + PATH, data=json.dumps({"event": event}).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (an operator's own URL)
        return str(r.read().decode())


def main(args: argparse.Namespace) -> int:
    if not args.feed_control and not args.mm_control:
        print("tickfan venue: give --feed-control URL and/or --mm-control URL", file=sys.stderr)
        return 2
    feed_first = args.event in ("premarket", "open")
    order = ([*args.feed_control, *args.mm_control] if feed_first else [*args.mm_control, *args.feed_control])
    for url in order:
        try:
            print(f"{url}: {_post(url, args.event, args.timeout)}")
        except (OSError, urllib.error.URLError) as e:
            print(f"tickfan venue: {url}: {e}", file=sys.stderr)
            return 1
    return 0
