"""`tickfan demo --partitions 3`: ingest workers by symbol partition, books shared with the serving node."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tickfan_proto import stream_pb2 as pb

from .helpers import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)



def test_partitioned_demo_serves_every_partition_and_stops_cleanly() -> None:
    feed, http, ws = free_port(socket.SOCK_DGRAM), free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickfan", "demo", "--partitions", "3", "--hot", "TSLA", "--feed",
         f"127.0.0.1:{feed}", "--http", f"127.0.0.1:{http}", "--ws", f"127.0.0.1:{ws}", "--rate", "2000",
         "--symbols", "300", "--duration", "90", "--quiet", "--no-rewinder", "--no-trading"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        base = f"http://127.0.0.1:{http}"
        wait_healthy(base, proc, 300)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "tickfan ingest"], capture_output=True,
                                 text=True).stdout.split()
        assert len(workers) == 3
        # TSLA has a worker of its own; the other two split the rest: all are served by the one node
        time.sleep(2)
        quotes = httpx.get(f"{base}/v1/quotes", params={"symbols": "TSLA,NVDA,AAPL,AMD,MSFT"}).json()["quotes"]
        assert all(q["seq"] > 0 and (q["bid_price"] or q["ask_price"]) for q in quotes), quotes

        async def stream() -> None:
            async with websockets.connect(f"ws://127.0.0.1:{ws}/v1/stream") as conn:
                sub = pb.ClientMessage(subscribe=pb.Subscribe(symbols=["TSLA", "NVDA"]))
                await conn.send(sub.SerializeToString())
                seen: set[str] = set()
                end = time.monotonic() + 10
                while time.monotonic() < end and seen != {"TSLA", "NVDA"}:
                    msg = pb.ServerMessage.FromString(await asyncio.wait_for(conn.recv(), 10))
                    if msg.WhichOneof("kind") == "quotes":
                        seen |= {q.symbol for q in msg.quotes.quotes}
                assert seen == {"TSLA", "NVDA"}

        asyncio.run(stream())
        shm = f"/dev/shm/tickfan-{proc.pid}"
        assert os.path.exists(shm)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert not os.path.exists(shm), "shared memory left behind"
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_fanout_workers_share_the_port_and_every_client_streams() -> None:
    import re

    feed, http, ws = free_port(socket.SOCK_DGRAM), free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickfan", "demo", "--fanout-workers", "2", "--feed", f"127.0.0.1:{feed}",
         "--http", f"127.0.0.1:{http}", "--ws", f"127.0.0.1:{ws}", "--rate", "2000", "--symbols", "300",
         "--duration", "90", "--quiet", "--no-rewinder", "--no-trading"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{http}", proc, 300)

        async def clients() -> set[str]:
            conns = [await websockets.connect(f"ws://127.0.0.1:{ws}/v1/stream") for _ in range(12)]
            owners = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{ws} )"],
                                    capture_output=True, text=True).stdout
            sub = pb.ClientMessage(subscribe=pb.Subscribe(symbols=["TSLA"])).SerializeToString()
            for c in conns:
                await c.send(sub)
            for c in conns:  # every client, whichever worker took it, streams TSLA
                got = False
                end = time.monotonic() + 10
                while not got and time.monotonic() < end:
                    msg = pb.ServerMessage.FromString(await asyncio.wait_for(c.recv(), 10))
                    got = msg.WhichOneof("kind") == "quotes"
                assert got
            for c in conns:
                await c.close()
            return set(re.findall(r"pid=(\d+)", owners))

        pids = asyncio.run(clients())
        assert len(pids) == 2, f"connections were not spread over both workers: {pids}"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
