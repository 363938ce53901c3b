"""Recording a live feed: the capture holds the generated stream, byte for byte, in order."""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
from pathlib import Path

from ingest.capture import iter_messages
from ingest.record import record
from tests.conftest import eventually, free_port, wait_until
from venue.feed import serve
from venue.simulator import ExchangeSimulator

from .reference import RecordingSimulator


def udp_port_bound(port: int) -> bool:
    """Someone listens on UDP ``port`` (read from the kernel's table: probing by binding could steal it)."""
    with open("/proc/net/udp") as f:
        return any(int(line.split()[1].split(":")[1], 16) == port for line in list(f)[1:])


def test_record_writes_the_session_as_generated_and_ends_with_it() -> None:
    async def scenario() -> tuple[bytes, list[bytes], int]:
        port, rewinder = free_port(socket.SOCK_DGRAM), ("127.0.0.1", free_port(socket.SOCK_DGRAM))
        sim, f, ticks = RecordingSimulator(50, seed=2), io.BytesIO(), []
        recording = asyncio.create_task(record(f, [("127.0.0.1", port)], stop=asyncio.Event(), rewinder=rewinder,
                                               tick=lambda w, s: ticks.append(w.messages), tick_interval=0.1))
        await eventually(lambda: udp_port_bound(port), what="the recorder listens")
        await serve([("127.0.0.1", port)], rate=10_000, simulator=sim, duration=0.5, rewinder=rewinder)
        writer = await asyncio.wait_for(recording, 30)  # ends by itself at End of Session
        assert writer.messages == len(sim.log)
        return f.getvalue(), sim.log, len(ticks)

    data, log, ticks = asyncio.run(scenario())
    assert list(iter_messages(io.BytesIO(data))) == log and ticks >= 1


def masked(message: bytes) -> bytes:
    return message[:5] + bytes(6) + message[11:]  # the timestamp is the send time: all else is the stream


def test_record_command_captures_a_live_feed(tmp_path: Path) -> None:
    port, rewinder = free_port(socket.SOCK_DGRAM), f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    path = tmp_path / "live.itch"
    rec = subprocess.Popen([sys.executable, "-m", "tickfan", "record", str(path), "--feed", f"127.0.0.1:{port}",
                            "--rewinder", rewinder, "--duration", "30"], stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: udp_port_bound(port) or rec.poll() is not None, what="the recorder listens")
        sim = subprocess.run([sys.executable, "-m", "tickfan", "simulate", "--target", f"127.0.0.1:{port}",
                              "--rewinder", rewinder, "--rate", "5000", "--symbols", "50", "--duration", "1",
                              "--quiet"], timeout=30)
        assert sim.returncode == 0
        _, err = rec.communicate(timeout=30)  # ends by itself at the end of session
    finally:
        if rec.poll() is None:
            rec.kill()
    assert rec.returncode == 0, err
    assert "wrote" in err and str(path) in err
    with open(path, "rb") as f:
        got = list(iter_messages(f))
    assert len(got) >= 4_000
    want = ExchangeSimulator(50, seed=1).generate_encoded(len(got))  # the command's default seed
    assert [masked(m) for m in got] == [masked(m) for m in want]
