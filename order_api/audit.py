"""The ledger's invariants on a schedule: ``Ledger.check()`` every ``interval`` seconds in the process that owns
the ledger, its result kept for ``/metrics`` and every problem logged.

A check reads every shard in one REPEATABLE READ, read-only transaction each (so it sees a consistent ledger while
trading goes on) and scans the accounts, positions, orders, executions and journal: its cost grows with the ledger,
hence a default of once a minute, and a duration metric to tell when that is too often.

Metrics (:class:`AuditCollector`):

- ``tickfan_ledger_check_problems`` (gauge): problems the last completed check found; 0 means the books are right
  to the unit. Alert on > 0.
- ``tickfan_ledger_check_last_success_timestamp_seconds`` (gauge): Unix time the last check completed (whatever
  it found). Alert when it stops moving: a check that cannot run proves nothing.
- ``tickfan_ledger_check_duration_seconds`` (gauge): how long the last completed check took.
- ``tickfan_ledger_check_runs_total`` / ``tickfan_ledger_check_errors_total`` (counters): checks completed, and
  checks that could not complete (a shard unreachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from order_api.db import Ledger

log = logging.getLogger("tickfan.audit")
DEFAULT_INTERVAL = 60.0
MAX_LOGGED = 20  # problems logged per check (the count is in the metric; a broken ledger must not flood the log)


class LedgerAudit:
    """Runs :meth:`Ledger.check` every ``interval`` seconds (the first run at once) until stopped."""

    def __init__(self, ledger: Ledger, *, interval: float = DEFAULT_INTERVAL) -> None:
        if interval <= 0:
            raise ValueError("the ledger check interval must be positive")
        self.ledger, self.interval = ledger, interval
        self.problems: list[str] = []
        self.last_success: float | None = None  # Unix time
        self.last_duration = 0.0
        self.runs = 0
        self.errors = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def check_once(self) -> list[str]:
        started = time.perf_counter()
        problems = await self.ledger.check()
        self.last_duration = time.perf_counter() - started
        self.last_success = time.time()
        self.problems = problems
        self.runs += 1
        if problems:
            log.error("ledger check: %d problem(s)", len(problems))
            for p in problems[:MAX_LOGGED]:
                log.error("ledger check: %s", p)
        return problems

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.check_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                self.errors += 1
                log.warning("ledger check could not run: %s", e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)


class AuditCollector(Collector):
    """The audit's last result as metric families, read at scrape time."""

    def __init__(self, audit: LedgerAudit) -> None:
        self.audit = audit

    def collect(self) -> Iterator[Metric]:
        a = self.audit
        yield GaugeMetricFamily("tickfan_ledger_check_problems",
                                "Problems the last completed ledger check found (0: the books are right)",
                                value=len(a.problems))
        if a.last_success is not None:
            yield GaugeMetricFamily("tickfan_ledger_check_last_success_timestamp_seconds",
                                    "Unix time the last ledger check completed", value=a.last_success)
            yield GaugeMetricFamily("tickfan_ledger_check_duration_seconds",
                                    "Seconds the last completed ledger check took", value=a.last_duration)
        yield CounterMetricFamily("tickfan_ledger_check_runs", "Ledger checks completed", value=a.runs)
        yield CounterMetricFamily("tickfan_ledger_check_errors", "Ledger checks that could not complete",
                                  value=a.errors)
