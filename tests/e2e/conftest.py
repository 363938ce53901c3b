"""The end-to-end tests' demo factory: `tickfan demo` (or `tickfan node`) as a real subprocess on free ports.

``launch_demo(...)`` starts one, waits until its snapshot endpoint knows the symbols, and returns a ``Demo``;
every demo a test started is stopped when the test (or module, for the module-scoped fixture) ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
UP = 150.0  # seconds a demo may take to come up on a loaded machine (partitioned: several processes warm numba)


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ports['ws']}/v1/stream"

    def stop(self, timeout: float = 20.0) -> tuple[int, str, str]:
        """SIGTERM, then (exit code, stdout, stderr); killed if it will not stop."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out or "", err or ""


def symbols_served(base: str) -> int:
    try:
        return int(httpx.get(f"{base}/healthz", timeout=1).json()["symbols"])
    except (httpx.HTTPError, KeyError, ValueError, TypeError):
        return -1


def wait_healthy(base: str, proc: subprocess.Popen[str], symbols: int, timeout: float = UP) -> None:
    """Until ``base``/healthz reports at least ``symbols`` symbols; fails at once if the process exits first."""
    def up() -> bool:
        assert proc.poll() is None, f"exited early: {proc.communicate()}"
        return symbols_served(base) >= symbols

    wait_until(up, timeout, f"{base} serving {symbols} symbols", interval=0.2)


def start(command: str, *args: str, symbols: int = 300, ports: dict[str, int] | None = None,
          trading: bool = False, env: dict[str, str] | None = None) -> Demo:
    """``tickfan COMMAND`` on fresh loopback ports (feed, rewinder, snapshot, http, ws; ``ports`` overrides)."""
    p = {"feed": free_port(socket.SOCK_DGRAM), "rewinder": free_port(socket.SOCK_DGRAM), "snapshot": free_port(),
         "http": free_port(), "ws": free_port(), **(ports or {})}
    cmd = [sys.executable, "-m", "tickfan", command, "--http", f"127.0.0.1:{p['http']}",
           "--ws", f"127.0.0.1:{p['ws']}", "--quiet"]
    if command == "demo":
        cmd += ["--feed", f"127.0.0.1:{p['feed']}", "--symbols", str(symbols)]
        if "--no-rewinder" not in args:
            cmd += ["--rewinder", f"127.0.0.1:{p['rewinder']}", "--snapshot", f"127.0.0.1:{p['snapshot']}"]
        if not trading:
            cmd.append("--no-trading")
        if "--luld-every" not in args:
            # the demo pauses TSLA and NVDA in turn (LULD): tests that need them trading throughout ask for a
            # calm session; a test of the pauses sets its own rate
            cmd += ["--luld-every", "0", "--status-every", "0"]
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})
    return Demo(proc, p)


Launch = Callable[..., Demo]


def _factory() -> Iterator[Launch]:
    started: list[Demo] = []

    def launch(*args: str, command: str = "demo", symbols: int = 300, ports: dict[str, int] | None = None,
               trading: bool = False, healthy: bool = True, env: dict[str, str] | None = None) -> Demo:
        demo = start(command, *args, symbols=symbols, ports=ports, trading=trading, env=env)
        started.append(demo)
        if healthy:
            wait_healthy(demo.http, demo.proc, symbols)
        return demo

    yield launch
    for demo in reversed(started):
        demo.stop()


@pytest.fixture
def launch_demo() -> Iterator[Launch]:
    """A factory of demos (and nodes) stopped when the test ends."""
    yield from _factory()


@pytest.fixture(scope="module")
def launch_module_demo() -> Iterator[Launch]:
    """The same factory, its demos shared by a module's tests."""
    yield from _factory()
