"""The asyncio FIX initiator: connecting, refusals, callbacks, disconnects (real TCP on 127.0.0.1)."""

from __future__ import annotations

import asyncio

import pytest

from order_api.fix import ExecType, ExecutionReport, FixMessage, FixParser, NewOrder, StatusRequest, encode
from order_api.fix.client import FixClient, FixUnavailable
from tests.conftest import WAIT, free_port
from tests.venue.marketmaker.conftest import QUOTES, market
from venue.marketmaker import MarketMaker, StaticQuoteProvider

from .conftest import Reports, done, session


async def _noop(_: ExecutionReport) -> None:
    pass


@pytest.mark.anyio
async def test_nothing_listening_is_unavailable() -> None:
    client = FixClient("127.0.0.1", free_port(), on_report=_noop)
    with pytest.raises(FixUnavailable, match="cannot connect"):
        await client.connect()
    assert not client.connected


@pytest.mark.anyio
async def test_a_peer_that_never_answers_the_logon_is_unavailable() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the Logon, says nothing until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = FixClient("127.0.0.1", port, on_report=_noop, connect_timeout=0.3)
        with pytest.raises(FixUnavailable):
            await client.connect()
        assert not client.connected
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.anyio
async def test_a_refused_logon_is_unavailable_with_the_reason() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = FixParser()
        while not parser.feed(await reader.read(4096)):
            pass
        writer.write(encode(FixMessage([(35, "5"), (49, "MM1"), (56, "TICKFAN"), (34, "1"),
                                        (52, "20240102-03:04:05.678"), (58, "not today")])))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(FixUnavailable, match="not today"):
            await FixClient("127.0.0.1", port, on_report=_noop).connect()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.anyio
async def test_wrong_target_comp_id_is_refused_by_the_market_maker() -> None:
    calls: list[str] = []
    async with market() as (mm, _):
        client = FixClient("127.0.0.1", mm.port, target_comp_id="MM9", on_report=_noop, on_disconnect=calls.append)
        with pytest.raises(FixUnavailable, match="CompID"):
            await client.connect()
    assert calls == []  # a session that never logged on is connect()'s failure, not a disconnect


@pytest.mark.anyio
async def test_sending_without_a_session_is_unavailable() -> None:
    client = FixClient("127.0.0.1", 1, on_report=_noop)
    with pytest.raises(FixUnavailable):
        await client.send_new_order(NewOrder("c", "AAPL", "buy", 1))
    with pytest.raises(FixUnavailable):
        await client.request_status(StatusRequest("c", "AAPL", "buy"))


@pytest.mark.anyio
async def test_a_client_connects_once() -> None:
    async with market() as (mm, _), session(mm) as (client, _):
        with pytest.raises(FixUnavailable):
            await client.connect()


@pytest.mark.anyio
async def test_close_logs_out_without_calling_on_disconnect() -> None:
    calls: list[str] = []
    async with market() as (mm, _):
        client = FixClient("127.0.0.1", mm.port, on_report=_noop, on_disconnect=calls.append)
        await client.connect()
        await client.close()
        assert not client.connected and calls == []
        assert client.close_reason == "client closing"  # the Logout we sent, answered
        await client.close()  # twice is fine


@pytest.mark.anyio
async def test_market_maker_shutdown_calls_on_disconnect_with_the_reason() -> None:
    calls: list[str] = []
    mm = MarketMaker(StaticQuoteProvider(QUOTES), port=0)
    await mm.start()
    client = FixClient("127.0.0.1", mm.port, on_report=_noop, on_disconnect=calls.append)
    await client.connect()
    await mm.stop()
    reason = await asyncio.wait_for(client.wait_closed(), WAIT)
    assert "shutting down" in reason and calls == [reason] and not client.connected


@pytest.mark.anyio
async def test_a_failing_on_report_is_counted_and_reading_goes_on() -> None:
    good = Reports()

    async def flaky(report: ExecutionReport) -> None:
        if report.exec_type is ExecType.NEW:
            raise RuntimeError("ledger down")
        await good(report)

    async with market() as (mm, _):
        client = FixClient("127.0.0.1", mm.port, on_report=flaky)
        await client.connect()
        try:
            await client.send_new_order(NewOrder("f1", "AAPL", "buy", 5))
            await good.until(done("f1"))
            assert client.counters["report_errors"] == 1 and client.connected
        finally:
            await client.close()


@pytest.mark.anyio
async def test_drop_now_is_seen_as_a_lost_connection() -> None:
    lost = asyncio.Event()
    async with market() as (mm, _), session(mm, on_disconnect=lambda _r: lost.set()) as (client, _):
        assert mm.drop_connections() == 1
        await asyncio.wait_for(lost.wait(), WAIT)
        assert not client.connected and client.close_reason
