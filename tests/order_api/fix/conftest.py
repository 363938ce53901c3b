"""Builders for tests that drive a FIX initiator (``FixClient``) against a peer: a report collector to wait on,
conditions on what arrived, and a connected session. Also imported by tests/venue/marketmaker (plain helpers)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from order_api.fix import ExecType, ExecutionReport, OrdStatus
from order_api.fix.client import FixClient
from tests.conftest import WAIT


class Listening(Protocol):
    port: int


class Reports:
    """An ``on_report`` callback that keeps what arrives and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.items: list[ExecutionReport] = []
        self._changed = asyncio.Event()

    async def __call__(self, report: ExecutionReport) -> None:
        self.items.append(report)
        self._changed.set()

    async def until(self, pred: Callable[[list[ExecutionReport]], bool]) -> list[ExecutionReport]:
        async def wait() -> None:
            while not pred(self.items):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT)
        return self.items

    def of(self, cl_ord_id: str) -> list[ExecutionReport]:
        return [r for r in self.items if cl_ord_id in (r.cl_ord_id, r.orig_cl_ord_id)]


def done(cl_ord_id: str) -> Callable[[list[ExecutionReport]], bool]:
    """The order has reached a final state (filled, cancelled, rejected) in what arrived."""
    final = {OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED}
    return lambda items: any(r.ord_status in final and cl_ord_id in (r.cl_ord_id, r.orig_cl_ord_id)
                             and r.exec_type is not ExecType.ORDER_STATUS for r in items)


def status_of(cl_ord_id: str) -> Callable[[list[ExecutionReport]], bool]:
    return lambda items: any(r.exec_type is ExecType.ORDER_STATUS and r.cl_ord_id == cl_ord_id for r in items)



@contextlib.asynccontextmanager
async def session(peer: Listening, **kw: Any) -> AsyncIterator[tuple[FixClient, Reports]]:
    """A logged-on client of ``peer`` (anything listening on 127.0.0.1:``peer.port``), closed afterwards."""
    reports = Reports()
    client = FixClient("127.0.0.1", peer.port, on_report=reports, **kw)
    await client.connect()
    try:
        yield client, reports
    finally:
        await client.close()
