"""Metrics that Prometheus reads right, from real processes: ``promtool check metrics`` on a node's (every one of
its processes included), an order API's and an execution worker's /metrics; Debian's real ``prometheus`` scraping
a running demo, asked through its HTTP API for ``rate()`` and ``histogram_quantile()``; the Grafana dashboard's
every query parsed by that server and naming only exported metrics; the demo's children logging as it does.

Needs ``promtool`` and ``prometheus`` (``scripts/ensure-prometheus.sh``, run by ``make test``)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import TEST_JWT_SECRET, PrivateRedis, free_port, wait_until
from tests.e2e.conftest import Launch
from tests.e2e.promql import dashboard_queries, exported_names, metric_names
from tests.order_api.conftest import drop_databases
from vocab.auth import mint_token

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "tickfan.json"
SERVER = "postgresql://postgres@127.0.0.1:5432"
_PREFIX = f"{os.environ['TICKFAN_TEST_DB']}_metrics" if os.environ.get("TICKFAN_TEST_DB") else "tickfan_metrics"
DSNS = [f"{SERVER}/{_PREFIX}_0", f"{SERVER}/{_PREFIX}_1"]
PROMETHEUS_SYNTHETIC = frozenset({"up"})  # series Prometheus makes itself, not exported by any process

pytestmark = pytest.mark.skipif(not (shutil.which("promtool") and shutil.which("prometheus")),
                                reason="promtool/prometheus missing: scripts/ensure-prometheus.sh")


def promtool_check(text: str) -> str:
    """promtool's complaints about an exposition ('' when none)."""
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    return (out.stdout + out.stderr).strip() if out.returncode != 0 or out.stdout.strip() else ""


class Reader(threading.Thread):
    """A WebSocket client reading quote frames for a few symbols until stopped: frames flow while we watch."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.frames, self.stop = url, 0, threading.Event()

    def run(self) -> None:
        async def read() -> None:
            async with websockets.connect(self.url + "?format=json") as ws:
                await ws.send(json.dumps({"subscribe": {"symbols": ["AAPL", "TSLA", "NVDA", "MSFT", "AMZN"]}}))
                while not self.stop.is_set():
                    try:
                        await asyncio.wait_for(ws.recv(), 1.0)
                        self.frames += 1
                    except TimeoutError:
                        continue
        asyncio.run(read())


@pytest.fixture(scope="module")
def stack(launch_module_demo: Launch) -> Iterator[dict[str, Any]]:
    """A demo with trading, partitioned ingest and two fan-out processes, logging JSON; a client reading; one
    order filled."""
    asyncio.run(drop_databases(DSNS))
    with PrivateRedis() as redis:
        mm = free_port()
        demo = launch_module_demo(
            "--market-maker", f"127.0.0.1:{mm}", "--trading-redis", redis.url,
            *(a for dsn in DSNS for a in ("--db", dsn)), "--rate", "2000", "--duration", "170",
            "--partitions", "1", "--fanout-workers", "2", "--log-format", "json", trading=True)
        reader = Reader(demo.ws)
        reader.start()
        wait_until(lambda: reader.frames > 0, 60, "frames reach the client")
        headers = {"authorization": f"Bearer {mint_token('alice', key=TEST_JWT_SECRET)}"}
        body = {"symbol": "AAPL", "side": "buy", "qty": 1, "idempotency_key": uuid.uuid4().hex}
        placed = httpx.post(f"{demo.http}/v1/orders", json=body, headers=headers, timeout=30)
        assert placed.status_code == 201, placed.text

        def filled() -> bool:
            return 'tickfan_execution_fills_total{process="execute"} 1.0' in httpx.get(
                f"{demo.http}/metrics", timeout=10).text
        wait_until(filled, 60, "the fill counted by the execution worker, on the node's /metrics")
        yield {"demo": demo, "redis": redis.url, "mm": mm, "reader": reader}
        reader.stop.set()
        reader.join(5)


def test_the_node_serves_every_process_and_promtool_accepts_it(stack: dict[str, Any]) -> None:
    text = httpx.get(f"{stack['demo'].http}/metrics", timeout=10).text
    assert promtool_check(text) == ""
    for process in ("ingest-0", "fanout-1", "execute", "market-maker"):
        assert f'process="{process}"' in text, process
    assert "tickfan_e2e_latency_seconds_bucket" in text and "tickfan_e2e_latency_ms" not in text
    assert "# TYPE tickfan_connections gauge" in text and "tickfan_connections_accepted_total" in text


def _serve(command: list[str], url: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tickfan", *command], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    got: dict[str, str] = {}

    def up() -> bool:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            got["text"] = httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            return False
        return True
    wait_until(up, 60, url)
    return proc, got["text"]


def test_promtool_accepts_the_order_api_and_an_execution_worker(stack: dict[str, Any]) -> None:
    db = [a for dsn in DSNS for a in ("--db", dsn)]
    api_port, exec_port = free_port(), free_port()
    procs = []
    try:
        api, api_text = _serve(["api", "--port", str(api_port), *db, "--trading-redis", stack["redis"]],
                               f"http://127.0.0.1:{api_port}/metrics")
        procs.append(api)
        worker, exec_text = _serve(["execute", "--http", f"127.0.0.1:{exec_port}", "--market-maker",
                                    f"127.0.0.1:{stack['mm']}", "--trading-redis", stack["redis"], *db, "--quiet",
                                    "--name", "metrics-test"], f"http://127.0.0.1:{exec_port}/metrics")
        procs.append(worker)
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
    assert promtool_check(api_text) == "" and "tickfan_orders_refused_total" in api_text
    assert "tickfan_order_answer_seconds_bucket" in api_text and "tickfan_outbox_lag_seconds" in api_text
    assert promtool_check(exec_text) == "" and "tickfan_execution_ack_seconds_bucket" in exec_text
    stack["execute_metrics"] = exec_text


@pytest.fixture(scope="module")
def prometheus(stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's prometheus scraping the demo's /metrics every second (storage in a temporary directory)."""
    base = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    (base / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: tickfan\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{stack['demo'].ports['http']}']\n")
    proc = subprocess.Popen(["prometheus", f"--config.file={base / 'prometheus.yml'}",
                             f"--storage.tsdb.path={base / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url, proc), 60, "prometheus ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(url: str, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, proc.communicate()[1]
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    return answer


def scalar(url: str, expr: str) -> float | None:
    result = query(url, expr)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_reads_rates_and_quantiles_from_the_demo(prometheus: str) -> None:
    frames = "sum(rate(tickfan_frames_sent_total[5s]))"
    p99 = "histogram_quantile(0.99, sum by (le) (rate(tickfan_e2e_latency_seconds_bucket[10s])))"
    seen: dict[str, float | None] = {}

    def sane() -> bool:
        seen["frames"], seen["p99"] = scalar(prometheus, frames), scalar(prometheus, p99)
        return (seen["frames"] or 0) > 0 and seen["p99"] is not None and 0 < seen["p99"] < 5
    # ~10-15 s of scrapes: a 10 s window needs them
    wait_until(sane, 60, "rate() of frames > 0 and a p99 latency in seconds", state=lambda: seen, interval=1.0)
    # counters only grow: the count of latency samples an instant later is no smaller (rate() needs it)
    count = "sum(tickfan_e2e_latency_seconds_count)"
    first = scalar(prometheus, count)
    wait_until(lambda: (scalar(prometheus, count) or 0) > (first or 0), 30, "the latency count grows")


def test_every_dashboard_query_parses_and_names_exported_metrics(stack: dict[str, Any], prometheus: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_names(httpx.get(f"{stack['demo'].http}/metrics", timeout=10).text)
    exported |= exported_names(stack.get("execute_metrics", ""))
    queries = list(dashboard_queries(dashboard))
    assert len(queries) >= 20
    missing: list[str] = []
    for where, expr in queries:
        missing += [f"{where}: {name}" for name in sorted(metric_names(expr) - exported - PROMETHEUS_SYNTHETIC)]
        if expr.startswith("label_values("):
            continue
        concrete = expr.replace("$__rate_interval", "30s").replace("$instance", ".*")
        answer = query(prometheus, concrete)
        assert answer["status"] == "success", f"{where}: {concrete}: {answer}"
    assert not missing, "dashboard names metrics no process exports:\n" + "\n".join(missing)
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for needed in ("feed rate", "gaps", "clients", "frames out", "latency", "slow-consumer", "order rate",
                   "ack latency", "refusals", "fills", "outbox lag"):
        assert needed in titles, needed


def test_the_demo_children_log_as_the_demo_does(stack: dict[str, Any]) -> None:
    pid = stack["demo"].proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) >= 5  # ingest worker, fan-out worker, simulator, market maker, execution worker
    for child in children:
        env = dict(e.split("=", 1) for e in Path(f"/proc/{child}/environ").read_text().split("\0") if "=" in e)
        assert env.get("TICKFAN_LOG_FORMAT") == "json", Path(f"/proc/{child}/cmdline").read_text()
