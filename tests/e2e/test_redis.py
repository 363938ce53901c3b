"""Across hosts through the real Redis: a second fan-out node, in another process, serves clients from Redis alone."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
import websockets

from tickfan_proto import stream_pb2 as pb

from .helpers import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/15"  # a database of its own, flushed by the test
pytestmark = pytest.mark.timeout(120)



def test_remote_fanout_node_serves_from_redis_alone() -> None:
    r = redis.Redis.from_url(REDIS)
    r.flushdb()
    feed, http, ws, http2, ws2 = (free_port(socket.SOCK_DGRAM), free_port(), free_port(), free_port(), free_port())
    origin = subprocess.Popen(
        [sys.executable, "-m", "tickfan", "demo", "--feed", f"127.0.0.1:{feed}", "--http", f"127.0.0.1:{http}",
         "--ws", f"127.0.0.1:{ws}", "--rate", "2000", "--symbols", "200", "--duration", "90", "--quiet",
         "--no-rewinder", "--no-trading", "--redis", REDIS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    remote = None
    try:
        wait_healthy(f"http://127.0.0.1:{http}", origin, 200)
        deadline = time.monotonic() + 20
        while r.hlen("tickfan:symbols") < 200:  # the directory reaches Redis with the first publishes
            assert time.monotonic() < deadline, "directory never reached Redis"
            time.sleep(0.2)
        assert r.hget("quote:TSLA", "bid_price")
        remote = subprocess.Popen(
            [sys.executable, "-m", "tickfan", "node", "--from-redis", REDIS, "--http", f"127.0.0.1:{http2}",
             "--ws", f"127.0.0.1:{ws2}", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )
        wait_healthy(f"http://127.0.0.1:{http2}", remote, 200)

        async def client() -> None:
            async with websockets.connect(f"ws://127.0.0.1:{ws2}/v1/stream") as conn:
                await conn.send(pb.ClientMessage(subscribe=pb.Subscribe(symbols=["TSLA", "NVDA"])).SerializeToString())
                last: dict[str, int] = {}
                updates = 0
                end = time.monotonic() + 15
                while time.monotonic() < end and updates < 20:
                    msg = pb.ServerMessage.FromString(await asyncio.wait_for(conn.recv(), 10))
                    kind = msg.WhichOneof("kind")
                    quotes = list(msg.snapshot.quotes) if kind == "snapshot" else list(msg.quotes.quotes)
                    for q in quotes:
                        assert q.seq > last.get(q.symbol, -1), "a version went backwards"
                        last[q.symbol] = q.seq
                        if kind == "quotes":
                            updates += 1
                assert updates >= 20 and set(last) == {"TSLA", "NVDA"}

        asyncio.run(client())
        # the remote node subscribed only to the partitions its client needs (2 symbols: at most 2 of 16)
        metrics = httpx.get(f"http://127.0.0.1:{http2}/metrics").text
        line = [x for x in metrics.splitlines() if 'kind="partitions_subscribed"' in x][0]
        assert 1 <= float(line.split()[-1]) <= 2
    finally:
        for p in (remote, origin):
            if p is not None and p.poll() is None:
                p.terminate()
                p.communicate(timeout=20)
        r.flushdb()
