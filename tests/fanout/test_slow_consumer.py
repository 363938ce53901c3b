"""A client that stops reading is cut off; the others keep streaming. A client that floods is limited."""

from __future__ import annotations

import asyncio
import socket

import websockets

from fanout.protocol import ClientProtocol
from fanout.server import FanoutServer
from ingest.messages import AddOrder, StockDirectory
from normalize import Books
from tickfan_proto import stream_pb2 as pb

N = 300


def big_books() -> Books:
    b = Books()
    for loc in range(1, N + 1):
        b.apply(StockDirectory(loc, 0, 1, f"S{loc}", "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1", "N", 0, "N"))
    return b


def test_a_client_that_stops_reading_is_disconnected_and_others_are_not() -> None:
    async def main() -> None:
        books = big_books()
        server = FanoutServer(books, port=0, flush_interval=0.01, slow_client_timeout=0.5,
                              write_buffer_high=32 * 1024, socket_send_buffer=16 * 1024)
        await server.start()
        url = f"ws://127.0.0.1:{server.port}/v1/stream"
        sub = pb.ClientMessage(subscribe=pb.Subscribe(symbols=[f"S{i}" for i in range(1, N + 1)])).SerializeToString()
        ref = [0]

        async def churn() -> None:  # every symbol changes every few milliseconds: big frames each flush
            while True:
                for loc in range(1, N + 1):
                    ref[0] += 1
                    books.apply(AddOrder(loc, 0, 5, ref[0], "B", 1, f"S{loc}", 1_000_000 + ref[0] % 5000))
                await asyncio.sleep(0.005)

        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        churner = asyncio.create_task(churn())
        try:
            async with (websockets.connect(url, sock=raw, max_queue=1, close_timeout=0.5) as slow,
                        websockets.connect(url) as good):
                await slow.send(sub)
                await good.send(sub)
                received = 0
                for _ in range(400):
                    await asyncio.wait_for(good.recv(), 5)  # the good client reads everything
                    received += 1
                    if server.stats.slow_disconnects:
                        break
                assert server.stats.slow_disconnects == 1, server.stats
                for _ in range(5):
                    await asyncio.wait_for(good.recv(), 5)  # and keeps streaming after
                assert server.stats.clients == 1
        finally:
            churner.cancel()
            await server.close()

    asyncio.run(main())


def test_flooding_client_is_rate_limited_then_recovers() -> None:
    p = ClientProtocol({"AAPL": 1}.get, max_messages_per_second=10, burst=5)
    ping = pb.ClientMessage(ping=pb.Ping(nonce=1)).SerializeToString()
    kinds = [p.receive(ping, now=0.0).messages[0].WhichOneof("kind") for _ in range(7)]
    assert kinds == ["pong"] * 5 + ["error"] * 2
    assert p.receive(ping, now=0.0).messages[0].error.code == "rate_limited"
    assert p.receive(ping, now=0.5).messages[0].WhichOneof("kind") == "pong"  # tokens refilled
    assert p.rate_limited == 3
