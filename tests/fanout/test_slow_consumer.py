"""A client that stops reading is cut off; the others keep streaming. A client that floods is limited."""

from __future__ import annotations

import asyncio
import socket

import pytest
import websockets

from fanout.config import FanoutConfig
from fanout.protocol import ClientProtocol
from fanout.server import FanoutServer
from ingest.messages import AddOrder
from normalize import Books
from tests.conftest import WAIT, directory, eventually
from tickfan_proto import stream_pb2 as pb

from .conftest import client_message, config, serve, subscribe

N = 300


def big_books() -> Books:
    b = Books()
    for loc in range(1, N + 1):
        b.apply(directory(loc, f"S{loc}"))
    return b


def test_a_client_that_stops_reading_is_disconnected_and_others_are_not() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        sub = subscribe(*(f"S{i}" for i in range(1, N + 1)))
        ref = [0]

        async def churn() -> None:  # every symbol changes every few milliseconds: big frames each flush
            while True:
                for loc in range(1, N + 1):
                    ref[0] += 1
                    books.apply(AddOrder(loc, 0, 5, ref[0], "B", 1, f"S{loc}", 1_000_000 + ref[0] % 5000))
                await asyncio.sleep(0.005)

        async def read(ws: websockets.ClientConnection) -> None:
            while True:
                await ws.recv()

        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        churner = asyncio.create_task(churn())
        try:
            async with (websockets.connect(url, sock=raw, max_queue=1, close_timeout=0.5) as slow,
                        websockets.connect(url) as good):
                await slow.send(sub)
                await good.send(sub)
                reader = asyncio.create_task(read(good))  # the good client reads everything
                await eventually(lambda: server.stats.slow_disconnects == 1, what="the slow client cut off",
                                 state=lambda: server.stats)
                await eventually(lambda: server.stats.clients == 1, what="only the good client left")
                assert not reader.done()
                reader.cancel()
                for _ in range(5):
                    await asyncio.wait_for(good.recv(), WAIT)  # and keeps streaming after
                assert server.stats.slow_disconnects == 1 and server.stats.clients == 1
        finally:
            churner.cancel()

    serve(scenario, config(slow_client_timeout=0.5, write_buffer_high=32 * 1024, socket_send_buffer=16 * 1024),
          books=big_books())


def test_flooding_client_is_rate_limited_then_recovers() -> None:
    p = ClientProtocol({"AAPL": 1}.get, FanoutConfig(max_messages_per_second=10, burst=5))
    p.open()
    ping = pb.ClientMessage(ping=pb.Ping(nonce=1)).SerializeToString()
    kinds = [p.receive(ping, now=0.0).messages[0].WhichOneof("kind") for _ in range(7)]
    assert kinds == ["pong"] * 5 + ["error"] * 2
    assert p.receive(ping, now=0.0).messages[0].error.code == "rate_limited"
    assert p.receive(ping, now=0.5).messages[0].WhichOneof("kind") == "pong"  # tokens refilled
    assert p.rate_limited == 3


def depth_books(symbols: int, levels: int) -> Books:
    b = Books()
    ref = 0
    for loc in range(1, symbols + 1):
        b.apply(directory(loc, f"S{loc}"))
        for level in range(levels):
            for side, price in (("B", 1_000_000 - 100 * level), ("S", 1_000_100 + 100 * level)):
                ref += 1
                b.apply(AddOrder(loc, 0, 2, ref, side, 100 + level, f"S{loc}", price))
    return b


def test_replies_left_unread_past_4_mib_cut_the_client_off_with_a_1008_close() -> None:
    """Issue 10: a client that asks for snapshots and reads none is cut off at the 4 MiB limit (not by the
    timer), and when it reads again it finds what was queued, then the 1008 close saying why."""
    assert FanoutConfig().write_buffer_max == 4 * 1024 * 1024
    symbols = 1000

    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        names = [f"S{i}" for i in range(1, symbols + 1)]
        ask = subscribe(*names, channels=("depth",))
        drop = client_message(unsubscribe=pb.Unsubscribe(symbols=names, channels=["depth"]))
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        async with websockets.connect(url, sock=raw, max_queue=1, max_size=None, close_timeout=0.5) as ws:
            for _ in range(30):  # each subscribe brings a snapshot of ~250 KB of depth, none of it read
                if server.stats.slow_disconnects:
                    break
                await ws.send(ask)
                await ws.send(drop)
                await asyncio.sleep(0.05)
            await eventually(lambda: server.stats.slow_disconnects == 1, what="the client cut off at 4 MiB",
                             state=lambda: server.stats)
            assert server.stats.clients == 0  # nothing more is queued for it
            frames = 0
            with pytest.raises(websockets.ConnectionClosed) as err:
                while True:  # it reads again: the snapshots queued, then the close
                    await asyncio.wait_for(ws.recv(), WAIT)
                    frames += 1
            assert err.value.rcvd is not None and err.value.rcvd.code == 1008
            assert err.value.rcvd.reason == f"slow consumer: over {4 * 1024 * 1024} bytes unread"
            assert frames > 10

    serve(scenario, config(slow_client_timeout=60, max_messages_per_second=1000, burst=1000,
                           max_symbols=symbols, max_symbols_per_second=1e9, symbol_burst=10**9),
          books=depth_books(symbols, 10))
