"""The picows fan-out server with real `websockets` clients over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets

from fanout.server import FanoutServer
from normalize import Books
from tickfan_proto import stream_pb2 as pb

from .helpers import bump, make_books


def run(scenario: Callable[[FanoutServer, Books, str], Awaitable[None]]) -> None:
    async def main() -> None:
        books = make_books()
        server = FanoutServer(books, port=0, flush_interval=0.01)
        await server.start()
        try:
            await scenario(server, books, f"ws://127.0.0.1:{server.port}/v1/stream")
        finally:
            await server.close()

    asyncio.run(main())


async def until(ws: Any, kind: str, timeout: float = 2.0) -> pb.ServerMessage:
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout)
        msg = pb.ServerMessage.FromString(raw if isinstance(raw, bytes) else raw.encode())
        if msg.WhichOneof("kind") == kind:
            return msg


def subscribe(*symbols: str) -> bytes:
    return bytes(pb.ClientMessage(subscribe=pb.Subscribe(symbols=symbols)).SerializeToString())


def test_two_clients_get_snapshot_then_updates() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            for ws in (a, b):
                await ws.send(subscribe("AAPL"))
                await until(ws, "subscribed")
                snap = await until(ws, "snapshot")
                assert snap.snapshot.quotes[0].bid_price == 1000000
            bump(books, 1, 1000500)
            for ws in (a, b):
                q = (await until(ws, "quotes")).quotes.quotes[0]
                assert q.bid_price == 1000500 and q.seq > snap.snapshot.quotes[0].seq
            assert server.stats.clients == 2

    run(scenario)


def test_unknown_path_is_refused() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        with pytest.raises(websockets.InvalidStatus) as err:
            async with websockets.connect(url.replace("/v1/stream", "/nope")):
                pass
        assert err.value.response.status_code == 404

    run(scenario)


def test_fragmented_messages_are_reassembled() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        raw = subscribe("TSLA")
        async with websockets.connect(url) as ws:
            await ws.send([raw[:3], raw[3:]])  # a list is sent as one fragmented message
            ack = await until(ws, "subscribed")
            assert list(ack.subscribed.symbols) == ["TSLA"]

    run(scenario)


def test_json_mode_ping_and_errors() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url + "?format=json") as ws:
            await ws.send(json.dumps({"ping": {"nonce": "9"}}))
            assert json.loads(await ws.recv()) == {"pong": {"nonce": "9"}}
            await ws.send("{broken")
            assert json.loads(await ws.recv())["error"]["code"] == "bad_message"
            await ws.send(json.dumps({"subscribe": {"symbols": ["MSFT"], "channels": ["quotes"]}}))
            assert "subscribed" in json.loads(await ws.recv())
            snap = json.loads(await ws.recv())["snapshot"]["quotes"][0]
            assert snap["symbol"] == "MSFT" and snap["bidPrice"] == "3000000"

    run(scenario)
