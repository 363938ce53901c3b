"""Replay: a capture played back over UDP rebuilds the same books; the command refuses a missing file."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

from ingest.capture import CaptureWriter
from ingest.handler import open_feeds
from ingest.session import State
from normalize import Books
from tests.conftest import eventually, free_port
from tests.ingest.reference import RecordingSimulator, assert_same_books
from venue.replay import replay
from venue.rewinder import Rewinder


def test_replay_over_udp_rebuilds_the_same_books(tmp_path: Path) -> None:
    sim = RecordingSimulator(100, seed=9)
    raw = sim.generate_encoded(30_000)
    path = tmp_path / "day.itch"
    with open(path, "wb") as f:
        w = CaptureWriter(f)
        for m in raw:
            w.write(m)

    async def scenario() -> Books:
        # replay has no rewinder of its own: this one holds the same session, for whatever loopback drops
        rw = Rewinder("REPLAY0001", len(raw))
        for m in raw:
            rw.append(m)
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: rw, local_addr=("127.0.0.1", free_port(socket.SOCK_DGRAM)))
        books = Books()
        h = await open_feeds([("127.0.0.1", 0)], books.apply_batch, rewinder=transport.get_extra_info("sockname"))
        port = int(h.lines[0].get_extra_info("sockname")[1])
        try:
            sent = await replay(path, [("127.0.0.1", port)], speed=0)
            await eventually(lambda: h.session.ended and h.session.state is State.IN_SYNC,
                             what="the whole capture", state=lambda: h.session.counters)
        finally:
            h.close()
            transport.close()
        assert sent == len(raw) and h.session.counters["messages_missed"] == 0
        return books

    books = asyncio.run(scenario())
    assert_same_books(books, sim.books())


def test_replay_command_refuses_a_missing_file(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "tickfan", "replay", str(tmp_path / "nope.itch")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no such file" in r.stderr
