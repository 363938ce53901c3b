"""The picows fan-out server with real `websockets` clients over loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from fanout.server import FanoutServer
from normalize import Books
from tests.conftest import WAIT

from .conftest import bump, config, serve, subscribe, until


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

    serve(scenario)


@pytest.mark.parametrize("window", [0, 1, 2])
def test_flushed_window_by_window_every_client_gets_every_newest_version_binary_and_json(window: int) -> None:
    """Five clients, binary and JSON, flushed in windows of ``window`` clients (0: one window): each is given
    every new version of AAPL, each frame a valid WebSocket frame (websockets checks every byte)."""
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        clients = [await websockets.connect(url + ("?format=json" if i % 2 else "")) for i in range(5)]
        try:
            for i, ws in enumerate(clients):
                await ws.send(json.dumps({"subscribe": {"symbols": ["AAPL"]}}) if i % 2 else subscribe("AAPL"))
                await until(ws, "snapshot")
            for k in range(3):
                price = 1000500 + 100 * k
                bump(books, 1, price)
                for ws in clients:
                    assert (await until(ws, "quotes")).quotes.quotes[0].bid_price == price
            assert server.stats.send_failures == 0
        finally:
            for ws in clients:
                await ws.close()

    serve(scenario, config(flush_window=window))


def test_unknown_path_is_refused() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        with pytest.raises(websockets.InvalidStatus) as err:
            async with websockets.connect(url.replace("/v1/stream", "/nope")):
                pass
        assert err.value.response.status_code == 404

    serve(scenario)


def test_fragmented_messages_are_reassembled() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        raw = subscribe("TSLA")
        async with websockets.connect(url) as ws:
            await ws.send([raw[:3], raw[3:]])  # a list is sent as one fragmented message
            ack = await until(ws, "subscribed")
            assert list(ack.subscribed.symbols) == ["TSLA"]

    serve(scenario)


def test_json_mode_ping_and_errors() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url + "?format=json") as ws:
            await ws.send(json.dumps({"ping": {"nonce": "9"}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT)) == {"pong": {"nonce": "9"}}
            await ws.send("{broken")
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["error"]["code"] == "bad_message"
            await ws.send(json.dumps({"subscribe": {"symbols": ["MSFT"], "channels": ["quotes"]}}))
            assert "subscribed" in json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            snap = json.loads(await asyncio.wait_for(ws.recv(), WAIT))["snapshot"]["quotes"][0]
            assert snap["symbol"] == "MSFT" and snap["bidPrice"] == "3000000"

    serve(scenario)
