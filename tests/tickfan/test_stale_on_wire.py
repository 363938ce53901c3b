"""A hole that cannot be recovered reaches the client: its quotes arrive flagged stale over a real WebSocket."""

from __future__ import annotations

import asyncio
import socket
import time

import websockets

from ingest import itch, moldudp64
from ingest.messages import AddOrder
from tests.conftest import WAIT, directory, free_port
from tests.fanout.conftest import decode, subscribe, until
from tickfan.node import Node, NodeConfig
from tickfan_proto import stream_pb2 as pb

SESSION = "TICKFAN001"


def aapl_quotes(msg: pb.ServerMessage) -> list[pb.Quote]:
    kind = msg.WhichOneof("kind")
    quotes = msg.snapshot.quotes if kind == "snapshot" else msg.quotes.quotes if kind == "quotes" else []
    return [q for q in quotes if q.symbol == "AAPL"]


def test_a_skipped_hole_marks_quotes_stale_on_the_wire() -> None:
    async def main() -> None:
        http, ws = free_port(), free_port()
        feed = free_port(socket.SOCK_DGRAM)
        # no rewinder: a hole can only be given up on, after the recovery timeout
        node = Node(NodeConfig(feeds=[("127.0.0.1", feed)], http=("127.0.0.1", http), ws=("127.0.0.1", ws),
                               session=SESSION, recovery_timeout=0.3, flush_interval=0.01))
        await node.start()
        line = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            first = [itch.encode(directory(1, "AAPL")),
                     itch.encode(AddOrder(1, 0, 2, 1, "B", 100, "AAPL", 1_000_000))]
            line.sendto(moldudp64.encode_packet(SESSION, 1, first), ("127.0.0.1", feed))
            async with websockets.connect(f"ws://127.0.0.1:{ws}/v1/stream") as client:
                await client.send(subscribe("AAPL"))
                await until(client, "subscribed")
                deadline = time.monotonic() + WAIT
                seen: list[pb.Quote] = []
                while not any(q.bid_price == 1_000_000 for q in seen):  # the first packet applied, fresh
                    assert time.monotonic() < deadline, "no quote for AAPL"
                    seen += aapl_quotes(decode(await asyncio.wait_for(client.recv(), WAIT)))
                assert not any(q.stale for q in seen)
                # messages 3..9 never come: after the recovery timeout the hole is skipped
                later = itch.encode(AddOrder(1, 0, 3, 2, "B", 100, "AAPL", 1_010_000))
                line.sendto(moldudp64.encode_packet(SESSION, 10, [later]), ("127.0.0.1", feed))
                stale: list[pb.Quote] = []
                while not stale:
                    assert time.monotonic() < deadline + WAIT, "the stale flag never reached the client"
                    stale = [q for q in aapl_quotes(decode(await asyncio.wait_for(client.recv(), WAIT)))
                             if q.stale]
                assert node.feed is not None and node.feed.session.counters["recovery_failures"] == 1
                assert node.feed.session.needs_rebuild
        finally:
            line.close()
            await node.close()

    asyncio.run(main())
