"""Child processes of a command (the demo's simulator and workers, the trading stack's market maker and
execution worker): one place that starts them, waits for them to be ready, notices one dying and stops them.

Every child dies with its parent (``PR_SET_PDEATHSIG``), so a parent killed outright orphans nothing; a child
that must bind before the parent goes on prints a ready line (``... is up ...``) that ``start`` waits for.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1
READY = "is up"  # what a tickfan command prints once it serves


def die_with_parent() -> None:
    """Run in the child before exec: the kernel sends it SIGTERM when its parent dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tickfan_command(*args: str) -> list[str]:
    """The command line of a ``tickfan`` subcommand run by this interpreter."""
    return [sys.executable, "-m", "tickfan", *args]


class ChildFailed(RuntimeError):
    pass


class Children:
    """Named child processes started, watched and stopped together, in reverse order of start."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[str]]] = []
        self._reported: set[int] = set()

    def start(self, name: str, cmd: Sequence[str], *, wait_ready: bool = False, quiet: bool = False
              ) -> subprocess.Popen[str]:
        """Start ``cmd``; with ``wait_ready``, return only once it printed its ready line (else ChildFailed).

        The ready line is read from the child's stdout pipe; what the child prints after it stays in the pipe,
        so such a child prints only a few lines (a full pipe would stall it)."""
        stdout = subprocess.PIPE if wait_ready else (subprocess.DEVNULL if quiet else None)
        proc = subprocess.Popen(list(cmd), stdout=stdout, text=True, preexec_fn=die_with_parent)
        self.procs.append((name, proc))
        if wait_ready:
            self.wait_ready(name, proc)
        return proc

    @staticmethod
    def wait_ready(name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if READY not in line:
            raise ChildFailed(f"{name} did not start (exit code {proc.poll()})")

    def failed(self) -> str | None:
        """The first child that exited with an error and was not reported yet, as a sentence; else None."""
        for name, proc in self.procs:
            if proc.poll() not in (None, 0) and proc.pid not in self._reported:
                self._reported.add(proc.pid)
                return f"{name} exited with code {proc.returncode}"
        return None

    def stop_all(self, timeout: float = 5.0) -> None:
        """SIGTERM every child still running, then wait; a child still running after ``timeout`` is killed."""
        procs = [p for _, p in reversed(self.procs)]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
