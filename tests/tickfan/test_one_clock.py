"""One clock, through the whole path: ITCH stamps (ns since midnight US Eastern of the session's date) in,
Unix epoch ns out on the WebSocket, across both DST changes and for a replayed Nasdaq file of another date.

Expected instants are written out by hand in UTC, not computed with the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets
from google.protobuf import json_format

from ingest import itch
from ingest.messages import AddOrder, Message, SystemEvent, TradingAction
from tests.conftest import directory, eventually, free_port
from tests.fanout.conftest import subscribe, until
from tickfan.node import Node, NodeConfig
from tickfan.roles import IngestRole
from tickfan_proto import stream_pb2 as pb
from venue.feed import serve
from venue.replay import replay
from venue.simulator import ExchangeSimulator
from vocab.clock import eastern_midnight_ns, today_eastern

HOUR = 3_600 * 10**9
STAMP = 10 * HOUR + 123  # every simulated message: ten hours (and 123 ns) after the session's midnight


def utc(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()) * 10**9


def plain_node(**config: Any) -> tuple[Node, int]:
    """An in-process node on free loopback ports (no HTTP); returns it and its feed port."""
    feed = free_port(socket.SOCK_DGRAM)
    node = Node(NodeConfig(feeds=[("127.0.0.1", feed)], ws=("127.0.0.1", free_port()), serve_http=False,
                           **config))
    return node, feed


def ws_url(node: Node, json: bool = False) -> str:
    host, port = node.config.ws
    return f"ws://{host}:{port}/v1/stream" + ("?format=json" if json else "")


async def first_snapshot(node: Node, symbol: str) -> tuple[pb.Quote, pb.Depth]:
    """Subscribe to ``symbol``'s quotes and depth; its snapshots, after checking the JSON mode says the same."""
    async with websockets.connect(ws_url(node)) as ws:
        await ws.send(subscribe(symbol, channels=("quotes", "depth")))
        quote = (await until(ws, "snapshot")).snapshot.quotes[0]
        depth = (await until(ws, "depth")).depth.books[0]
    async with websockets.connect(ws_url(node, json=True)) as ws:
        await ws.send(json_format.MessageToJson(pb.ClientMessage(subscribe=pb.Subscribe(symbols=[symbol]))))
        while True:
            msg = json_format.Parse(await asyncio.wait_for(ws.recv(), 20), pb.ServerMessage())
            if msg.WhichOneof("kind") == "snapshot":
                assert msg.snapshot.quotes[0].exchange_time_ns == quote.exchange_time_ns
                break
    return quote, depth


# the two DST Sundays of 2026 (23 and 25 hours long) and the Mondays after: 10 h after midnight is ...
@pytest.mark.parametrize(("day", "expected"), [
    (dt.date(2026, 3, 8), utc(2026, 3, 8, 15, 0)),    # midnight EST (05:00Z), 10 h later 11:00 EDT
    (dt.date(2026, 3, 9), utc(2026, 3, 9, 14, 0)),    # EDT all day: 10:00 EDT
    (dt.date(2026, 11, 1), utc(2026, 11, 1, 14, 0)),  # midnight EDT (04:00Z), 10 h later 09:00 EST
    (dt.date(2026, 11, 2), utc(2026, 11, 2, 15, 0)),  # EST all day: 10:00 EST
])
def test_a_simulated_session_on_a_dst_day_reaches_clients_in_epoch_time(day: dt.date, expected: int) -> None:
    async def scenario() -> None:
        node, feed = plain_node(session="TICKFAN001", session_date=day)  # a live feed's date: configured
        await node.start()
        try:
            sim = ExchangeSimulator(30, seed=2, session_date=day, clock=lambda: STAMP)
            await serve([("127.0.0.1", feed)], rate=20_000, simulator=sim, duration=0.3)
            await eventually(lambda: "TSLA" in node.books.locate_of, what="the simulated directory")
            quote, depth = await first_snapshot(node, "TSLA")
            assert quote.exchange_time_ns == expected + 123 and depth.exchange_time_ns == expected + 123
        finally:
            await node.close()

    asyncio.run(scenario())


# A day in Nasdaq's own file format (2-byte big-endian length + ITCH 5.0 message), gzipped as published.
OPEN = 9 * HOUR + 30 * 60 * 10**9  # 09:30 Eastern


def nasdaq_day() -> list[Message]:
    return [SystemEvent(0, 0, 3 * HOUR, "O"), directory(1, "AAPL", timestamp=3 * HOUR + 5),
            TradingAction(1, 0, 3 * HOUR + 6, "AAPL", "T", " ", ""), SystemEvent(0, 0, OPEN - 1, "Q"),
            AddOrder(1, 0, OPEN, 1, "B", 100, "AAPL", 1_650_000),
            AddOrder(1, 0, OPEN + 777, 2, "S", 200, "AAPL", 1_650_100)]


def write_gzipped(path: Path, messages: list[Message]) -> None:
    with gzip.open(path, "wb") as f:
        for m in messages:
            raw = itch.encode(m)
            f.write(len(raw).to_bytes(2, "big") + raw)


def test_a_replayed_nasdaq_file_keeps_its_date(tmp_path: Path) -> None:
    path = tmp_path / "01302019.NASDAQ_ITCH50.gz"
    write_gzipped(path, nasdaq_day())

    async def scenario() -> None:
        node, feed = plain_node(session="20190130RP")  # no --session-date: the replay's session names the date
        await node.start()
        try:
            assert await replay(path, [("127.0.0.1", feed)], speed=0) == len(nasdaq_day())
            await eventually(lambda: node.books.seq[1] >= 3, what="the replayed book")
            quote, depth = await first_snapshot(node, "AAPL")
            # 2019-01-30 is EST: midnight is 05:00Z, the open 14:30Z; the ask joined 777 ns after the open
            assert quote.exchange_time_ns == utc(2019, 1, 30, 14, 30) + 777 == depth.exchange_time_ns
            assert (quote.bid_price, quote.ask_price) == (1_650_000, 1_650_100)
        finally:
            await node.close()

    asyncio.run(scenario())


def test_tickfan_replay_dates_a_file_whose_name_does_not(tmp_path: Path) -> None:
    path = tmp_path / "summer.itch.gz"
    write_gzipped(path, nasdaq_day())

    async def scenario() -> None:
        node, feed = plain_node(session="20190701RP")
        await node.start()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tickfan", "replay", str(path), "--date", "2019-07-01", "--speed", "0",
                "--target", f"127.0.0.1:{feed}", stderr=asyncio.subprocess.PIPE)
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err
            assert b"trading day 2019-07-01, session 20190701RP" in err
            await eventually(lambda: node.books.seq[1] >= 3, what="the replayed book")
            quote, _ = await first_snapshot(node, "AAPL")
            assert quote.exchange_time_ns == utc(2019, 7, 1, 13, 30) + 777  # EDT: the open is 13:30Z
        finally:
            await node.close()

    asyncio.run(scenario())


def test_a_nodes_date_is_configured_else_named_by_the_session_else_today() -> None:
    configured = IngestRole(NodeConfig(session_date=dt.date(2019, 1, 30)))
    assert configured.books.session_date == dt.date(2019, 1, 30)  # before any packet
    undated = IngestRole(NodeConfig())
    assert undated.books.session_date is None and undated.books.midnight_ns == 0
    day = today_eastern()
    assert undated.date_books() in (day, day + dt.timedelta(days=1))  # no feed yet, no name: today in New York
    assert undated.books.midnight_ns == eastern_midnight_ns(undated.books.session_date or day)
