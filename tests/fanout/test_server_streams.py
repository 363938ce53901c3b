"""The picows server under a stream of book changes, and misbehaving clients beside well-behaved ones."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from fanout.server import FanoutServer
from ingest.messages import Trade
from normalize import Books
from tests.conftest import WAIT, eventually
from tickfan_proto import stream_pb2 as pb

from .conftest import bump, closed, config, decode, serve, subscribe, until


async def collect_until_current(ws: Any, books: Books, locates: dict[str, int]) -> list[pb.ServerMessage]:
    """Every message until this client holds each symbol's current version."""
    seen: dict[str, int] = {}
    out: list[pb.ServerMessage] = []
    while any(seen.get(sym, -1) != int(books.seq[loc]) for sym, loc in locates.items()):
        msg = decode(await asyncio.wait_for(ws.recv(), WAIT))
        out.append(msg)
        kind = msg.WhichOneof("kind")
        if kind in ("snapshot", "quotes"):
            for q in getattr(msg, kind).quotes:
                seen[q.symbol] = q.seq
    return out


def check_order(messages: list[pb.ServerMessage], symbols: set[str]) -> int:
    """Snapshot before any update, at most one quote per symbol per batch, seq strictly increasing per symbol."""
    last: dict[str, int] = {}
    updates = 0
    for msg in messages:
        kind = msg.WhichOneof("kind")
        if kind not in ("snapshot", "quotes"):
            continue
        batch = list(getattr(msg, kind).quotes)
        assert len({q.symbol for q in batch}) == len(batch), "conflation: one quote per symbol per frame"
        for q in batch:
            if kind == "quotes":
                assert q.symbol in last, f"update of {q.symbol} before its snapshot"
                updates += 1
            assert q.seq > last.get(q.symbol, -1), f"{q.symbol} seq went backwards"
            last[q.symbol] = q.seq
    assert set(last) == symbols
    return updates


def test_binary_and_json_clients_see_snapshot_first_then_increasing_seq() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as b, websockets.connect(url + "?format=json") as j:
            await b.send(subscribe("AAPL", "TSLA"))
            await j.send(json.dumps({"subscribe": {"symbols": ["aapl", "tsla"]}}))
            for step in range(150):  # changes land inside and between flushes (10 ms), so some conflate
                bump(books, 1 + step % 2, 1_000_000 * (1 + step % 2) + 1_000 + step)
                if step % 10 == 0:
                    await asyncio.sleep(0.005)
            symbols = {"AAPL": 1, "TSLA": 2}
            for ws in (b, j):
                messages = await collect_until_current(ws, books, symbols)
                assert messages[0].WhichOneof("kind") == "subscribed"
                updates = check_order(messages, set(symbols))
                assert 0 < updates < 150, updates  # updates arrived, conflated: never more than the changes
            assert server.stats.updates_sent > 0 and server.stats.bytes_sent > 0

    serve(scenario)


def test_garbage_from_one_client_is_answered_and_others_keep_streaming() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as good, websockets.connect(url) as bad:
            await good.send(subscribe("AAPL"))
            await until(good, "snapshot")
            for junk in (b"\xff\xff\xff\xff", "not protobuf, not json", b"\x0a\x05\x0a\x03AA"):
                await bad.send(junk)
                err = await until(bad, "error")
                assert err.error.code == "bad_message"
            await bad.send(pb.ClientMessage(ping=pb.Ping(nonce=7)).SerializeToString())
            assert (await until(bad, "pong")).pong.nonce == 7  # still open after garbage
            bump(books, 1, 1000700)
            q = (await until(good, "quotes")).quotes.quotes[0]
            assert q.bid_price == 1000700
            assert server.stats.errors_sent == 3 and server.stats.clients == 2

    serve(scenario)


@pytest.mark.parametrize("fragmented", [False, True])
def test_oversized_message_gets_too_large_then_close_1009(fragmented: bool) -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as other, websockets.connect(url, max_size=None) as big:
            await other.send(subscribe("TSLA"))
            await until(other, "snapshot")
            payload = b"\x00" * 70_000
            await big.send([payload[:40_000], payload[40_000:]] if fragmented else payload)
            err = await until(big, "error")
            assert err.error.code == "too_large"
            close = await closed(big)
            assert close.rcvd is not None and close.rcvd.code == 1009
            bump(books, 2, 2000700)
            assert (await until(other, "quotes")).quotes.quotes[0].bid_price == 2000700

    serve(scenario)


def test_trades_channel_unsubscribe_and_heartbeat_over_the_wire() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as ws:
            await ws.send(pb.ClientMessage(subscribe=pb.Subscribe(
                symbols=["TSLA", "AAPL"], channels=["quotes", "trades"])).SerializeToString())
            await until(ws, "snapshot")
            books.apply(Trade(2, 0, 9, 0, "B", 300, "TSLA", 2000050, 77))
            (t,) = (await until(ws, "trades")).trades.trades
            assert (t.symbol, t.price, t.size, t.match_number) == ("TSLA", 2000050, 300, 77)
            await ws.send(pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=["AAPL"])).SerializeToString())
            ack = await until(ws, "subscribed")
            assert list(ack.subscribed.symbols) == ["AAPL", "TSLA"]  # AAPL trades remain
            bump(books, 1, 1000800)
            bump(books, 2, 2000800)
            assert [q.symbol for q in (await until(ws, "quotes")).quotes.quotes] == ["TSLA"]
            assert (await until(ws, "heartbeat")).heartbeat.server_time_ns > 0

    serve(scenario, config(heartbeat_interval=0.05))


def test_latency_samples_are_recorded_per_flush() -> None:
    from vocab.clock import itch_now, today_eastern

    day = today_eastern()

    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        books.set_session_date(day)
        async with websockets.connect(url) as ws:
            await ws.send(subscribe("MSFT"))
            await until(ws, "snapshot")
            before = server.hub.latency_count
            bump(books, 3, 3000500, ts=itch_now(day))  # stamped as Nasdaq does: since midnight US Eastern
            await until(ws, "quotes")
            await eventually(lambda: server.hub.latency_count > before, what="a latency sample for the flush")
            p50, p99 = server.latency_percentiles()
            # how small is the benchmarks' business; that the clocks agree (no hours of offset) is this test's
            assert 0 <= p50 <= p99 < 60_000

    serve(scenario)
