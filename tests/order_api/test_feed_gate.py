"""One source of truth for trading status: the simulator's LULD pause reaches a WebSocket client on the status
channel (binary and JSON) and, from the same books, refuses an order with ``symbol_halted``; after the session's
end of market hours (S 'M') the same feed refuses orders with ``market_closed``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets
from google.protobuf import json_format

from fanout.server import FanoutServer
from ingest.itch import decode
from normalize import Books
from order_api.api import create_app
from order_api.quotes import BookQuotes
from tests.conftest import eventually
from tests.fanout.conftest import fanout_server, subscribe, until
from tickfan_proto import stream_pb2 as pb
from venue.simulator import ExchangeSimulator
from venue.status import StatusConfig

from .conftest import ScopedLedger
from .test_api import KEY, auth, order

pytestmark = pytest.mark.anyio
NS = 1_000_000_000


class Feed:
    """The simulator on a clock of its own, applied to books in-process as the feed handler would."""

    def __init__(self, books: Books, server: FanoutServer) -> None:
        self.now = 34_200 * NS
        self.sim = ExchangeSimulator(30, seed=7, clock=lambda: self.now,
                                     status=StatusConfig(luld_every=5.0, luld_pause=2.0))
        self.books, self.server = books, server

    def step(self, n: int = 200, seconds: float = 0.25) -> None:
        self.books.apply_batch([decode(m) for m in self.sim.generate_encoded(n)])
        self.now += int(seconds * NS)
        self.server.notify()


async def next_status(ws: Any, json_mode: bool) -> pb.StatusBatch:
    while True:
        raw = await ws.recv()
        msg = pb.ServerMessage()
        if json_mode:
            assert isinstance(raw, str)
            data = json.loads(raw)
            if "status" not in data:
                continue
            json_format.ParseDict(data, msg)
        else:
            msg.ParseFromString(raw)
            if msg.WhichOneof("kind") != "status":
                continue
        return msg.status


async def test_a_luld_pause_reaches_the_client_and_refuses_orders_then_the_close(ledger: ScopedLedger) -> None:
    books = Books()
    async with fanout_server(books) as server:
        feed = Feed(books, server)
        for _ in range(20):  # the opening (S O, S S, S Q, the directory, the books), then the first pause
            feed.step()
            if books.locate_of.get("TSLA") and books.trading_state[books.locate_of["TSLA"]] == ord("P"):
                break
        app = create_app(ledger, BookQuotes(books), jwt_key=KEY, relay=False)
        u = ledger.user()
        await ledger.deposit(u, 100_000 * 10_000)
        async with websockets.connect(server.url) as binary, websockets.connect(server.url + "?format=json") as text, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:
            for ws in (binary, text):
                await ws.send(subscribe("TSLA", "NVDA", channels=("status",)))
                await until(ws, "subscribed")
            snaps = [await next_status(binary, False), await next_status(text, True)]
            assert all(s.send_time_ns > 0 for s in snaps)  # the node's send time: the frames' only difference
            for s in snaps:
                s.ClearField("send_time_ns")
            assert snaps[0] == snaps[1] and snaps[0].snapshot and snaps[0].market.market_open
            paused = {s.symbol: s for s in snaps[0].symbols if s.trading_state == "P"}
            assert list(paused) == ["TSLA"] and paused["TSLA"].reason == "LUDP"  # TSLA first, NVDA next
            assert paused["TSLA"].luld_upper_price > paused["TSLA"].luld_reference_price > 0
            r = await api.post("/v1/orders", json=order(symbol="TSLA"), headers=auth(u))
            assert r.status_code == 422 and r.json()["error"]["code"] == "symbol_halted", r.text
            assert "paused LUDP" in r.json()["error"]["message"]
            # the pause ends within its 2 s: every client sees TSLA trade again, and orders go
            for _ in range(10):
                feed.step()
            for json_mode, ws in ((False, binary), (True, text)):
                seen: list[tuple[str, str]] = []
                while ("TSLA", "T") not in seen:
                    batch = await next_status(ws, json_mode)
                    seen += [(s.symbol, s.trading_state) for s in batch.symbols]
            r = await api.post("/v1/orders", json=order(symbol="TSLA"), headers=auth(u))
            assert r.status_code == 201, r.text
            # the session's end of market hours: on the channel, and no more orders
            feed.sim.close_market()
            feed.step()
            for json_mode, ws in ((False, binary), (True, text)):
                while True:
                    batch = await next_status(ws, json_mode)
                    if batch.HasField("market") and batch.market.system_event == "M":
                        assert not batch.market.market_open
                        break
            await eventually(lambda: books.system_event == "M", what="the close applied")
            r = await api.post("/v1/orders", json=order(symbol="AAPL"), headers=auth(u))
            assert r.status_code == 422 and r.json()["error"]["code"] == "market_closed", r.text
    assert await ledger.check() == []
