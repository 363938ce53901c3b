"""The ledger's invariants on a schedule in the API process: a corruption made while the API runs shows on its
``/metrics`` at the next scheduled check, and is logged."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from order_api.api import OrderService, create_app
from order_api.audit import LedgerAudit
from tests.conftest import eventually
from tickfan.metrics_orders import api_metrics_endpoint

from .conftest import ScopedLedger, quotes

pytestmark = pytest.mark.anyio

DOLLAR = 10_000
KEY = "an-hs256-test-key-of-at-least-32-bytes!"


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    return {s.name: s.value for f in text_string_to_metric_families(r.text) for s in f.samples}


async def test_a_corruption_shows_on_metrics_at_the_next_scheduled_check(
        ledger: ScopedLedger, caplog: pytest.LogCaptureFixture) -> None:
    u = ledger.user("audit")
    await ledger.deposit(u, 1_000 * DOLLAR)
    app = create_app(ledger, quotes(), jwt_key=KEY, relay=False, ledger_check_interval=0.2)
    service: OrderService = app.state.order_service
    # what `tickfan api` serves (tickfan/trading_cli.py build_api): the API's counters and the ledger check
    app.router.routes.append(Route("/metrics", api_metrics_endpoint(service), methods=["GET"]))
    assert service.audit is not None
    audit = service.audit
    await service.start()
    pool = ledger.pool_for(u)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            await eventually(lambda: audit.runs >= 1, what="the first scheduled check")
            first = await scrape(client)
            assert first["tickfan_ledger_check_problems"] == 0
            assert first["tickfan_ledger_check_last_success_timestamp_seconds"] > 0
            assert first["tickfan_ledger_check_duration_seconds"] >= 0
            with caplog.at_level(logging.ERROR, logger="tickfan.audit"):
                await pool.execute("UPDATE accounts SET cash = cash + 1 WHERE user_id = $1", u)
                runs = audit.runs

                async def reported() -> bool:
                    return audit.runs > runs and (await scrape(client))["tickfan_ledger_check_problems"] == 1
                await eventually(reported, what="the corruption on /metrics")
            assert any("cash differs from its journal" in r.getMessage() and u in r.getMessage()
                       for r in caplog.records)
            later = await scrape(client)
            assert later["tickfan_ledger_check_last_success_timestamp_seconds"] >= \
                first["tickfan_ledger_check_last_success_timestamp_seconds"]
            assert later["tickfan_ledger_check_runs_total"] > first["tickfan_ledger_check_runs_total"]
    finally:
        await pool.execute("UPDATE accounts SET cash = cash - 1 WHERE user_id = $1", u)
        await service.close()
    assert await ledger.check() == []


async def test_a_check_that_cannot_run_is_counted_not_fatal(ledger: ScopedLedger) -> None:
    await ledger.close()  # every pool closed: the check cannot reach a shard
    audit = LedgerAudit(ledger, interval=0.05)
    with pytest.raises(ValueError):
        LedgerAudit(ledger, interval=0)
    task = asyncio.create_task(audit.run())
    try:
        await eventually(lambda: audit.errors >= 2, what="failed checks counted, the loop still running")
        assert audit.last_success is None and not task.done()
    finally:
        audit.stop()
        await asyncio.wait_for(task, 5)
