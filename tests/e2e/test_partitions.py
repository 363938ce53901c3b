"""`tickfan demo --partitions 3`: ingest workers by symbol partition, books shared with the serving node."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import wait_until
from tests.e2e.conftest import Launch
from tickfan_proto import stream_pb2 as pb


async def recv_bytes(conn: Any) -> bytes:
    raw = await asyncio.wait_for(conn.recv(), 10)
    assert isinstance(raw, bytes)
    return raw
pytestmark = pytest.mark.timeout(120)



def test_partitioned_demo_serves_every_partition_and_stops_cleanly(launch_demo: Launch) -> None:
    demo = launch_demo("--partitions", "3", "--hot", "TSLA", "--rate", "2000", "--duration", "90", "--no-rewinder")
    proc, base = demo.proc, demo.http
    workers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "tickfan ingest"], capture_output=True,
                             text=True).stdout.split()
    assert len(workers) == 3
    # TSLA has a worker of its own; the other two split the rest: all are served by the one node
    def priced() -> list[dict[str, Any]]:
        return list(httpx.get(f"{base}/v1/quotes", params={"symbols": "TSLA,NVDA,AAPL,AMD,MSFT"}).json()["quotes"])

    wait_until(lambda: all(q["seq"] > 0 and (q["bid_price"] or q["ask_price"]) for q in priced()),
               what="every partition's symbols priced", state=priced)

    async def stream() -> None:
        async with websockets.connect(demo.ws) as conn:
            sub = pb.ClientMessage(subscribe=pb.Subscribe(symbols=["TSLA", "NVDA"], channels=["quotes", "bars:1s"]))
            await conn.send(sub.SerializeToString())
            seen: set[str] = set()
            finals: set[str] = set()  # bars cross processes: built by the serving node from the workers' prints
            end = time.monotonic() + 15
            while time.monotonic() < end and (seen != {"TSLA", "NVDA"} or finals != {"TSLA", "NVDA"}):
                msg = pb.ServerMessage.FromString(await recv_bytes(conn))
                if msg.WhichOneof("kind") == "quotes":
                    seen |= {q.symbol for q in msg.quotes.quotes}
                    # the workers convert with the demo's session date: epoch times, minutes at most from now
                    assert all(abs(time.time_ns() - q.exchange_time_ns) < 600 * 10**9 for q in msg.quotes.quotes)
                if msg.WhichOneof("kind") == "bars":
                    finals |= {b.symbol for b in msg.bars.bars if b.state == "final" and b.trades}
            assert seen == {"TSLA", "NVDA"} and finals == {"TSLA", "NVDA"}
        bars = httpx.get(f"{base}/v1/bars", params={"symbol": "NVDA", "interval": "1s"}).json()["bars"]
        assert bars and bars[-1]["start_time_ns"] % 1_000_000_000 == 0

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


def test_fanout_workers_share_the_port_and_every_client_streams(launch_demo: Launch) -> None:
    import re

    demo = launch_demo("--fanout-workers", "2", "--rate", "2000", "--duration", "90", "--no-rewinder")
    proc, ws = demo.proc, demo.ports["ws"]

    async def clients() -> set[str]:
        conns = [await websockets.connect(demo.ws) for _ in range(12)]
        owners = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{ws} )"],
                                capture_output=True, text=True).stdout
        sub = pb.ClientMessage(subscribe=pb.Subscribe(symbols=["TSLA"])).SerializeToString()
        for c in conns:
            await c.send(sub)
        for c in conns:  # every client, whichever worker took it, streams TSLA
            got = False
            end = time.monotonic() + 10
            while not got and time.monotonic() < end:
                msg = pb.ServerMessage.FromString(await recv_bytes(c))
                got = msg.WhichOneof("kind") == "quotes"
            assert got
        for c in conns:
            await c.close()
        # only the demo's own processes: another test's or benchmark's client may hold a local port of that number
        return set(re.findall(r"pid=(\d+)", owners)) & {str(pid) for pid in demo_tree(proc.pid)}

    pids = asyncio.run(clients())
    assert len(pids) == 2, f"connections were not spread over both workers: {pids}"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err


def demo_tree(pid: int) -> set[int]:
    """``pid`` and every process under it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += children.get(p, [])
    return tree
