"""Conflation tiers against a real server over real sockets: a client's own cap, and a slow reader moved down a tier
(in heartbeats and metrics) before any slow-consumer disconnect, and back up once it reads again."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass

import websockets

from fanout.server import FanoutServer
from fanout.tiers import TierPolicy
from ingest.handler import FeedHandler
from ingest.messages import AddOrder
from normalize import Books
from tests.conftest import WAIT, directory, eventually
from tickfan.metrics import NodeCollector
from tickfan_proto import stream_pb2 as pb

from .conftest import bump, client_message, config, decode, fanout_server, make_books, until

N = 300


@dataclass
class Node:
    """What ``NodeCollector`` reads: the books and the fan-out (no feed)."""

    books: Books
    fanout: FanoutServer
    feed: FeedHandler | None = None


def metric(server: FanoutServer, books: Books, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in NodeCollector(Node(books, server)).collect():
        for sample in family.samples:
            if sample.name == name:
                out[next(iter(sample.labels.values()), "")] = sample.value
    return out


def test_a_client_capped_at_2_hz_gets_at_most_one_update_per_500_ms_while_another_gets_every_flush() -> None:
    async def main() -> None:
        books = make_books()
        async with fanout_server(books, config()) as server:
            async with websockets.connect(server.url) as fast, websockets.connect(server.url + "?format=json") as slow:
                await fast.send(client_message(subscribe=pb.Subscribe(symbols=["AAPL"])))
                await slow.send(json.dumps({"subscribe": {"symbols": ["AAPL"], "maxRateHz": 2}}))
                assert (await until(fast, "subscribed")).subscribed.tier == 0
                ack = (await until(slow, "subscribed")).subscribed
                assert (ack.tier, ack.max_rate_hz) == (1, 2.0)  # tier 1 (250 ms), capped at its own 500 ms
                sent: dict[str, list[int]] = {"fast": [], "slow": []}

                async def read(name: str, ws: websockets.ClientConnection) -> None:
                    while True:
                        msg = decode(await ws.recv())
                        if msg.WhichOneof("kind") == "quotes":
                            assert len(msg.quotes.quotes) == 1
                            sent[name].append(msg.quotes.send_time_ns)

                async def churn() -> None:
                    price = 1_000_000
                    while True:
                        price += 1
                        bump(books, 1, price)
                        server.notify()
                        await asyncio.sleep(0.005)

                tasks = [asyncio.create_task(c) for c in (read("fast", fast), read("slow", slow), churn())]
                try:
                    await eventually(lambda: len(sent["slow"]) >= 5, what="five paced batches",
                                     state=lambda: {k: len(v) for k, v in sent.items()})
                finally:
                    for t in tasks:
                        t.cancel()
                slow_sent = sent["slow"]
                gaps = [b - a for a, b in zip(slow_sent, slow_sent[1:], strict=False)]
                assert min(gaps) >= 500_000_000, gaps  # the node's own send times: never two within 500 ms
                fast_during = [t for t in sent["fast"] if slow_sent[0] <= t <= slow_sent[-1]]
                assert len(fast_during) > 2 * len(slow_sent)  # the uncapped client got every flush meanwhile
                await slow.send(json.dumps({"subscribe": {"maxRateHz": 0}}))
                ack = (await until(slow, "subscribed")).subscribed
                assert (ack.tier, ack.max_rate_hz) == (0, 0.0)
                await slow.send(json.dumps({"subscribe": {"symbols": ["TSLA"], "maxRateHz": -1}}))
                err = (await until(slow, "error")).error
                assert err.code == "bad_rate" and "max_rate_hz" in err.message

    asyncio.run(main())


def big_books() -> Books:
    b = Books()
    for loc in range(1, N + 1):
        b.apply(directory(loc, f"S{loc}"))
    return b


TIERS = TierPolicy(down_after=0.3, up_after=1.0, behind_bytes=16 * 1024, clear_bytes=4 * 1024, sweep_every=0.05)


async def churn(books: Books, server: FanoutServer, symbols: list[int]) -> None:
    """Every symbol in ``symbols`` (a list the test may shrink) changes every few ms: big frames each flush."""
    ref = 0
    while True:
        for loc in list(symbols):
            ref += 1
            books.apply(AddOrder(loc, 0, 5, ref, "B", 1, f"S{loc}", 1_000_000 + ref % 5000))
        server.notify()
        await asyncio.sleep(0.005)


def slow_socket(server: FanoutServer) -> socket.socket:
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", server.port))
    return raw


def test_a_reader_that_stops_moves_down_a_tier_before_any_disconnect_and_back_up_when_it_reads_again() -> None:
    async def main() -> None:
        books = big_books()
        settings = config(slow_client_timeout=60, write_buffer_high=32 * 1024, socket_send_buffer=16 * 1024,
                          heartbeat_interval=0.1, tiers=TIERS)
        async with fanout_server(books, settings) as server:
            changing = list(range(1, N + 1))
            churner = asyncio.create_task(churn(books, server, changing))
            try:
                async with websockets.connect(server.url, sock=slow_socket(server), max_queue=1,
                                              max_size=None) as ws:
                    await ws.send(client_message(subscribe=pb.Subscribe(symbols=[f"S{i}" for i in range(1, N + 1)])))
                    # it reads nothing: paused, then behind, then moved down
                    await eventually(lambda: server.tiers.moves_down >= 1, what="the stopped reader moved down",
                                     state=lambda: (server.stats, server.tiers.per_tier))
                    assert server.stats.slow_disconnects == 0 and server.stats.clients == 1
                    tiers_now = metric(server, books, "tickfan_tier_clients")
                    assert tiers_now["0"] == 0 and tiers_now["1"] + tiers_now["2"] == 1
                    assert metric(server, books, "tickfan_tier_moves_total")["down"] >= 1
                    del changing[5:]  # a light feed from now on: a reader that reads keeps up
                    seen: list[int] = []
                    # reads again: the heartbeats say the tier, down then up (those queued before the move first)
                    while not (seen and max(seen) >= 1 and seen[-1] == 0):
                        msg = decode(await asyncio.wait_for(ws.recv(), WAIT))
                        if msg.WhichOneof("kind") == "heartbeat":
                            seen.append(msg.heartbeat.tier)
                    assert server.tiers.moves_up >= 1 and server.stats.slow_disconnects == 0
                    assert metric(server, books, "tickfan_tier_clients")["0"] == 1
            finally:
                churner.cancel()

    asyncio.run(main())


def test_a_reader_that_never_reads_again_reaches_the_bottom_tier_before_it_is_cut_off() -> None:
    async def main() -> None:
        books = big_books()
        settings = config(slow_client_timeout=1.5, write_buffer_high=32 * 1024, socket_send_buffer=16 * 1024,
                          tiers=TIERS, close_timeout=0.5)
        async with fanout_server(books, settings) as server:
            churner = asyncio.create_task(churn(books, server, list(range(1, N + 1))))
            moves_at_cut: list[int] = []
            try:
                async with websockets.connect(server.url, sock=slow_socket(server), max_queue=1,
                                              close_timeout=0.5) as ws:
                    await ws.send(client_message(subscribe=pb.Subscribe(symbols=[f"S{i}" for i in range(1, N + 1)])))

                    def cut() -> bool:
                        if server.stats.slow_disconnects and not moves_at_cut:
                            moves_at_cut.append(server.tiers.moves_down)
                        return bool(moves_at_cut)

                    await eventually(cut, what="the stopped reader cut off", interval=0.005)
                    assert moves_at_cut[0] >= 1  # moved down first
                    assert len(server.tiers) == 0 and server.tiers.per_tier == [0, 0, 0]  # forgotten once gone
            finally:
                churner.cancel()

    asyncio.run(main())
