"""Logs: ``--log-level`` and ``--log-format json`` on every command, stable fields, no secrets (tickfan.logs)."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from uvicorn.config import LOGGING_CONFIG

from ingest.itch import encode
from ingest.messages import SystemEvent
from ingest.moldudp64 import encode_packet
from tests.conftest import TEST_JWT_SECRET, free_port, wait_until
from tickfan.cli import COMMANDS, command_parser
from tickfan.logs import MASK, JsonFormatter, configure, redact

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Pw-never-in-a-log-7731"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXRoYXQtaXMtc2VjcmV0"


def test_every_command_has_the_log_options() -> None:
    for name in COMMANDS:
        if name == "config":
            continue
        options = {s for a in command_parser(name)[0]._actions for s in a.option_strings}
        assert {"--log-level", "--log-format"} <= options, name


@pytest.mark.parametrize("text", [
    f"GET /v1/stream?token={JWT}&symbols=AAPL", f"authorization: Bearer {JWT}", f"Bearer abc.{PASSWORD}",
    f"redis://tickfan:{PASSWORD}@10.0.0.1:6379/0", f"postgresql://app:{PASSWORD}@db/tickfan_0",
    f"ticket={PASSWORD}", f"password={PASSWORD} user=app", f"{{'secret': '{PASSWORD}'}}", f"token {JWT} refused",
])
def test_credentials_are_masked(text: str) -> None:
    masked = redact(text)
    assert PASSWORD not in masked and JWT not in masked and "c2lnbmF0dXJl" not in masked
    assert MASK in masked


def test_a_json_line_has_the_stable_fields() -> None:
    out = io.StringIO()
    logger = logging.getLogger("tickfan.test_logs")
    root = logging.getLogger()
    saved = root.level, list(root.handlers), sys.excepthook, dict(LOGGING_CONFIG["formatters"])
    try:
        configure("execute", "debug", "json", stream=out, export=False)
        logger.info("order %s filled for %s", "o-1", "alice", extra={"order_id": "o-1", "user_id": "alice",
                                                                       "symbol": "AAPL", "seq": 7})
        try:
            raise ValueError(f"bad dsn postgresql://u:{PASSWORD}@h/db")
        except ValueError:
            logger.exception("failed")
    finally:  # this process's logging as it was (configure() is meant for a command's process)
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
        sys.excepthook = saved[2]
        LOGGING_CONFIG["formatters"] = saved[3]
        logging.captureWarnings(False)
    first, second = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "info" and first["logger"] == "tickfan.test_logs" and first["cmd"] == "execute"
    assert first["event"] == "order o-1 filled for alice" and first["pid"] == os.getpid()
    assert (first["order_id"], first["user_id"], first["symbol"], first["seq"]) == ("o-1", "alice", "AAPL", 7)
    assert first["ts"].endswith("+00:00") and "T" in first["ts"]
    assert second["level"] == "error" and "ValueError" in second["exc"] and PASSWORD not in second["exc"]
    assert isinstance(JsonFormatter().format(logging.makeLogRecord({"msg": "x"})), str)


def _lines(stderr: str) -> list[dict[str, Any]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise AssertionError(f"not a JSON line on stderr: {line!r}\n{stderr}") from None
    return parsed


def test_a_real_node_logs_json_lines_with_session_and_seq_and_no_secret() -> None:
    """A node logs a feed gap (with the session and the sequence) and its orders channel's Redis being away
    (a URL whose password must not appear), all as JSON lines."""
    feed, http, ws, closed = free_port(socket.SOCK_DGRAM), free_port(), free_port(), free_port()
    env = {**os.environ, "TICKFAN_JWT_SECRET": TEST_JWT_SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickfan", "node", "--session", "LOGTEST01", "--feed", f"127.0.0.1:{feed}",
         "--http", f"127.0.0.1:{http}", "--ws", f"127.0.0.1:{ws}", "--quiet", "--log-format", "json",
         "--log-level", "info", "--orders-redis", f"redis://tickfan:{PASSWORD}@127.0.0.1:{closed}/0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert proc.stdout is not None
        assert "is up" in proc.stdout.readline()
        event = encode(SystemEvent(0, 0, 1, "O"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(encode_packet("LOGTEST01", 1, [event]), ("127.0.0.1", feed))
            time.sleep(0.2)  # in order: the first packet sets the stream, the second leaves a hole
            s.sendto(encode_packet("LOGTEST01", 40, [event]), ("127.0.0.1", feed))

        def gaps() -> bool:
            text = httpx.get(f"http://127.0.0.1:{http}/metrics", timeout=5).text
            return 'tickfan_feed_events_total{kind="gaps"} 1.0' in text
        wait_until(gaps, 30, "the node counted the gap")
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    lines = _lines(stderr)
    assert all({"ts", "level", "logger", "event", "cmd", "pid"} <= line.keys() for line in lines)
    gap = next(line for line in lines if line["event"].startswith("feed gap"))
    assert gap["session"] == "LOGTEST01" and gap["seq"] == 2 and gap["level"] == "warning"
    assert gap["logger"] == "tickfan.ingest" and gap["cmd"] == "node"
    assert any("orders: Redis" in line["event"] and MASK in line["event"] for line in lines), stderr
    assert PASSWORD not in stderr and TEST_JWT_SECRET not in stderr
