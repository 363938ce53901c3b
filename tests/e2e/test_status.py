"""End to end: the demo's LULD pauses, as a client on the status channel sees them (binary and JSON).

The demo is started with a fast pause rate (every 3 s, 1 s long) so the test is short; the default is a
pause every 45 s of at most 10 s.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from google.protobuf import json_format

from tests.e2e.conftest import Launch
from tickfan_proto import stream_pb2 as pb

pytestmark = pytest.mark.timeout(120)


async def pause_seen(url: str, json_mode: bool, seconds: float = 40.0) -> list[tuple[str, str, str]]:
    """Subscribe to status (and 1 s bars: the issue's "done when") on TSLA and NVDA; the (symbol, state, reason)
    sequence until a pause has ended and a bar has come."""
    async with websockets.connect(url + ("?format=json" if json_mode else "")) as ws:
        sub = pb.ClientMessage(subscribe=pb.Subscribe(symbols=["TSLA", "NVDA"], channels=["status", "bars:1s"]))
        await ws.send(json_format.MessageToJson(sub) if json_mode else sub.SerializeToString())
        seen: list[tuple[str, str, str]] = []
        snapshot: pb.StatusBatch | None = None
        bars = False
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            raw = await asyncio.wait_for(ws.recv(), end - time.monotonic())
            msg = pb.ServerMessage()
            if json_mode:
                assert isinstance(raw, str)
                json_format.ParseDict(json.loads(raw), msg)
            else:
                assert isinstance(raw, bytes)
                msg.ParseFromString(raw)
            bars = bars or msg.WhichOneof("kind") == "bars"
            if msg.WhichOneof("kind") != "status":
                continue
            if snapshot is None:
                snapshot = msg.status
                assert snapshot.snapshot and snapshot.market.market_open and snapshot.market.system_event == "Q"
                assert {s.symbol for s in snapshot.symbols} == {"TSLA", "NVDA"}
                continue
            seen += [(s.symbol, s.trading_state, s.reason) for s in msg.status.symbols]
            paused = [s for s, state, _ in seen if state == "P"]
            if paused and (paused[0], "T", "") in seen[seen.index((paused[0], "P", "LUDP")):] and bars:
                return seen
        raise AssertionError(f"no LULD pause and resumption (or no bar: {bars}) within {seconds:.0f} s: {seen}")


def test_the_demo_pauses_tsla_and_nvda_on_the_status_channel(launch_demo: Launch) -> None:
    demo = launch_demo("--rate", "1000", "--duration", "90", "--luld-every", "3", "--luld-pause", "1",
                       "--status-every", "1")

    async def both() -> list[list[tuple[str, str, str]]]:
        return list(await asyncio.gather(pause_seen(demo.ws, False), pause_seen(demo.ws, True)))

    for seen in asyncio.run(both()):
        assert {s for s, _, _ in seen} <= {"TSLA", "NVDA"}
        assert any(state == "P" and reason == "LUDP" for _, state, reason in seen)
