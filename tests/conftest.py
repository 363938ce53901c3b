"""What every test may use: condition waits, free ports, feed builders, and the hypothesis profile.

Import the plain helpers (``from tests.conftest import eventually, free_port, directory``); fixtures are found by
pytest as usual. Tests never decide pass/fail by a fixed sleep: they wait for a condition with a deadline
generous enough for a loaded 2-core machine, and fail with what they last saw.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from ingest.messages import StockDirectory

# Servers refuse to start without a token key: the whole session (and every process it starts) has one of its own.
# Tests that need another key, or none, pass it explicitly. The development key's state directory is ours too, so
# no test reads or makes the one of the machine's user.
TEST_JWT_SECRET = "tickfan-tests-only-hs256-signing-key-0123456789"
os.environ["TICKFAN_JWT_SECRET"] = TEST_JWT_SECRET
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="tickfan-state-")

# No deadlines anywhere: a shared, loaded machine makes an example's run time noise, not a test result.
settings.register_profile("tickfan", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tickfan")

WAIT = 30.0  # seconds a condition may take on a loaded machine before a test fails


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free right now (TCP by default; ``socket.SOCK_DGRAM`` for UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Any], timeout: float = WAIT, what: str = "",
                     state: Callable[[], Any] | None = None, interval: float = 0.02) -> None:
    """Wait until ``check()`` (plain or awaitable) is true; else fail naming ``what`` and showing ``state()``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            shown = state() if state else None
            if inspect.isawaitable(shown):
                shown = await shown
            raise AssertionError(f"not reached within {timeout:.0f} s: {what}" + (f"; {shown}" if state else ""))
        await asyncio.sleep(interval)


def wait_until(check: Callable[[], Any], timeout: float = WAIT, what: str = "",
               state: Callable[[], Any] | None = None, interval: float = 0.05) -> None:
    """``eventually`` for synchronous tests (subprocesses, blocking clients)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout:.0f} s: {what}" + (f"; {state()}" if state else ""))
        time.sleep(interval)


def directory(locate: int, stock: str, *, timestamp: int = 1, round_lot: int = 100) -> StockDirectory:
    """A Stock Directory message for a plain Nasdaq common stock."""
    return StockDirectory(locate, 0, timestamp, stock, "Q", "N", round_lot, "N", "C", "Z ", "P", "N", "N", "1", "N",
                          0, "N")


class PrivateRedis:
    """A redis-server of our own on a free port (never the shared one): tests stop and restart it at will."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tickfan-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> PrivateRedis:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._pong, 10, f"redis-server answering on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]
