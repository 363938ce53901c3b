"""What the fan-out tests share: three-symbol books, one server builder, and WebSocket message helpers.

``serve(scenario, config=..., orders=..., verify=...)`` runs ``scenario(server, books, url)`` against a started
``FanoutServer`` on a free port and closes it after; ``fanout_server`` is the same as an async context manager.
Other test packages import these from here (``from tests.fanout.conftest import serve, bump``), never from a
test module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import websockets
from google.protobuf import json_format

from fanout.config import FanoutConfig
from fanout.server import FanoutServer
from ingest.messages import AddOrder, SystemEvent
from normalize import Books
from tests.conftest import WAIT, directory
from tickfan_proto import stream_pb2 as pb

SYMBOLS = ("AAPL", "TSLA", "MSFT")
FAST_FLUSH = 0.01  # seconds: tests wait on flushes, so flush often


def make_books() -> Books:
    """AAPL, TSLA, MSFT at locates 1..3, each with one bid (locate x 100.0000) and one ask a cent above, in market
    hours (the feed's system event Q: orders priced from these books are accepted)."""
    b = Books()
    b.apply(SystemEvent(0, 0, 1, "Q"))
    for loc, sym in enumerate(SYMBOLS, start=1):
        b.apply(directory(loc, sym))
        b.apply(AddOrder(loc, 0, 2, loc * 100, "B", 100, sym, 1000000 * loc))
        b.apply(AddOrder(loc, 0, 3, loc * 100 + 1, "S", 100, sym, 1000000 * loc + 100))
    return b


_ref = [10_000]


def bump(b: Books, loc: int, price: int, ts: int = 5) -> None:
    """Move the symbol's best bid up: one new version."""
    _ref[0] += 1
    b.apply(AddOrder(loc, 0, ts, _ref[0], "B", 10, SYMBOLS[loc - 1], price))


def config(**settings: Any) -> FanoutConfig:
    """A test server's settings: a free port, fast flushes, and whatever the test changes."""
    return FanoutConfig(**{"port": 0, "flush_interval": FAST_FLUSH, **settings})


@contextlib.asynccontextmanager
async def fanout_server(books: Books, settings: FanoutConfig | None = None, **wiring: Any
                        ) -> AsyncIterator[FanoutServer]:
    """A started server over ``books`` (``wiring``: ``orders``, ``verify``, ``before_flush``), closed after."""
    server = FanoutServer(books, settings or config(), **wiring)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


Scenario = Callable[[FanoutServer, Books, str], Awaitable[None]]


def serve(scenario: Scenario, settings: FanoutConfig | None = None, books: Books | None = None,
          **wiring: Any) -> None:
    """Run ``scenario(server, books, url)`` in a fresh event loop against a started server."""
    async def main() -> None:
        the_books = books if books is not None else make_books()
        async with fanout_server(the_books, settings, **wiring) as server:
            await scenario(server, the_books, server.url)

    asyncio.run(main())


# ------------------------------------------------------------------ messages
def decode(raw: bytes | str) -> pb.ServerMessage:
    """A server frame: binary protobuf, or canonical JSON text."""
    if isinstance(raw, str):
        return json_format.Parse(raw, pb.ServerMessage())
    return pb.ServerMessage.FromString(raw)


def client_message(**kw: Any) -> bytes:
    return bytes(pb.ClientMessage(**kw).SerializeToString())


def subscribe(*symbols: str, channels: tuple[str, ...] = ()) -> bytes:
    return client_message(subscribe=pb.Subscribe(symbols=symbols, channels=channels))


async def until(ws: Any, kind: str, timeout: float = WAIT) -> pb.ServerMessage:
    """The next message of ``kind``, skipping others (heartbeats, quotes); fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind!r} message within {timeout:.0f} s")
        msg = decode(await asyncio.wait_for(ws.recv(), left))
        if msg.WhichOneof("kind") == kind:
            return msg


async def until_pong(ws: Any, nonce: int = 424242) -> list[pb.ServerMessage]:
    """A barrier: ping, and return every message the server sent before its pong (frames stay in order)."""
    await ws.send(client_message(ping=pb.Ping(nonce=nonce)))
    before: list[pb.ServerMessage] = []
    while True:
        msg = decode(await asyncio.wait_for(ws.recv(), WAIT))
        if msg.WhichOneof("kind") == "pong" and msg.pong.nonce == nonce:
            return before
        before.append(msg)


async def closed(ws: Any) -> websockets.ConnectionClosed:
    """Read until the server closes the connection; the close it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    except websockets.ConnectionClosed as exc:
        return exc
