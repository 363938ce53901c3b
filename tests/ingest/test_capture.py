"""Capture files and replay: a capture played back over UDP rebuilds the same books."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest import itch
from ingest.capture import CaptureError, CaptureWriter, iter_messages, timestamp_of
from ingest.handler import open_feeds
from ingest.messages import OrderDelete
from normalize import Books
from venue.replay import replay
from venue.simulator import ExchangeSimulator


def test_capture_format_is_plain_length_prefixed_itch() -> None:
    m = itch.encode(OrderDelete(1, 2, 0x010203040506, 99))
    buf = io.BytesIO()
    w = CaptureWriter(buf)
    w.write(m)
    w.write(m)
    assert buf.getvalue() == (b"\x00\x13" + m) * 2
    assert list(iter_messages(io.BytesIO(buf.getvalue()), chunk=5)) == [m, m]
    assert timestamp_of(m) == 0x010203040506


def test_a_truncated_capture_is_an_error() -> None:
    m = itch.encode(OrderDelete(1, 2, 3, 99))
    with pytest.raises(CaptureError):
        list(iter_messages(io.BytesIO(b"\x00\x13" + m + b"\x00\x13" + m[:5])))


def test_replay_over_udp_rebuilds_the_same_books(tmp_path: Path) -> None:
    sim = ExchangeSimulator(100, seed=9)
    raw = sim.generate_encoded(30_000)
    path = tmp_path / "day.itch"
    with open(path, "wb") as f:
        w = CaptureWriter(f)
        for m in raw:
            w.write(m)
    direct = Books()
    direct.apply_batch([itch.decode(m) for m in raw])

    async def scenario() -> Books:
        books = Books()
        h = await open_feeds([("127.0.0.1", 0)], books.apply_batch)
        port = int(h.lines[0].get_extra_info("sockname")[1])
        try:
            sent = await replay(path, [("127.0.0.1", port)], speed=0)
            for _ in range(100):
                if h.session.ended:
                    break
                await asyncio.sleep(0.02)
        finally:
            h.close()
        assert sent == len(raw) and h.session.counters["gaps"] == 0
        return books

    books = asyncio.run(scenario())
    for name in ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "volume", "halted"):
        np.testing.assert_array_equal(getattr(books, name), getattr(direct, name), err_msg=name)


def test_replay_command_refuses_a_missing_file(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "tickfan", "replay", str(tmp_path / "nope.itch")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no such file" in r.stderr


def test_record_command_captures_a_live_feed(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "live.itch"
    rec = subprocess.Popen([sys.executable, "-m", "tickfan", "record", str(path), "--feed", f"127.0.0.1:{port}",
                            "--duration", "30"], stderr=subprocess.PIPE, text=True)
    try:
        import time

        time.sleep(1.5)  # the recorder must be listening before the session starts
        sim = subprocess.run([sys.executable, "-m", "tickfan", "simulate", "--target", f"127.0.0.1:{port}",
                              "--rate", "5000", "--symbols", "50", "--duration", "1", "--quiet"], timeout=30)
        assert sim.returncode == 0
        _, err = rec.communicate(timeout=30)  # ends by itself at the end of session
    finally:
        if rec.poll() is None:
            rec.kill()
    assert rec.returncode == 0, err
    with open(path, "rb") as f:
        msgs = [itch.decode(m) for m in iter_messages(f)]
    assert len(msgs) >= 4_000
    assert sum(type(m).__name__ == "StockDirectory" for m in msgs) == 50
