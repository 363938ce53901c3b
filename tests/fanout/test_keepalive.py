"""Keepalive pings from the server's one timer (``fanout.keepalive``), over real sockets: an idle client is pinged and
kept while it answers, one that never answers is closed GOING_AWAY, and a client's own pings are answered."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import websockets

from fanout.server import FanoutServer
from normalize import Books
from tests.conftest import WAIT

from .conftest import config, serve, subscribe, until

QUICK = config(ping_idle_timeout=0.2, ping_reply_timeout=0.2)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server frame (unmasked): (opcode, payload)."""
    head = await reader.readexactly(2)
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return head[0] & 0x0F, await reader.readexactly(n)


def test_an_idle_client_is_pinged_and_kept_while_it_answers() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url, ping_interval=None) as ws:  # it answers pings, never sends its own
            await ws.send(subscribe("AAPL"))
            await until(ws, "subscribed")
            await asyncio.sleep(1.5)  # several idle periods, each answered
            assert server.keepalive.pings_sent >= 2 and server.keepalive.dropped == 0
            assert server.stats.clients == 1
            await ws.send(subscribe("TSLA"))
            assert list((await until(ws, "subscribed")).subscribed.symbols) == ["AAPL", "TSLA"]

    serve(scenario, QUICK)


def test_a_client_that_never_answers_a_ping_is_closed_going_away() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        assert b" 101 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        opcodes = []
        while True:
            opcode, payload = await asyncio.wait_for(read_frame(reader), WAIT)
            opcodes.append(opcode)
            if opcode == 0x8:
                break
        assert 0x9 in opcodes  # pinged first
        assert struct.unpack("!H", payload[:2])[0] == 1001 and b"ping" in payload  # GOING_AWAY, saying why
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # then cut off
        assert server.keepalive.dropped == 1
        writer.close()

    serve(scenario, QUICK)


def test_a_clients_own_ping_is_answered() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url, ping_interval=None) as ws:
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, WAIT)
            assert server.keepalive.pings_sent == 0  # it was heard from: not idle

    serve(scenario)
