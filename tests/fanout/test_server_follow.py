"""A book source fed from elsewhere (a Redis edge) fetches a subscription's new symbols before their snapshots:
the server's ``follow`` hook, with real clients over loopback."""

from __future__ import annotations

import asyncio

import websockets

from fanout.server import FanoutServer
from normalize import Books
from tests.conftest import WAIT
from tickfan_proto import stream_pb2 as pb

from .conftest import bump, client_message, decode, serve, subscribe, until, until_pong


def test_snapshots_wait_for_the_follow_and_later_messages_keep_their_order() -> None:
    fetched = asyncio.Event()
    calls: list[dict[str, list[int]]] = []
    books_of: list[Books] = []

    def follow(subscribed: dict[str, list[int]]) -> asyncio.Future[None] | None:
        calls.append(subscribed)
        if len(calls) > 1:
            return None  # followed already

        async def fetch() -> None:
            await fetched.wait()
            bump(books_of[0], 1, 1_000_700)  # the seed: the books now hold the symbol's state

        return asyncio.ensure_future(fetch())

    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        books_of.append(books)
        async with websockets.connect(url) as ws:
            await ws.send(subscribe("AAPL", channels=("quotes", "depth")))
            await ws.send(client_message(ping=pb.Ping(nonce=7)))  # behind the subscription, in order
            await asyncio.sleep(0.2)
            assert calls == [{"quotes": [1], "depth": [1]}]
            fetched.set()
            first = decode(await asyncio.wait_for(ws.recv(), WAIT))
            assert first.WhichOneof("kind") == "subscribed"
            snap = await until(ws, "snapshot")
            assert snap.snapshot.quotes[0].bid_price == 1_000_700  # the fetched state, not what was held before
            assert (await until(ws, "depth")).depth.snapshot
            await until(ws, "pong")
            await ws.send(subscribe("AAPL", channels=("status",)))  # nothing to fetch: answered at once
            before = await until_pong(ws)
            assert [m.WhichOneof("kind") for m in before if m.WhichOneof("kind") != "heartbeat"][:2] == [
                "subscribed", "status"]

    serve(scenario, follow=follow)


def test_a_failed_follow_still_answers_with_what_is_held() -> None:
    def follow(subscribed: dict[str, list[int]]) -> asyncio.Future[None]:
        async def down() -> None:
            raise ConnectionError("Redis is down")

        return asyncio.ensure_future(down())

    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as ws:
            await ws.send(subscribe("TSLA"))
            await until(ws, "subscribed")
            assert (await until(ws, "snapshot")).snapshot.quotes[0].bid_price == 2_000_000

    serve(scenario, follow=follow)
