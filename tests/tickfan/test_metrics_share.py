"""One /metrics for several processes (tickfan.metrics_share): files written whole, read back labelled, one
family per name, stale writers left out; and the order path's counters (order_api.order_stats)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from order_api.order_stats import MAX_PENDING, AckClock, PlacementStats
from tests.conftest import free_port, wait_until
from tickfan.metrics_share import MetricsWriter, SharedMetrics, exposition


class Fixed(Collector):
    def __init__(self, frames: int, connections: int) -> None:
        self.frames, self.connections = frames, connections

    def collect(self) -> list[Metric]:
        return [CounterMetricFamily("tickfan_frames_sent", "frames", value=self.frames),
                GaugeMetricFamily("tickfan_connections", "open", value=self.connections)]


def samples(text: str) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("process", "")): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_workers_metrics_are_served_beside_the_nodes_own_one_family_per_name(tmp_path: Path) -> None:
    async def write() -> None:
        for name, frames in (("fanout-1", 7), ("fanout-2", 5)):
            writer = MetricsWriter(tmp_path, name, [Fixed(frames, 1)])
            writer.write()
            assert writer.writes == 1 and writer.seconds > 0
    asyncio.run(write())
    text = exposition([Fixed(10, 2), SharedMetrics(tmp_path)]).decode()
    assert text.count("# TYPE tickfan_frames_sent_total counter") == 1
    assert text.count("# TYPE tickfan_connections gauge") == 1
    got = samples(text)
    assert got[("tickfan_frames_sent_total", "")] == 10
    assert got[("tickfan_frames_sent_total", "fanout-1")] == 7 and got[("tickfan_frames_sent_total", "fanout-2")] == 5
    assert got[("tickfan_connections", "fanout-2")] == 1
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind

    old = time.time() - 60  # a writer that stopped rewriting (it died): its numbers are no longer current
    os.utime(tmp_path / "fanout-2.prom", (old, old))
    assert ("tickfan_frames_sent_total", "fanout-2") not in samples(exposition([SharedMetrics(tmp_path)]).decode())


def test_a_writer_removes_its_file_when_closed(tmp_path: Path) -> None:
    async def run() -> None:
        writer = MetricsWriter(tmp_path, "ingest-0", [Fixed(1, 0)], interval=0.01)
        writer.start()
        while not (tmp_path / "ingest-0.prom").exists():
            await asyncio.sleep(0.01)
        await writer.close()
    asyncio.run(run())
    assert not (tmp_path / "ingest-0.prom").exists()


def test_placements_are_counted_by_outcome_and_code() -> None:
    stats = PlacementStats()
    stats.record(201, b"{}", 0.003)
    stats.record(200, b"{}", 0.001)
    stats.record(422, orjson.dumps({"error": {"code": "insufficient_funds", "message": "no"}}), 0.002)
    stats.record(503, b"not json", 0.002)
    stats.record(400, orjson.dumps({"error": {"code": "a b c"}}), 0.002)  # never a label value from a body
    assert (stats.placed, stats.replayed) == (1, 1)
    assert stats.refused == {"insufficient_funds": 1, "unknown": 2}
    assert stats.answer_seconds.count == 5


def test_the_ack_clock_is_bounded() -> None:
    now = [0.0]
    clock = AckClock(lambda: now[0])
    clock.sent("a")
    now[0] = 0.25
    clock.answered("a")
    clock.answered("a")  # a second report of the same order is not a second ack
    clock.answered("never-sent")
    assert clock.ack_seconds.count == 1 and clock.ack_seconds.sum == 0.25
    for i in range(MAX_PENDING + 10):
        clock.sent(str(i))
    assert len(clock._sent) == MAX_PENDING


def test_a_node_serving_http_serves_what_its_workers_write(tmp_path: Path) -> None:
    http = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickfan", "node", "--session", "SHARE01", "--feed",
         f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}", "--http", f"127.0.0.1:{http}", "--ws",
         f"127.0.0.1:{free_port()}", "--quiet", "--metrics-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and "is up" in proc.stdout.readline()
        MetricsWriter(tmp_path, "fanout-9", [Fixed(3, 1)]).write()

        def served() -> bool:
            return 'tickfan_frames_sent_total{process="fanout-9"} 3.0' in httpx.get(
                f"http://127.0.0.1:{http}/metrics", timeout=5).text
        wait_until(served, 30, "the worker's metrics on the node's /metrics")
        assert not (tmp_path / "node.prom").exists() and len(list(tmp_path.glob("*.prom"))) == 1  # reads, not writes
    finally:
        proc.terminate()
        proc.wait(20)
