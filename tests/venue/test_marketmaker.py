"""The market-maker simulator: its matching engine directly, then end to end over real TCP on 127.0.0.1.

Nothing here asserts on time: waits are "until this happens" with a generous cap against hangs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from ingest.messages import AddOrder, StockDirectory
from normalize import Books
from order_api.fix import (
    CancelReject,
    CancelRequest,
    CxlRejReason,
    ExecType,
    ExecutionReport,
    FixMessage,
    FixParser,
    NewOrder,
    OrdStatus,
    StatusRequest,
    encode,
)
from order_api.fix.client import FixClient, FixUnavailable
from snapshots.quote import quote_record
from tickfan.market_maker import add_arguments
from venue.marketmaker import (
    DUPLICATE_TERMS,
    UNKNOWN_ORDER,
    BookQuote,
    Faults,
    HttpQuoteProvider,
    MarketMaker,
    MatchingEngine,
    StaticQuoteProvider,
    parse_static_quotes,
    quote_from_record,
)

AAPL = BookQuote(1892500, 300, 1892600, 100)  # 189.25 x 300 / 189.26 x 100
MSFT = BookQuote(4000000, 50, 4001000, 50)
QUOTES = {"AAPL": AAPL, "MSFT": MSFT}
WAIT = 15.0  # cap on any wait, only against hangs


# ============================================================================ the engine, pure


def engine(faults: Faults | None = None, **kw: Any) -> tuple[MatchingEngine, StaticQuoteProvider]:
    q = StaticQuoteProvider(QUOTES)
    return MatchingEngine(q, faults, id_prefix="t", **kw), q


def trades(reports: list[Any]) -> list[ExecutionReport]:
    return [r for r in reports if isinstance(r, ExecutionReport) and r.exec_type is ExecType.TRADE]


def drain(e: MatchingEngine, start: float = 0.0) -> list[ExecutionReport]:
    """Run the engine's schedule until nothing is due (time jumps to each wake-up)."""
    out: list[ExecutionReport] = []
    now = start
    while (wake := e.next_wakeup()) is not None and now < start + 100:
        now = max(now, wake)
        out += [r for _, r in e.step(now) if isinstance(r, ExecutionReport)]
    return out


def test_market_buy_fills_at_the_ask_and_sell_at_the_bid() -> None:
    e, _ = engine()
    new, fill = e.new_order("C", NewOrder("b1", "AAPL", "buy", 10), 0.0)
    assert isinstance(new, ExecutionReport) and new.exec_type is ExecType.NEW and new.leaves_qty == 10
    assert isinstance(fill, ExecutionReport)
    assert (fill.last_px, fill.last_qty, fill.ord_status, fill.avg_px) == (AAPL.ask_px, 10, OrdStatus.FILLED,
                                                                          AAPL.ask_px)
    _, sell = e.new_order("C", NewOrder("s1", "AAPL", "sell", 10), 0.0)
    assert isinstance(sell, ExecutionReport) and sell.last_px == AAPL.bid_px


def test_partial_fills_take_at_most_the_displayed_size() -> None:
    e, _ = engine()
    first = trades(e.new_order("C", NewOrder("b1", "AAPL", "buy", 250), 0.0))
    rest = trades(drain(e))
    fills = first + rest
    assert [f.last_qty for f in fills] == [100, 100, 50]
    assert [f.cum_qty for f in fills] == [100, 200, 250] and [f.leaves_qty for f in fills] == [150, 50, 0]
    assert [f.ord_status for f in fills] == [OrdStatus.PARTIALLY_FILLED] * 2 + [OrdStatus.FILLED]
    assert len({f.exec_id for f in fills}) == 3


def test_fault_max_fill_qty_and_no_partial_fills() -> None:
    e, _ = engine(Faults(max_fill_qty=1))
    fills = trades(e.new_order("C", NewOrder("b1", "AAPL", "buy", 3), 0.0)) + drain(e)
    assert [f.last_qty for f in fills] == [1, 1, 1]
    e, _ = engine(Faults(partial_fills=False))
    fills = trades(e.new_order("C", NewOrder("b1", "AAPL", "buy", 1000), 0.0))
    assert [f.last_qty for f in fills] == [1000] and e.next_wakeup() is None


def test_limit_orders() -> None:
    e, q = engine()
    # marketable: a buy limit at or above the ask fills at the ask (price improvement)
    fills = trades(e.new_order("C", NewOrder("b1", "AAPL", "buy", 10, "limit", 1900000), 0.0))
    assert fills[0].last_px == AAPL.ask_px
    # not marketable: rests (day), re-checked, fills when the book comes to it
    rep = e.new_order("C", NewOrder("b2", "AAPL", "buy", 10, "limit", 1890000), 0.0)
    assert [r.exec_type for r in rep] == [ExecType.NEW]  # type: ignore[union-attr]
    assert drain_once(e) == []
    q.set("AAPL", 1889000, 100, 1890000, 100)
    (fill,) = drain(e)
    assert (fill.cl_ord_id, fill.last_px, fill.ord_status) == ("b2", 1890000, OrdStatus.FILLED)
    # sell limit: marketable when at or below the bid
    assert not trades(e.new_order("C", NewOrder("s1", "AAPL", "sell", 5, "limit", 1889100), 0.0))
    assert trades(e.new_order("C", NewOrder("s2", "AAPL", "sell", 5, "limit", 1889000), 0.0))


def drain_once(e: MatchingEngine) -> list[Any]:
    wake = e.next_wakeup()
    return [] if wake is None else e.step(wake)


def test_ioc_gets_one_execution_then_the_rest_is_cancelled() -> None:
    e, _ = engine()
    reps = e.new_order("C", NewOrder("i1", "AAPL", "buy", 250, "market", None, "ioc"), 0.0)
    assert [(r.exec_type, r.ord_status, r.cum_qty, r.leaves_qty) for r in reps] == [  # type: ignore[union-attr]
        (ExecType.NEW, OrdStatus.NEW, 0, 250),
        (ExecType.TRADE, OrdStatus.PARTIALLY_FILLED, 100, 150),
        (ExecType.CANCELED, OrdStatus.CANCELED, 100, 0),
    ]
    reps = e.new_order("C", NewOrder("i2", "AAPL", "buy", 10, "limit", 1000000, "ioc"), 0.0)
    assert [r.exec_type for r in reps] == [ExecType.NEW, ExecType.CANCELED]  # type: ignore[union-attr]
    assert e.next_wakeup() is None and e.open_count == 0


def test_rejects() -> None:
    e, q = engine()
    (r,) = e.new_order("C", NewOrder("x1", "ZZZZ", "buy", 1), 0.0)
    assert isinstance(r, ExecutionReport) and r.exec_type is ExecType.REJECTED and "ZZZZ" in r.text
    (r,) = e.new_order("C", NewOrder("x2", "bad sym!", "buy", 1), 0.0)
    assert isinstance(r, ExecutionReport) and r.exec_type is ExecType.REJECTED
    q.set("EMPTY", 1000, 10, 0, 0)
    (r,) = e.new_order("C", NewOrder("x3", "EMPTY", "buy", 1), 0.0)
    assert isinstance(r, ExecutionReport) and r.text == "no ask for EMPTY"
    e.faults.reject_rate = 1.0
    (r,) = e.new_order("C", NewOrder("x4", "AAPL", "buy", 1), 0.0)
    assert isinstance(r, ExecutionReport) and "simulated" in r.text
    assert e.counters["rejects"] == 4


def test_duplicate_cl_ord_id() -> None:
    e, _ = engine()
    order = NewOrder("d1", "AAPL", "buy", 10)
    e.new_order("C", order, 0.0)
    (same,) = e.new_order("C2", order, 0.0)
    assert isinstance(same, ExecutionReport) and same.exec_type is ExecType.ORDER_STATUS
    assert same.ord_status is OrdStatus.FILLED and same.cum_qty == 10
    (other,) = e.new_order("C", NewOrder("d1", "AAPL", "buy", 11), 0.0)
    assert isinstance(other, ExecutionReport) and other.exec_type is ExecType.REJECTED
    assert other.text == DUPLICATE_TERMS and other.order_id == "NONE"
    assert e.counters["orders"] == 1 and e.orders["d1"].status is OrdStatus.FILLED


def test_cancel() -> None:
    e, _ = engine()
    e.new_order("C", NewOrder("r1", "AAPL", "buy", 10, "limit", 1000000), 0.0)
    (r,) = e.cancel("C", CancelRequest("r1:c1", "r1", "AAPL", "buy", 10), 0.0)
    assert isinstance(r, ExecutionReport)
    assert (r.exec_type, r.ord_status, r.cl_ord_id, r.orig_cl_ord_id, r.leaves_qty) == (
        ExecType.CANCELED, OrdStatus.CANCELED, "r1:c1", "r1", 0)
    (late,) = e.cancel("C", CancelRequest("r1:c2", "r1", "AAPL", "buy", 10), 0.0)
    assert isinstance(late, CancelReject) and late.reason is CxlRejReason.TOO_LATE_TO_CANCEL
    assert late.ord_status is OrdStatus.CANCELED
    (unknown,) = e.cancel("C", CancelRequest("n:c1", "n", "AAPL", "buy", 10), 0.0)
    assert isinstance(unknown, CancelReject) and unknown.reason is CxlRejReason.UNKNOWN_ORDER
    assert e.next_wakeup() is None


def test_status_resends_trades_with_their_exec_ids() -> None:
    e, _ = engine()
    fills = trades(e.new_order("C", NewOrder("s1", "AAPL", "buy", 250), 0.0)) + drain(e)
    *again, status = e.status("C", StatusRequest("s1", "AAPL", "buy"))
    assert [r.exec_id for r in again] == [f.exec_id for f in fills]  # type: ignore[union-attr]
    assert all(r.poss_resend for r in again)  # type: ignore[union-attr]
    assert isinstance(status, ExecutionReport) and status.exec_type is ExecType.ORDER_STATUS
    assert (status.ord_status, status.cum_qty, status.leaves_qty) == (OrdStatus.FILLED, 250, 0)
    (unknown,) = e.status("C", StatusRequest("nope", "AAPL", "sell"))
    assert isinstance(unknown, ExecutionReport)
    assert (unknown.exec_type, unknown.ord_status, unknown.text, unknown.side) == (
        ExecType.ORDER_STATUS, OrdStatus.REJECTED, UNKNOWN_ORDER, "sell")


def test_average_price_over_fills_at_different_prices() -> None:
    e, q = engine()
    e.new_order("C", NewOrder("a1", "AAPL", "buy", 3, "limit", 2000000), 0.0)  # 3 @ 189.26 ... one lot of 100
    q.set("AAPL", 1, 1, 1000001, 1)
    e.new_order("C", NewOrder("a2", "AAPL", "buy", 3), 0.0)
    q.set("AAPL", 1, 1, 1000002, 1)
    drain(e)
    q.set("AAPL", 1, 1, 1000002, 1)
    last = e.status("C", StatusRequest("a2", "AAPL", "buy"))[-1]
    # 1 @ 100.0001 + 2 @ 100.0002 = 300.0005 / 3 = 100.000166.. -> 100.0002 (rounded half up)
    assert isinstance(last, ExecutionReport) and (last.cum_qty, last.avg_px) == (3, 1000002)


def test_order_table_is_bounded() -> None:
    e, _ = engine(max_orders=2)
    e.new_order("C", NewOrder("f1", "AAPL", "buy", 1), 0.0)
    e.new_order("C", NewOrder("f2", "AAPL", "buy", 1), 0.0)
    e.new_order("C", NewOrder("f3", "AAPL", "buy", 1), 0.0)  # forgets f1, the oldest finished order
    assert list(e.orders) == ["f2", "f3"] and e.counters["evicted"] == 1
    assert e.status("C", StatusRequest("f1", "AAPL", "buy"))[0].text == UNKNOWN_ORDER
    e, _ = engine(max_orders=2)
    for cl in ("r1", "r2"):
        e.new_order("C", NewOrder(cl, "AAPL", "buy", 1, "limit", 1000000), 0.0)
    (r,) = e.new_order("C", NewOrder("r3", "AAPL", "buy", 1), 0.0)
    assert isinstance(r, ExecutionReport) and r.text == "order table full" and len(e.orders) == 2


def test_reports_go_to_the_last_session_that_asked() -> None:
    e, q = engine()
    e.new_order("W1", NewOrder("o1", "AAPL", "buy", 10, "limit", 1890000), 0.0)
    e.status("W2", StatusRequest("o1", "AAPL", "buy"))
    q.set("AAPL", 1889000, 100, 1890000, 100)
    wake = e.next_wakeup()
    assert wake is not None
    (owner, _), = e.step(wake)
    assert owner == "W2"


def test_static_quotes_parse() -> None:
    assert parse_static_quotes("AAPL=189.25x300/189.26x100, msft=400x50/400.1x50") == QUOTES
    with pytest.raises(ValueError):
        parse_static_quotes("AAPL=189.25/189.26")


# ============================================================================ end to end over TCP


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


async def until(pred: Callable[[], bool]) -> None:
    async def wait() -> None:
        while not pred():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), WAIT)


@contextlib.asynccontextmanager
async def market(**kw: Any) -> AsyncIterator[tuple[MarketMaker, StaticQuoteProvider]]:
    q = StaticQuoteProvider(QUOTES)
    mm = MarketMaker(q, host="127.0.0.1", port=0, seed=1, **kw)
    await mm.start()
    try:
        yield mm, q
    finally:
        await mm.stop()


@contextlib.asynccontextmanager
async def session(mm: MarketMaker, **kw: Any) -> AsyncIterator[tuple[FixClient, Reports]]:
    reports = Reports()
    client = FixClient("127.0.0.1", mm.port, on_report=reports, **kw)
    await client.connect()
    try:
        yield client, reports
    finally:
        await client.close()


@pytest.mark.anyio
async def test_market_buy_fills_at_the_ask() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        assert client.connected
        await client.send_new_order(NewOrder("m1", "AAPL", "buy", 10))
        items = await reports.until(done("m1"))
        new, fill = items
        assert (new.exec_type, new.ord_status, new.leaves_qty) == (ExecType.NEW, OrdStatus.NEW, 10)
        assert (fill.exec_type, fill.ord_status, fill.last_px, fill.last_qty, fill.cum_qty) == (
            ExecType.TRADE, OrdStatus.FILLED, AAPL.ask_px, 10, 10)
        assert not fill.poss_resend and new.order_id == fill.order_id


@pytest.mark.anyio
async def test_market_sell_fills_at_the_bid() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("s1", "MSFT", "sell", 20))
        fill = (await reports.until(done("s1")))[-1]
        assert (fill.last_px, fill.ord_status) == (MSFT.bid_px, OrdStatus.FILLED)


@pytest.mark.anyio
async def test_partial_fills_sum_to_the_quantity_with_unique_exec_ids() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("p1", "AAPL", "buy", 250))
        await reports.until(done("p1"))
        fills = [r for r in reports.of("p1") if r.exec_type is ExecType.TRADE]
        assert [f.last_qty for f in fills] == [100, 100, 50]
        assert sum(f.last_qty for f in fills) == 250 == fills[-1].cum_qty
        assert len({f.exec_id for f in fills}) == len(fills)
        assert fills[-1].ord_status is OrdStatus.FILLED and fills[-1].leaves_qty == 0


@pytest.mark.anyio
async def test_limit_not_marketable_rests_then_cancel() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("l1", "AAPL", "buy", 10, "limit", 1880000))
        await client.request_status(StatusRequest("l1", "AAPL", "buy"))
        status = (await reports.until(status_of("l1")))[-1]
        assert (status.ord_status, status.leaves_qty, status.cum_qty) == (OrdStatus.NEW, 10, 0)
        await client.send_cancel(CancelRequest("l1:c1", "l1", "AAPL", "buy", 10))
        cancel = (await reports.until(done("l1")))[-1]
        assert (cancel.exec_type, cancel.ord_status, cancel.cl_ord_id, cancel.orig_cl_ord_id) == (
            ExecType.CANCELED, OrdStatus.CANCELED, "l1:c1", "l1")
        assert not [r for r in reports.items if r.exec_type is ExecType.TRADE]


@pytest.mark.anyio
async def test_resting_limit_fills_when_the_book_reaches_it() -> None:
    async with market() as (mm, quotes), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("l2", "AAPL", "buy", 10, "limit", 1880000))
        await reports.until(lambda items: len(items) == 1)
        quotes.set("AAPL", 1879000, 100, 1880000, 100)
        fill = (await reports.until(done("l2")))[-1]
        assert (fill.exec_type, fill.last_px) == (ExecType.TRADE, 1880000)


@pytest.mark.anyio
async def test_ioc_cancels_the_rest() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("i1", "AAPL", "buy", 10, "limit", 1880000, "ioc"))
        items = await reports.until(done("i1"))
        assert [(r.exec_type, r.ord_status) for r in items] == [(ExecType.NEW, OrdStatus.NEW),
                                                                 (ExecType.CANCELED, OrdStatus.CANCELED)]
        await client.send_new_order(NewOrder("i2", "AAPL", "buy", 250, "market", None, "ioc"))
        await reports.until(done("i2"))
        assert [(r.exec_type, r.cum_qty, r.leaves_qty) for r in reports.of("i2")] == [
            (ExecType.NEW, 0, 250), (ExecType.TRADE, 100, 150), (ExecType.CANCELED, 100, 0)]


@pytest.mark.anyio
async def test_unknown_symbol_is_rejected_with_a_reason() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("u1", "NOPE", "buy", 1))
        (rej,) = await reports.until(done("u1"))
        assert (rej.exec_type, rej.ord_status) == (ExecType.REJECTED, OrdStatus.REJECTED)
        assert "NOPE" in rej.text


@pytest.mark.anyio
async def test_duplicate_cl_ord_id_both_ways() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        order = NewOrder("dup1", "AAPL", "buy", 10)
        await client.send_new_order(order)
        await reports.until(done("dup1"))
        await client.send_new_order(order)  # same terms: the same order, answered with its status
        status = (await reports.until(status_of("dup1")))[-1]
        assert (status.ord_status, status.cum_qty) == (OrdStatus.FILLED, 10)
        await client.send_new_order(NewOrder("dup1", "AAPL", "sell", 10))  # different terms
        rej = (await reports.until(lambda items: items[-1].exec_type is ExecType.REJECTED))[-1]
        assert rej.text == DUPLICATE_TERMS and rej.order_id == "NONE"
        assert mm.engine.counters["orders"] == 1
        assert [r.exec_type for r in reports.of("dup1")].count(ExecType.NEW) == 1
        assert [r.exec_type for r in reports.of("dup1")].count(ExecType.TRADE) == 1


@pytest.mark.anyio
async def test_drop_then_reconnect_and_reconcile_by_status_request() -> None:
    async with market() as (mm, _):
        mm.faults.drop_after = 2  # the acknowledgement and the first fill, then the connection dies
        lost = asyncio.Event()
        reasons: list[str] = []
        before = Reports()

        def on_disconnect(reason: str) -> None:
            reasons.append(reason)
            lost.set()

        client = FixClient("127.0.0.1", mm.port, on_report=before, on_disconnect=on_disconnect)
        await client.connect()
        await client.send_new_order(NewOrder("r1", "AAPL", "buy", 250))
        await asyncio.wait_for(lost.wait(), WAIT)
        assert not client.connected and reasons
        with pytest.raises(FixUnavailable):
            await client.send_new_order(NewOrder("r2", "AAPL", "buy", 1))
        seen = {r.exec_id for r in before.items if r.exec_type is ExecType.TRADE}
        assert len(seen) <= 1

        mm.faults.drop_after = None
        await until(lambda: mm.engine.orders["r1"].status is OrdStatus.FILLED)  # filled while we were away
        async with session(mm) as (again, reports):
            await again.request_status(StatusRequest("r1", "AAPL", "buy"))
            items = await reports.until(status_of("r1"))
        resent = [r for r in items if r.exec_type is ExecType.TRADE]
        assert all(r.poss_resend for r in resent)
        assert sum(r.last_qty for r in resent) == 250 and len({r.exec_id for r in resent}) == 3
        assert seen <= {r.exec_id for r in resent}  # what we had is re-sent under its original ExecID
        assert (items[-1].ord_status, items[-1].cum_qty, items[-1].leaves_qty) == (OrdStatus.FILLED, 250, 0)


@pytest.mark.anyio
async def test_status_of_an_unknown_order() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.request_status(StatusRequest("ghost", "AAPL", "buy"))
        (r,) = await reports.until(status_of("ghost"))
        assert (r.exec_type, r.ord_status, r.text) == (ExecType.ORDER_STATUS, OrdStatus.REJECTED, UNKNOWN_ORDER)


@pytest.mark.anyio
async def test_cancel_rejects_reach_the_client() -> None:
    got: list[CancelReject] = []

    async def on_cancel_reject(rej: CancelReject) -> None:
        got.append(rej)

    async with market() as (mm, _), session(mm, on_cancel_reject=on_cancel_reject) as (client, reports):
        await client.send_cancel(CancelRequest("x:c1", "x", "AAPL", "buy", 1))
        await until(lambda: bool(got))
        assert got[0].reason is CxlRejReason.UNKNOWN_ORDER and got[0].orig_cl_ord_id == "x"


@pytest.mark.anyio
async def test_down_refuses_connections_and_up_accepts_again() -> None:
    async with market() as (mm, _):
        lost = asyncio.Event()
        async with session(mm, on_disconnect=lambda _reason: lost.set()) as (client, _reports):
            await mm.set_down(True)
            await asyncio.wait_for(lost.wait(), WAIT)
            assert not client.connected
            with pytest.raises(FixUnavailable):
                await FixClient("127.0.0.1", mm.port, on_report=Reports()).connect()
            await mm.set_down(False)
        async with session(mm) as (client, reports):
            await client.send_new_order(NewOrder("after", "AAPL", "buy", 1))
            await reports.until(done("after"))


@pytest.mark.anyio
async def test_slow_market_maker_is_declared_dead_by_the_client() -> None:
    async with market() as (mm, _):
        mm.faults.slow = True
        lost = asyncio.Event()
        reasons: list[str] = []

        async def on_disconnect(reason: str) -> None:
            reasons.append(reason)
            lost.set()

        async with session(mm, heartbeat_interval=1, on_disconnect=on_disconnect) as (client, _):
            await asyncio.wait_for(lost.wait(), WAIT)
            assert not client.connected
        assert "peer dead" in reasons[0]


@pytest.mark.anyio
async def test_reject_rate_and_latency_faults() -> None:
    async with market(faults=Faults(latency_ms=5, jitter_ms=5)) as (mm, _), session(mm) as (client, reports):
        for i in range(5):
            await client.send_new_order(NewOrder(f"lat{i}", "AAPL", "buy", 150))
        await reports.until(lambda items: all(done(f"lat{i}")(items) for i in range(5)))
        exec_ids = [int(r.exec_id.rsplit("-", 1)[1]) for r in reports.items]
        assert exec_ids == sorted(exec_ids)  # jitter never reorders a connection's reports
        mm.faults.reject_rate = 1.0
        await client.send_new_order(NewOrder("rr", "AAPL", "buy", 1))
        await reports.until(done("rr"))
        (r,) = reports.of("rr")
        assert r.exec_type is ExecType.REJECTED and "simulated" in r.text


@pytest.mark.anyio
async def test_a_new_logon_with_the_same_comp_id_replaces_the_old_session() -> None:
    async with market() as (mm, _):
        lost = asyncio.Event()
        async with session(mm, on_disconnect=lambda _r: lost.set()) as (first, _):
            async with session(mm) as (second, reports):
                await asyncio.wait_for(lost.wait(), WAIT)
                assert not first.connected and second.connected
                await second.send_new_order(NewOrder("n1", "AAPL", "buy", 1))
                await reports.until(done("n1"))


# ------------------------------------------------------------------------ raw FIX against the acceptor


class Raw:
    """A hand-driven initiator: exact bytes out, parsed messages in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = FixParser()
        self.pending: list[Any] = []
        self.seq = 1

    def send(self, msg_type: str, *fields: tuple[int, str], seq: int | None = None) -> None:
        s = self.seq if seq is None else seq
        self.seq = s + 1
        self.writer.write(encode(FixMessage([(35, msg_type), (49, "RAW"), (56, "MM1"), (34, str(s)),
                                             (52, "20240102-03:04:05.678"), *fields])))

    async def next(self) -> FixMessage | None:
        async def read() -> FixMessage | None:
            while not self.pending:
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.pending += self.parser.feed(data)
            item = self.pending.pop(0)
            assert isinstance(item, FixMessage)
            return item

        return await asyncio.wait_for(read(), WAIT)


@contextlib.asynccontextmanager
async def raw_session(mm: MarketMaker) -> AsyncIterator[Raw]:
    reader, writer = await asyncio.open_connection("127.0.0.1", mm.port)
    raw = Raw(reader, writer)
    raw.send("A", (98, "0"), (108, "30"), (141, "Y"))
    answer = await raw.next()
    assert answer is not None and answer.msg_type == "A" and answer[34] == "1" and answer[141] == "Y"
    try:
        yield raw
    finally:
        writer.close()


@pytest.mark.anyio
async def test_malformed_order_gets_a_session_reject_naming_the_tag() -> None:
    async with market() as (mm, _), raw_session(mm) as raw:
        raw.send("D", (11, "bad1"), (54, "1"), (38, "10"), (40, "1"))  # no Symbol (55)
        rej = await raw.next()
        assert rej is not None and rej.msg_type == "3"
        assert (rej[45], rej[371], rej[373], rej[372]) == ("2", "55", "1", "D")
        raw.send("G", (11, "x"))  # an unsupported MsgType
        rej = await raw.next()
        assert rej is not None and rej.msg_type == "3" and rej[373] == "11"
        raw.send("D", (11, "ok"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "1"))  # the session goes on
        ack = await raw.next()
        assert ack is not None and ack.msg_type == "8" and ack[150] == "0"


@pytest.mark.anyio
async def test_garbage_gets_a_logout_with_the_reason() -> None:
    async with market() as (mm, _), raw_session(mm) as raw:
        raw.writer.write(b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01")
        lo = await raw.next()
        assert lo is not None and lo.msg_type == "5" and "garbled" in lo[58]
        assert await raw.next() is None  # and the connection is closed


@pytest.mark.anyio
async def test_sequence_gap_gets_a_logout() -> None:
    async with market() as (mm, _), raw_session(mm) as raw:
        raw.send("0", seq=7)
        lo = await raw.next()
        assert lo is not None and lo.msg_type == "5" and lo[58] == "MsgSeqNum too high, expected 2 received 7"


# ------------------------------------------------------------------------ quotes from the snapshot service


def _books() -> Books:
    def directory(locate: int, stock: str) -> StockDirectory:
        return StockDirectory(locate, 0, 1, stock, "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1", "N", 0, "N")

    b = Books()
    b.apply_batch([directory(1, "AAPL"), directory(2, "MSFT"),
                   AddOrder(1, 0, 10, 1001, "B", 300, "AAPL", 1892500),
                   AddOrder(1, 0, 11, 1002, "S", 200, "AAPL", 1892600)])
    return b


@contextlib.contextmanager
def snapshot_server() -> Any:
    """A stand-in for ``GET /v1/quotes`` answering with the real snapshot records and error shape."""
    books = _books()
    records = {s: orjson.loads(orjson.dumps(quote_record(books, loc))) for s, loc in books.locate_of.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            wanted = parse_qs(urlparse(self.path).query)["symbols"][0].split(",")
            unknown = [s for s in wanted if s not in records]
            body: dict[str, Any]
            if unknown:
                status, body = 404, {"error": {"code": "unknown_symbol", "message": "?", "symbols": unknown}}
            else:
                status, body = 200, {"quotes": [records[s] for s in wanted]}
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_quote_from_a_real_snapshot_record() -> None:
    books = _books()
    assert quote_from_record(quote_record(books, books.locate_of["AAPL"])) == BookQuote(1892500, 300, 1892600, 200)
    assert quote_from_record(quote_record(books, books.locate_of["MSFT"])) is None  # no prices yet
    assert quote_from_record({"bid_price": "1.0000", "ask_price": "1.0100", "bid_size": 1, "ask_size": 1,
                              "halted": True}) is None


@pytest.mark.anyio
async def test_http_quote_provider() -> None:
    with snapshot_server() as url:
        provider = HttpQuoteProvider(url, interval=0.01)
        assert provider.quote("AAPL") is None  # nothing fetched yet
        assert await provider.prime("AAPL") == BookQuote(1892500, 300, 1892600, 200)
        assert provider.quote("AAPL") == BookQuote(1892500, 300, 1892600, 200)
        assert await provider.prime("NOPE") is None
        await provider.fetch(["AAPL", "NOPE", "MSFT"])  # one unknown symbol does not hide the others
        assert provider.quote("AAPL") is not None and provider.quote("MSFT") is None
        assert provider.counters["unknown"] >= 1 and provider.last_error is None

        async with MarketMaker(provider, port=0) as mm, session(mm) as (client, reports):
            await client.send_new_order(NewOrder("h1", "AAPL", "buy", 5))
            await client.send_new_order(NewOrder("h2", "NOPE", "buy", 5))
            await reports.until(lambda items: done("h1")(items) and done("h2")(items))
            assert reports.of("h1")[-1].last_px == 1892600
            assert reports.of("h2")[-1].exec_type is ExecType.REJECTED


@pytest.mark.anyio
async def test_http_quote_provider_with_the_service_down() -> None:
    provider = HttpQuoteProvider("http://127.0.0.1:9", timeout=0.5)
    assert await provider.prime("AAPL") is None
    assert provider.counters["errors"] == 1 and provider.last_error


# ------------------------------------------------------------------------ the command


def test_every_flag_has_help() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for action in parser._actions:
        assert action.help, action.option_strings
    args = parser.parse_args(["--listen", ":0", "--latency-ms", "3", "--reject-rate", "0.5", "--drop-after", "4",
                              "--down-schedule", "10/2", "--static-quotes", "AAPL=1x1/2x2"])
    assert args.listen == ("127.0.0.1", 0) and args.down_schedule == (10.0, 2.0)
    for bad in (["--reject-rate", "2"], ["--down-schedule", "10"], ["--listen", "x:y"], ["--drop-after", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


@pytest.mark.anyio
async def test_command_runs_serves_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tickfan", "market-maker", "--listen", "127.0.0.1:0", "--static-quotes",
        "AAPL=189.25x300/189.26x100", "--status-interval", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
        assert m, first
        reports = Reports()
        client = FixClient("127.0.0.1", int(m.group(1)), on_report=reports)
        await client.connect()
        await client.send_new_order(NewOrder("cli1", "AAPL", "buy", 1))
        assert (await reports.until(done("cli1")))[-1].last_px == 1892600
        status = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
        assert status.startswith("market-maker ") and "orders" in status and "fills" in status
        await client.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
