"""Bars over a real WebSocket, against the reference built from the same generated messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import websockets

from fanout.server import FanoutServer
from normalize import Books
from normalize.bar_feed import BarFeed
from normalize.bar_types import MINUTE, SECOND
from tests.conftest import eventually
from tests.normalize.bar_reference import Key, Ohlcv, reference_bars, session
from tickfan_proto import stream_pb2 as pb

from .conftest import config, fanout_server, subscribe, until, until_pong

PACKETS = session()
ALL = [m for p in PACKETS for m in p]
END = ALL[-1].timestamp + 2 * MINUTE
OPENING = PACKETS[0]  # the stock directory, the opening orders and states: no print yet
assert not any(hasattr(m, "match_number") for m in OPENING)
WIDTH = {"1s": SECOND, "1m": MINUTE}
CHANNELS = ("bars:1s", "bars:1m")


def named_books() -> tuple[Books, dict[int, str]]:
    books = Books()
    books.apply_batch(list(OPENING))
    return books, {loc: name for loc, name in enumerate(books.symbol_of) if name}


class BarClient:
    """What one client folds from the wire: the newest state per bar, and the rules it checks on each bar."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.bars: dict[tuple[str, str, int], pb.Bar] = {}
        self.newest: dict[tuple[str, str], int] = {}  # (interval, symbol) -> newest start received
        self.received: list[pb.Bar] = []
        self.snapshots = 0

    def take(self, msg: pb.ServerMessage) -> None:
        if msg.WhichOneof("kind") != "bars":
            return
        self.snapshots += msg.bars.snapshot
        assert msg.bars.send_time_ns > 0
        for b in msg.bars.bars:
            self.received.append(b)
            stream = (b.interval, b.symbol)
            newest = self.newest.get(stream)
            if b.state != "revised":  # never a bar older than one the client already has
                assert newest is None or b.start_time_ns >= newest, (b, newest)
            self.newest[stream] = max(newest or b.start_time_ns, b.start_time_ns)
            key = (b.interval, b.symbol, b.start_time_ns)
            old = self.bars.get(key)
            if old is not None:
                assert old.state != "final" or b.state != "update", "an update after the bar's final"
                assert b.version >= old.version, "a bar's version went back"
                if b.state == "revised":
                    assert b.version == old.version + 1, "each revision one version up"
            self.bars[key] = b

    def ohlcv(self) -> dict[Key, Ohlcv]:
        loc_of = {name: loc for loc, name in self.names.items()}
        return {(loc_of[s], WIDTH[i], st): (b.open, b.high, b.low, b.close, b.volume, b.trades, b.notional)
                for (i, s, st), b in self.bars.items() if b.trades}


async def drain(ws: Any, client: BarClient) -> None:
    for msg in await until_pong(ws):
        client.take(msg)


async def stream_session(server: FanoutServer, books: Books, feed: BarFeed, packets: Sequence[Sequence[Any]]
                         ) -> None:
    for i, packet in enumerate(packets):
        books.apply_batch(list(packet))
        feed.pump()
        server.notify()
        if i % 3 == 0:  # flushes land between packets and inside runs of them: some updates conflate
            await asyncio.sleep(0.003)


def test_bars_over_a_websocket_match_the_reference_with_a_revision_on_the_wire() -> None:
    async def main() -> None:
        books, names = named_books()
        feed = BarFeed(books)
        async with fanout_server(books, config(), bars=feed) as server, \
                websockets.connect(server.url) as b, websockets.connect(server.url + "?format=json") as j:
            clients = {b: BarClient(names), j: BarClient(names)}
            await b.send(subscribe(*names.values(), channels=CHANNELS))
            await j.send(json.dumps({"subscribe": {"symbols": list(names.values()), "channels": list(CHANNELS)}}))
            for ws, client in clients.items():
                for _ in CHANNELS:
                    client.take(await until(ws, "bars"))  # the (empty) snapshot of each channel
                assert client.snapshots == 2
            await stream_session(server, books, feed, PACKETS[1:])
            feed.close_until(END)
            server.notify()
            await eventually(lambda: server.hub.bars.cursor == feed.bars_total, what="the flush took every bar")
            for ws, client in clients.items():
                await drain(ws, client)
                assert client.ohlcv() == reference_bars(ALL)
                assert any(x.state == "revised" and x.version == 1 and x.interval == "1s" for x in client.received)
                assert all(x.state != "update" for x in client.bars.values()), "every bar closed: finals last"
            assert server.hub.bars.stats.updates_conflated > 0
            assert feed.counters["breaks"] >= 5 and feed.counters["breaks_wrong_locate"] == 0

    asyncio.run(main())


def test_a_late_subscriber_starts_at_its_snapshot_and_never_goes_back() -> None:
    """Subscribing mid-session: the snapshot (latest closed + open bar) first, then only newer states; what it
    holds at the end is the reference for every bar from its snapshot on."""
    async def main() -> None:
        books, names = named_books()
        feed = BarFeed(books)
        half = len(PACKETS) // 2
        async with fanout_server(books, config(), bars=feed) as server, websockets.connect(server.url) as ws:
            await stream_session(server, books, feed, PACKETS[1:half])
            await ws.send(subscribe(*names.values(), channels=("bars:1s",)))
            client = BarClient(names)
            snap = await until(ws, "bars")
            assert snap.bars.snapshot
            client.take(snap)
            first = {b.symbol: b.start_time_ns for b in snap.bars.bars}
            assert len(first) == len(names)  # every symbol has printed by now
            await stream_session(server, books, feed, PACKETS[half:])
            feed.close_until(END)
            server.notify()
            await eventually(lambda: server.hub.bars.cursor == feed.bars_total, what="the flush took every bar")
            await drain(ws, client)
            want = {k: v for k, v in reference_bars(ALL).items()
                    if k[1] == SECOND and k[2] >= first[names[k[0]]]}
            got = {k: v for k, v in client.ohlcv().items() if k[2] >= first[names[k[0]]]}
            assert got == want

    asyncio.run(main())
