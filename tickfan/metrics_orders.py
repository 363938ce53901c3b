"""Prometheus metrics of the order path: the order API, the outbox relay, execution workers, the market maker.

Read at scrape time from the counters the services keep (``order_api.order_stats``, the relay's, the worker's,
the market maker's); nothing is counted for Prometheus' sake. The ledger check's result comes from
``order_api.audit.AuditCollector`` (``tickfan_ledger_check_problems``...). Every name here is exported by the
process that does the work: the API (or the demo's node, which mounts it), ``tickfan execute``,
``tickfan market-maker``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tickfan.metrics_share import CONTENT_TYPE, exposition, histogram_family

if TYPE_CHECKING:
    from order_api.api import OrderService
    from order_api.execution import ExecutionWorker
    from order_api.outbox import OutboxRelay
    from vocab.origins import OriginPolicy


def kinds(name: str, help_text: str, counters: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_text, labels=["kind"])
    for kind, value in counters.items():
        family.add_metric([kind], value)
    return family


def relay_metrics(relay: OutboxRelay | None) -> Iterator[Metric]:
    """The outbox relay of this process (an API's, or an execution worker's standby), if it runs one."""
    if relay is None:
        return
    yield CounterMetricFamily("tickfan_outbox_published", "Outbox rows published to Redis by this process's relay",
                              value=relay.published)
    yield CounterMetricFamily("tickfan_outbox_errors", "Outbox relay attempts that failed (Redis or PostgreSQL "
                                                       "away), each retried", value=relay.errors)
    yield GaugeMetricFamily("tickfan_outbox_lag_seconds", "Seconds the oldest row of the relay's last batch "
                                                          "waited in the outbox; 0 when caught up",
                            value=relay.lag_seconds)
    yield GaugeMetricFamily("tickfan_outbox_leading_shards", "Ledger shards whose outbox this process's relay "
                                                             "publishes (the others it stands by for)",
                            value=sum(relay.leading))


class PlacementCollector(Collector):
    """``POST /v1/orders`` answers: placed, replayed (same idempotency key), refused by code, and their time."""

    def __init__(self, service: OrderService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        stats = self.service.placements
        yield CounterMetricFamily("tickfan_orders_placed", "Orders placed (201)", value=stats.placed)
        yield CounterMetricFamily("tickfan_orders_replayed", "Order placements answered with the order an "
                                                             "idempotency key placed before (200)",
                                  value=stats.replayed)
        refused = CounterMetricFamily("tickfan_orders_refused", "Order placements refused, by error code",
                                      labels=["code"])
        for code, value in sorted(stats.refused.items()):
            refused.add_metric([code], value)
        yield refused
        yield histogram_family("tickfan_order_answer_seconds", "POST /v1/orders received to answered (placed: "
                               "committed to the ledger with its outbox row), seconds", stats.answer_seconds)
        yield from relay_metrics(self.service.services.relay)


class ExecutionCollector(Collector):
    """An execution worker: its work by kind (sent, fills, dead_lettered...), its FIX session, the ack time."""

    def __init__(self, worker: ExecutionWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        yield kinds("tickfan_execution_events", "Execution worker events by kind: sent, fills, duplicate_fills, "
                                                "fills_refused, dead_lettered, retries...", w.counters)
        yield CounterMetricFamily("tickfan_execution_fills", "Fills applied to the ledger", value=w.counters["fills"])
        yield CounterMetricFamily("tickfan_execution_dead_letters", "Work and reports dead-lettered for a person "
                                                                    "to settle", value=w.counters["dead_lettered"])
        yield GaugeMetricFamily("tickfan_execution_fix_up", "1 while the FIX session to the market maker is up",
                                value=1 if w.fix is not None and w.fix.connected else 0)
        yield histogram_family("tickfan_execution_ack_seconds", "NewOrderSingle written to the counterparty's "
                               "first execution report for it, seconds", w.acks.ack_seconds)
        if w.stops is not None:
            yield kinds("tickfan_stop_events", "The stop trigger watcher's events by kind: sweeps, triggered, "
                                               "trailed, lost_races (another watcher or a cancel was first), errors",
                        w.stops.counters)
        yield from relay_metrics(w.relay)


class MarketMakerCollector(Collector):
    """The FIX market-maker simulator: its sessions' and its matching engine's counters."""

    def __init__(self, mm: Any) -> None:
        self.mm = mm

    def collect(self) -> Iterator[Metric]:
        yield kinds("tickfan_marketmaker_session_events", "FIX sessions' events by kind", self.mm.counters)
        yield kinds("tickfan_marketmaker_engine_events", "Matching engine events by kind", self.mm.engine.counters)


def order_service_collectors(service: OrderService) -> list[Collector]:
    """What an order API adds to a /metrics (its own or the node's it is mounted in)."""
    from tickfan.metrics import OrderApiCollector

    return [OrderApiCollector(service), PlacementCollector(service), *service.collectors()]


def metrics_route(collectors: Sequence[Collector]) -> Route:
    """``GET /metrics`` serving ``collectors`` (families of one name merged), for any Starlette app."""
    async def metrics(request: Request) -> Response:
        return Response(exposition(collectors), media_type=CONTENT_TYPE)

    return Route("/metrics", metrics, methods=["GET"])


def api_metrics_endpoint(service: OrderService, origins: OriginPolicy | None = None
                         ) -> Callable[[Request], Awaitable[Response]]:
    """``tickfan api``'s /metrics: the order path, its browser origin checks, the scheduled ledger check."""
    from tickfan.metrics import OriginCollector

    collectors = order_service_collectors(service)
    if origins is not None:
        collectors.append(OriginCollector({"http": origins}))

    async def metrics(request: Request) -> Response:
        return Response(exposition(collectors), media_type=CONTENT_TYPE)

    return metrics
