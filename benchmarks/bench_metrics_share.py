"""What one /metrics for every process costs: a demo with worker processes against one without, alternating.

    PYTHONPATH=<tree> .venv/bin/python benchmarks/bench_metrics_share.py [--runs 3] [--seconds 20]

"workers": ``tickfan demo --partitions 2 --fanout-workers 2`` (two ingest workers and a second fan-out process
write their metrics once a second to the demo's directory; the node reads them at each scrape). "single": the
demo in one process. Both: 2,000 symbols at 5,000 msg/s (a shared 2-core machine), no trading, no clients.
Reported per run: the median wall time of the last 20 scrapes of the node's /metrics (one every 0.5 s) and its
size, and for "workers" the median writer's cost per write from its own counters
(``tickfan_metrics_write_seconds_total / tickfan_metrics_writes_total``) and the share of a core that is at one
write a second; and the CPU the node spends reading the workers' files at one scrape (``read_cpu_ms``, in this
process, on files made of the scraped samples).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

SYMBOLS, RATE = 2_000, 5_000


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(workers: bool, seconds: float) -> dict[str, float]:
    http, ws, feed = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    cmd = [sys.executable, "-m", "tickfan", "demo", "--http", f"127.0.0.1:{http}", "--ws", f"127.0.0.1:{ws}",
           "--feed", f"127.0.0.1:{feed}", "--no-trading", "--quiet", "--duration", str(seconds + 120),
           "--symbols", str(SYMBOLS), "--rate", str(RATE)]
    if workers:
        cmd += ["--partitions", "2", "--fanout-workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}/metrics"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if "tickfan_symbols" in httpx.get(url, timeout=2).text:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("demo did not come up")
            time.sleep(0.5)
        time.sleep(3)  # every writer has written
        start = time.monotonic()
        times, size, text = [], 0, ""
        while time.monotonic() - start < seconds:
            t0 = time.perf_counter()
            text = httpx.get(url, timeout=30).text
            times.append(time.perf_counter() - t0)
            size = len(text)
            time.sleep(0.5)
        result = {"scrape_ms": statistics.median(times[-20:]) * 1e3, "bytes": size}
        if workers:
            writes: dict[str, float] = {}
            spent: dict[str, float] = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.name == "tickfan_metrics_writes_total":
                        writes[s.labels["process"]] = s.value
                    elif s.name == "tickfan_metrics_write_seconds_total":
                        spent[s.labels["process"]] = s.value
            per_write = [spent[p] / writes[p] for p in writes if writes[p]]
            result["write_ms"] = statistics.median(per_write) * 1e3
            result["core_share_pct"] = statistics.median(spent[p] / writes[p] for p in writes if writes[p]) * 100
            result["read_cpu_ms"] = read_cost(text)
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_cost(text: str) -> float:
    """CPU ms (median of 30) the node spends reading its workers' files at a scrape: the workers' samples of
    ``text`` written back as one file per process, read and merged as ``SharedMetrics`` does."""
    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector

    from tickfan.metrics_share import MetricsWriter, SharedMetrics, exposition

    by_process: dict[str, list[Metric]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            process = s.labels.get("process")
            if process is None:
                continue
            mine = [f for f in by_process.setdefault(process, []) if f.name == family.name]
            if not mine:
                mine = [Metric(family.name, family.documentation, family.type)]
                by_process[process].append(mine[0])
            labels = {k: v for k, v in s.labels.items() if k != "process"}
            mine[0].samples.append(s._replace(labels=labels))

    class Families(Collector):
        def __init__(self, families: list[Metric]) -> None:
            self.families = families

        def collect(self) -> list[Metric]:
            return self.families

    with tempfile.TemporaryDirectory() as directory:
        for process, families in by_process.items():
            MetricsWriter(directory, process, [Families(families)]).write()
        shared, times = SharedMetrics(directory), []
        for _ in range(30):
            start = time.process_time()
            exposition([shared])
            times.append(time.process_time() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    for i in range(args.runs):
        for workers in (False, True):
            r = run(workers, args.seconds)
            print(f"run {i + 1} {'workers' if workers else 'single '}: "
                  + " ".join(f"{k} {v:,.2f}" for k, v in r.items()), flush=True)


if __name__ == "__main__":
    main()
