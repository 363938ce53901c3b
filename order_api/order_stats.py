"""What the order path counts for ``/metrics``: placements, refusals by code, and how long answers and acks take.

Pure counters and cumulative histograms (``vocab.histogram``), no Prometheus here: ``tickfan/metrics_orders.py``
turns them into metric families at scrape time.

- ``PlacementStats`` (the order API): every ``POST /v1/orders`` answered, by outcome: ``placed`` (201),
  ``replayed`` (200: the idempotency key of an order placed before), or refused with its error code (4xx/5xx:
  ``insufficient_funds``, ``rate_limited``, ``ledger_unavailable``...), and the time to answer.
- ``AckClock`` (an execution worker): NewOrderSingle written -> the counterparty's first execution report for
  that order (its ack, a fill or a reject), in seconds. Bounded: at most ``MAX_PENDING`` orders are timed at
  once; past it the oldest are forgotten (never observed), so a silent counterparty cannot grow memory.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from vocab.histogram import Histogram

MAX_PENDING = 100_000


class PlacementStats:
    def __init__(self) -> None:
        self.placed = 0
        self.replayed = 0
        self.refused: Counter[str] = Counter()
        self.answer_seconds = Histogram.seconds()

    def record(self, status: int, body: bytes, seconds: float) -> None:
        self.answer_seconds.observe(seconds)
        if status == 201:
            self.placed += 1
        elif status == 200:
            self.replayed += 1
        else:
            self.refused[_error_code(body)] += 1

    def measure(self, endpoint: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        """``endpoint`` (a Starlette handler answering POST /v1/orders) with every answer recorded."""
        async def measured(request: Any) -> Any:
            start = time.perf_counter()
            response = await endpoint(request)
            self.record(response.status_code, bytes(getattr(response, "body", b"")), time.perf_counter() - start)
            return response
        return measured


def _error_code(body: bytes) -> str:
    try:
        code = orjson.loads(body)["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "unknown"
    return code if isinstance(code, str) and code.isidentifier() else "unknown"


class AckClock:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.ack_seconds = Histogram.seconds()
        self._sent: dict[str, float] = {}

    def sent(self, cl_ord_id: str) -> None:
        if len(self._sent) >= MAX_PENDING:
            del self._sent[next(iter(self._sent))]
        self._sent[cl_ord_id] = self.clock()

    def answered(self, cl_ord_id: str) -> None:
        sent = self._sent.pop(cl_ord_id, None)
        if sent is not None:
            self.ack_seconds.observe(self.clock() - sent)
