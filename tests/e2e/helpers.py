"""What the end-to-end tests share: free loopback ports and waiting for a node to serve its books."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[str], symbols: int, timeout: float = 30.0) -> None:
    """Until ``base``/healthz reports at least ``symbols`` symbols; fails if the process exits first."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"exited early: {proc.communicate()}"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).json()["symbols"] >= symbols:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        assert time.monotonic() < deadline, f"{base} did not come up within {timeout:.0f} s"
        time.sleep(0.2)
