"""What one /metrics for every process costs: a demo with worker processes against one without, alternating.

    PYTHONPATH=<tree> .venv/bin/python benchmarks/bench_metrics_share.py [--runs 3] [--seconds 20]

"workers": ``tickfan demo --partitions 2 --fanout-workers 2`` (two ingest workers and a second fan-out process
write their metrics once a second to the demo's directory; the node reads them at each scrape). "single": the
demo in one process. Both: 10,000 symbols at 20,000 msg/s, no trading, no clients. Reported per run: the
median wall time of 20 scrapes of the node's /metrics (one every 0.5 s) and its size, and for "workers" each
writer's own cost from its counters (``tickfan_metrics_write_seconds_total / tickfan_metrics_writes_total``) and
the share of a core it takes (write seconds over the run's seconds).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(workers: bool, seconds: float) -> dict[str, float]:
    http, ws, feed = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    cmd = [sys.executable, "-m", "tickfan", "demo", "--http", f"127.0.0.1:{http}", "--ws", f"127.0.0.1:{ws}",
           "--feed", f"127.0.0.1:{feed}", "--no-trading", "--quiet", "--duration", str(seconds + 60)]
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
            text = httpx.get(url, timeout=10).text
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
        return result
    finally:
        proc.terminate()
        proc.wait(30)


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
