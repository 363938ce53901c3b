"""One ``/metrics`` for every process of a node: workers write their metrics into a directory, the node serves them.

A process started with ``--metrics-dir DIR`` (the demo's ingest workers, extra fan-out workers, execution worker
and market maker) writes its whole exposition to ``DIR/NAME.prom`` once a second (``MetricsWriter``: written to
a temporary file, then renamed, so a reader never sees half a file). The process that serves HTTP reads every
file there at scrape time (``SharedMetrics``) and serves its samples beside its own, each with a ``process``
label naming the writer, merged into one family per name (``exposition``), so sums over ``process`` are the
node's totals. A file not rewritten for ``STALE_AFTER`` seconds (its writer died) is left out.

Cost (benchmarks/RESULTS.md, "Metrics of every process"): one exposition a second per worker, a few ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from vocab.histogram import Histogram

log = logging.getLogger("tickfan.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SUFFIX = ".prom"
STALE_AFTER = 10.0
PROCESS_LABEL = "process"


def histogram_family(name: str, help_text: str, histogram: Histogram) -> HistogramMetricFamily:
    """A cumulative ``vocab.histogram.Histogram`` as a metric family (bounds and sum in its exported unit)."""
    return HistogramMetricFamily(name, help_text, buckets=histogram.buckets(), sum_value=histogram.sum)


class Families:
    """A fixed set of collectors, collected together (what ``generate_latest`` reads)."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for collector in self.collectors:
            for family in collector.collect():
                have = merged.get(family.name)
                if have is None:
                    merged[family.name] = family
                elif have.type == family.type:
                    have.samples.extend(family.samples)
                else:  # one name, one type: a second type would make the whole exposition invalid
                    log.warning("metric %s exported as %s and %s: the second left out", family.name, have.type,
                                family.type)
        yield from merged.values()


def exposition(collectors: Iterable[Collector]) -> bytes:
    """The text exposition of ``collectors``, families of the same name merged into one."""
    return generate_latest(Families(collectors))  # type: ignore[arg-type,unused-ignore]


class SharedMetrics(Collector):
    """The families the processes writing into ``directory`` exported last, each sample labelled
    ``process="NAME"``."""

    def __init__(self, directory: str | Path, stale_after: float = STALE_AFTER) -> None:
        self.directory = Path(directory)
        self.stale_after = stale_after

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                if now - path.stat().st_mtime > self.stale_after:
                    continue
                text = path.read_text()
            except OSError:  # removed as its writer stopped
                continue
            name = path.name[: -len(SUFFIX)]
            try:
                families = list(text_string_to_metric_families(text))
            except ValueError as e:
                log.warning("metrics of %s unreadable: %s", name, e)
                continue
            for family in families:
                family.samples = [Sample(s.name, {**s.labels, PROCESS_LABEL: name}, s.value, s.timestamp,
                                         s.exemplar) for s in family.samples]
                yield family


class MetricsWriter:
    """Writes ``collectors``' exposition to ``directory/name.prom`` every ``interval`` seconds until closed."""

    def __init__(self, directory: str | Path, name: str, collectors: Iterable[Collector],
                 interval: float = 1.0) -> None:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"bad metrics name {name!r}")
        self.path = Path(directory) / f"{name}{SUFFIX}"
        self.collectors = [*collectors, _WriterCost(self)]
        self.interval = interval
        self.writes = 0
        self.seconds = 0.0  # time spent writing, in total (what this costs the worker)
        self._task: asyncio.Task[None] | None = None

    def write(self) -> None:
        start = time.perf_counter()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_bytes(exposition(self.collectors))
        os.replace(tmp, self.path)
        self.writes += 1
        self.seconds += time.perf_counter() - start

    async def _run(self) -> None:
        while True:
            try:
                self.write()
            except OSError as e:  # the directory went away (its node stopped): try again later
                log.warning("cannot write metrics to %s: %s", self.path, e)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metrics writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(OSError):
            self.path.unlink()


class _WriterCost(Collector):
    """What sharing costs the writing process: its writes and the time they took."""

    def __init__(self, writer: MetricsWriter) -> None:
        self.writer = writer

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("tickfan_metrics_writes", "Metrics expositions written for the node's /metrics "
                                                            "(--metrics-dir)", value=self.writer.writes)
        yield CounterMetricFamily("tickfan_metrics_write_seconds", "Seconds spent writing them",
                                  value=self.writer.seconds)


def add_metrics_dir_arguments(parser: argparse.ArgumentParser) -> None:
    """``--metrics-dir`` and ``--metrics-name``, for a process whose metrics another process serves."""
    group = parser.add_argument_group("metrics of several processes", "one /metrics for a node's processes (the "
                                                                      "demo sets these for its children)")
    group.add_argument("--metrics-dir", default=None, metavar="DIR",
                       help="ingest and fan-out workers serving no HTTP, execute and market-maker write their "
                            "metrics to DIR/NAME.prom once a second; a node serving HTTP reads DIR and serves "
                            "them on its /metrics, labelled process=NAME (default: none)")
    group.add_argument("--metrics-name", default=None, metavar="NAME",
                       help="this process's name in --metrics-dir (default: the command and its pid)")


def writer_of(args: argparse.Namespace, command: str, collectors: Iterable[Collector]) -> MetricsWriter | None:
    """The writer ``--metrics-dir`` asks for (None without it)."""
    directory = getattr(args, "metrics_dir", None)
    if not directory:
        return None
    name = getattr(args, "metrics_name", None) or f"{command}-{os.getpid()}"
    return MetricsWriter(directory, name, collectors)
