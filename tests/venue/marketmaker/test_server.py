"""The market maker's acceptor end to end over real TCP on 127.0.0.1: a ``FixClient`` (and a hand-driven raw
initiator) against ``MarketMaker``. Nothing here asserts on time: waits are "until this happens" with a cap
against hangs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from order_api.fix import (
    CancelReject,
    CancelRequest,
    CxlRejReason,
    ExecType,
    FixMessage,
    FixParser,
    NewOrder,
    OrdStatus,
    StatusRequest,
    encode,
)
from order_api.fix.client import FixClient, FixUnavailable
from tests.conftest import WAIT, eventually
from tests.order_api.fix.conftest import Reports, done, session, status_of
from venue.marketmaker import DUPLICATE_TERMS, UNKNOWN_ORDER, Faults, MarketMaker
from vocab.quantities import QTY_SCALE as S

from .conftest import AAPL, MSFT, market


@pytest.mark.anyio
async def test_market_buy_fills_at_the_ask() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        assert client.connected
        await client.send_new_order(NewOrder("m1", "AAPL", "buy", 10 * S))
        items = await reports.until(done("m1"))
        new, fill = items
        assert (new.exec_type, new.ord_status, new.leaves_qty) == (ExecType.NEW, OrdStatus.NEW, 10 * S)
        assert (fill.exec_type, fill.ord_status, fill.last_px, fill.last_qty, fill.cum_qty) == (
            ExecType.TRADE, OrdStatus.FILLED, AAPL.ask_px, 10 * S, 10 * S)
        assert not fill.poss_resend and new.order_id == fill.order_id


@pytest.mark.anyio
async def test_market_sell_fills_at_the_bid() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("s1", "MSFT", "sell", 20 * S))
        fill = (await reports.until(done("s1")))[-1]
        assert (fill.last_px, fill.ord_status) == (MSFT.bid_px, OrdStatus.FILLED)


@pytest.mark.anyio
async def test_partial_fills_sum_to_the_quantity_with_unique_exec_ids() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("p1", "AAPL", "buy", 250 * S))
        await reports.until(done("p1"))
        fills = [r for r in reports.of("p1") if r.exec_type is ExecType.TRADE]
        assert [f.last_qty // S for f in fills] == [100, 100, 50]
        assert sum(f.last_qty for f in fills) == 250 * S == fills[-1].cum_qty
        assert len({f.exec_id for f in fills}) == len(fills)
        assert fills[-1].ord_status is OrdStatus.FILLED and fills[-1].leaves_qty == 0


@pytest.mark.anyio
async def test_limit_not_marketable_rests_then_cancel() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("l1", "AAPL", "buy", 10 * S, "limit", 1880000))
        await client.request_status(StatusRequest("l1", "AAPL", "buy"))
        status = (await reports.until(status_of("l1")))[-1]
        assert (status.ord_status, status.leaves_qty, status.cum_qty) == (OrdStatus.NEW, 10 * S, 0)
        await client.send_cancel(CancelRequest("l1:c1", "l1", "AAPL", "buy", 10))
        cancel = (await reports.until(done("l1")))[-1]
        assert (cancel.exec_type, cancel.ord_status, cancel.cl_ord_id, cancel.orig_cl_ord_id) == (
            ExecType.CANCELED, OrdStatus.CANCELED, "l1:c1", "l1")
        assert not [r for r in reports.items if r.exec_type is ExecType.TRADE]


@pytest.mark.anyio
async def test_resting_limit_fills_when_the_book_reaches_it() -> None:
    async with market() as (mm, quotes), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("l2", "AAPL", "buy", 10 * S, "limit", 1880000))
        await reports.until(lambda items: len(items) == 1)
        quotes.set("AAPL", 1879000, 100, 1880000, 100)
        fill = (await reports.until(done("l2")))[-1]
        assert (fill.exec_type, fill.last_px) == (ExecType.TRADE, 1880000)


@pytest.mark.anyio
async def test_ioc_cancels_the_rest() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("i1", "AAPL", "buy", 10 * S, "limit", 1880000, "ioc"))
        items = await reports.until(done("i1"))
        assert [(r.exec_type, r.ord_status) for r in items] == [(ExecType.NEW, OrdStatus.NEW),
                                                                 (ExecType.CANCELED, OrdStatus.CANCELED)]
        await client.send_new_order(NewOrder("i2", "AAPL", "buy", 250 * S, "market", None, "ioc"))
        await reports.until(done("i2"))
        assert [(r.exec_type, r.cum_qty // S, r.leaves_qty // S) for r in reports.of("i2")] == [
            (ExecType.NEW, 0, 250), (ExecType.TRADE, 100, 150), (ExecType.CANCELED, 100, 0)]


@pytest.mark.anyio
async def test_unknown_symbol_is_rejected_with_a_reason() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        await client.send_new_order(NewOrder("u1", "NOPE", "buy", 1 * S))
        (rej,) = await reports.until(done("u1"))
        assert (rej.exec_type, rej.ord_status) == (ExecType.REJECTED, OrdStatus.REJECTED)
        assert "NOPE" in rej.text


@pytest.mark.anyio
async def test_duplicate_cl_ord_id_both_ways() -> None:
    async with market() as (mm, _), session(mm) as (client, reports):
        order = NewOrder("dup1", "AAPL", "buy", 10 * S)
        await client.send_new_order(order)
        await reports.until(done("dup1"))
        await client.send_new_order(order)  # same terms: the same order, answered with its status
        status = (await reports.until(status_of("dup1")))[-1]
        assert (status.ord_status, status.cum_qty) == (OrdStatus.FILLED, 10 * S)
        await client.send_new_order(NewOrder("dup1", "AAPL", "sell", 10 * S))  # different terms
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
        await client.send_new_order(NewOrder("r1", "AAPL", "buy", 250 * S))
        await asyncio.wait_for(lost.wait(), WAIT)
        assert not client.connected and reasons
        with pytest.raises(FixUnavailable):
            await client.send_new_order(NewOrder("r2", "AAPL", "buy", 1 * S))
        seen = {r.exec_id for r in before.items if r.exec_type is ExecType.TRADE}
        assert len(seen) <= 1

        mm.faults.drop_after = None
        await eventually(lambda: mm.engine.orders["r1"].status is OrdStatus.FILLED, what="r1 filled while we were away")
        async with session(mm) as (again, reports):
            await again.request_status(StatusRequest("r1", "AAPL", "buy"))
            items = await reports.until(status_of("r1"))
        resent = [r for r in items if r.exec_type is ExecType.TRADE]
        assert all(r.poss_resend for r in resent)
        assert sum(r.last_qty for r in resent) == 250 * S and len({r.exec_id for r in resent}) == 3
        assert seen <= {r.exec_id for r in resent}  # what we had is re-sent under its original ExecID
        assert (items[-1].ord_status, items[-1].cum_qty, items[-1].leaves_qty) == (OrdStatus.FILLED, 250 * S, 0)


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
        await eventually(lambda: bool(got), what="a cancel reject")
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
            await client.send_new_order(NewOrder("after", "AAPL", "buy", 1 * S))
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
            await client.send_new_order(NewOrder(f"lat{i}", "AAPL", "buy", 150 * S))
        await reports.until(lambda items: all(done(f"lat{i}")(items) for i in range(5)))
        exec_ids = [int(r.exec_id.rsplit("-", 1)[1]) for r in reports.items]
        assert exec_ids == sorted(exec_ids)  # jitter never reorders a connection's reports
        mm.faults.reject_rate = 1.0
        await client.send_new_order(NewOrder("rr", "AAPL", "buy", 1 * S))
        await reports.until(done("rr"))
        (r,) = reports.of("rr")
        assert r.exec_type is ExecType.REJECTED and "simulated" in r.text


# (a second logon under the same CompID is refused: tests/venue/marketmaker/test_logon.py)


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
        self.writer.write(encode(FixMessage([(35, msg_type), (49, "TF-raw"), (56, "MM1"), (34, str(s)),
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
        raw.send("E", (11, "x"))  # an unsupported MsgType (NewOrderList; G, replace, is supported)
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
