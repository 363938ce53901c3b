"""Child processes of a command (the demo's simulator and workers, the trading stack's market maker and
execution worker): one place that starts them, waits for them to be ready, notices one dying and stops them.

Every child dies with its parent (``PR_SET_PDEATHSIG``), so a parent killed outright orphans nothing; a child
that must bind before the parent goes on prints a ready line (``... is up ...``) that ``start`` waits for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
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


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: a container's or taskset's limit counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_arg(text: str) -> int | None:
    """``--fanout-workers``: a count of at least 1, or ``auto`` (None)."""
    if text.strip().lower() == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"expected a number of processes or 'auto', not {text!r}") from None
    if n < 1:
        raise ValueError(f"expected at least 1 process, not {n}")
    return n


def fanout_workers(asked: int | None, cores: int) -> tuple[int, str]:
    """How many fan-out processes to run on ``cores`` cores, and why, in words the operator sees.

    ``auto``: one per core (measured on 2 cores: two workers beside a batched ingest process served at least as
    well as one process, four no better than two; benchmarks/RESULTS.md, "One host: several workers against
    one process"). A count asked for is kept, with a warning when it exceeds the cores: the processes then
    share cores with ingest and with each other, and each one's fixed costs are paid again for nothing."""
    if asked is None:
        return max(1, cores), f"auto: one per core, {cores} core{'s' if cores != 1 else ''}"
    if asked > cores:
        return asked, f"asked for {asked} on {cores} cores: more than one per core only adds overhead"
    return asked, "asked for"


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
