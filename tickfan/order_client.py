"""The shared shape of a user's order commands (``tickfan trade``, ``tickfan replace``): where they talk to (the
order API, the stream), their idempotency key and patience, and one entry that finds the development key and turns
an unreachable platform into one line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from tickfan.args import add_client_tls_arguments


def run(coro: Any) -> int:
    """Run a command's coroutine on uvloop when it is installed (a client install may lack it)."""
    with contextlib.suppress(ImportError):
        import uvloop
        return int(uvloop.run(coro))
    return int(asyncio.run(coro))


def add_order_client_arguments(parser: argparse.ArgumentParser, waits_for: str) -> None:
    """Where a user's order command talks to (the API, the stream), its idempotency key and how long it waits."""
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="order API (default %(default)s)")
    parser.add_argument("--stream", default="ws://127.0.0.1:8765/v1/stream",
                        help="WebSocket stream (default %(default)s)")
    parser.add_argument("--key", default=None, help="idempotency key (default: a new one; reuse it to retry)")
    parser.add_argument("--timeout", type=float, default=30.0, help=f"seconds to wait for {waits_for}")
    add_client_tls_arguments(parser)


def run_order_client(command: str, args: argparse.Namespace,
                     work: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> int:
    """A user's order command: the development key found if tokens need it, then ``work``; the platform
    unreachable is one line naming it, exit 1."""
    import httpx
    import websockets

    from tickfan.devkey import DevKeyError, use_dev_key
    try:
        use_dev_key(create=False)
    except DevKeyError as e:
        print(f"tickfan {command}: {e}", file=sys.stderr)
        return 2
    try:
        return run(work(args))
    except (OSError, websockets.exceptions.WebSocketException, httpx.HTTPError) as e:
        print(f"tickfan {command}: cannot reach the platform ({args.api}, {args.stream}): {e}", file=sys.stderr)
        return 1
