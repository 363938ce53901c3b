"""Across hosts through the real Redis: a second fan-out node, in another process, serves clients from Redis alone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import redis
import websockets

from tests.conftest import wait_until
from tests.e2e.conftest import Launch
from tickfan_proto import stream_pb2 as pb
from vocab.keys import SYMBOLS, quote_key

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/15"  # a database of its own, flushed by the test
pytestmark = pytest.mark.timeout(120)



def test_remote_fanout_node_serves_from_redis_alone(launch_demo: Launch) -> None:
    r = redis.Redis.from_url(REDIS)
    r.flushdb()
    try:
        launch_demo("--rate", "2000", "--duration", "90", "--no-rewinder", "--redis", REDIS, symbols=200)
        # the directory reaches Redis with the first publishes
        wait_until(lambda: r.hlen(SYMBOLS) >= 200, 20, "the symbol directory in Redis")
        # the directory is announced by status rows too (every symbol's opening trading action), so it can be
        # complete a round before TSLA's book has a bid: wait for the quote itself
        wait_until(lambda: bool(r.hget(quote_key("TSLA"), "bid_price")), 20, "TSLA's quote with a bid in Redis")
        remote = launch_demo("--from-redis", REDIS, command="node", symbols=200)
        ws2 = remote.ws

        async def client() -> None:
            async with websockets.connect(ws2) as conn:
                await conn.send(pb.ClientMessage(subscribe=pb.Subscribe(
                    symbols=["TSLA", "NVDA"], channels=["quotes", "bars:1s"])).SerializeToString())
                last: dict[str, int] = {}
                updates = 0
                finals: set[str] = set()  # bars cross Redis too
                newest: dict[str, int] = {}
                end = time.monotonic() + 20
                while time.monotonic() < end and (updates < 20 or finals != {"TSLA", "NVDA"}):
                    raw = await asyncio.wait_for(conn.recv(), 10)
                    assert isinstance(raw, bytes)
                    msg = pb.ServerMessage.FromString(raw)
                    kind = msg.WhichOneof("kind")
                    if kind == "bars":
                        for b in msg.bars.bars:
                            if b.state != "revised":
                                assert b.start_time_ns >= newest.get(b.symbol, 0), "a bar went back in time"
                                newest[b.symbol] = b.start_time_ns
                            if b.state == "final" and b.trades:
                                finals.add(b.symbol)
                        continue
                    quotes = list(msg.snapshot.quotes) if kind == "snapshot" else list(msg.quotes.quotes)
                    for q in quotes:
                        assert q.seq > last.get(q.symbol, -1), "a version went backwards"
                        last[q.symbol] = q.seq
                        if kind == "quotes":
                            updates += 1
                            # epoch times cross Redis as the publishing node's books hold them
                            assert abs(time.time_ns() - q.exchange_time_ns) < 600 * 10**9
                assert updates >= 20 and set(last) == {"TSLA", "NVDA"}
                assert finals == {"TSLA", "NVDA"}

        asyncio.run(client())
        # the remote node subscribed only to the partitions its client needs (2 symbols: at most 2 of 16)
        metrics = httpx.get(f"{remote.http}/metrics").text
        line = [x for x in metrics.splitlines() if 'kind="partitions_subscribed"' in x][0]
        assert 1 <= float(line.split()[-1]) <= 2
        # bar history from Redis on the remote node, for any symbol (watched or not)
        history = httpx.get(f"{remote.http}/v1/bars", params={"symbol": "AAPL", "interval": "1s", "limit": "3"})
        assert history.status_code == 200 and 1 <= len(history.json()["bars"]) <= 3
    finally:
        r.flushdb()
