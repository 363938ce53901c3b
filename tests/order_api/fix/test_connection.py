"""The one asyncio adapter (``FixConnection``) in both roles at once: an initiator and an acceptor, each a
``FixConnection`` with a recording handler, over real TCP on 127.0.0.1. Heartbeats, messages, Rejects, Logout
and teardown are the session's; what is tested here is that the adapter moves them and dispatches in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from order_api.fix import (
    Closed,
    FixFieldError,
    FixMessage,
    FixSession,
    LoggedOn,
    NewOrder,
    RejectReceived,
    Role,
    SessionRejectReason,
)
from order_api.fix.connection import FixConnection
from tests.conftest import eventually

pytestmark = pytest.mark.anyio


class Recorder:
    """A SessionHandler that keeps every event; ``on_message`` can be made to wait on ``gate``."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.gate: asyncio.Event | None = None
        self.finished_messages = 0
        self.conn: FixConnection | None = None
        self.reject_next = False

    async def on_logged_on(self, event: LoggedOn) -> None:
        self.events.append(event)

    async def on_message(self, message: FixMessage) -> None:
        self.events.append(message)
        if self.reject_next and self.conn is not None:
            self.conn.reject(message, FixFieldError(55, SessionRejectReason.VALUE_OUT_OF_RANGE, "not today"))
        if self.gate is not None:
            await self.gate.wait()
        self.finished_messages += 1

    async def on_reject(self, event: RejectReceived) -> None:
        self.events.append(event)

    async def on_closed(self, event: Closed) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[object]:
        return [e for e in self.events if isinstance(e, kind)]


@contextlib.asynccontextmanager
async def pair(hb: int = 30) -> AsyncIterator[tuple[FixConnection, Recorder, FixConnection, Recorder]]:
    """A logged-on initiator/acceptor pair, each driven by its own FixConnection."""
    accepted: asyncio.Queue[FixConnection] = asyncio.Queue()
    acc_rec = Recorder()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = FixSession(Role.ACCEPTOR, "MM1")
        conn = FixConnection(session, reader, writer, acc_rec, eof_reason="closed by the client", tick_cap=0.1)
        acc_rec.conn = conn
        conn.start()
        await accepted.put(conn)
        await conn.wait_ended()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ini_rec = Recorder()
    init = FixConnection(FixSession(Role.INITIATOR, "TICKFAN", "MM1", heartbeat_interval=hb), reader, writer, ini_rec,
                         eof_reason="closed by the acceptor", tick_cap=0.1)
    ini_rec.conn = init
    init.start()
    acc = await asyncio.wait_for(accepted.get(), 10)
    try:
        await eventually(lambda: ini_rec.of(LoggedOn) and acc_rec.of(LoggedOn), what="both sides logged on")
        yield init, ini_rec, acc, acc_rec
    finally:
        for c in (init, acc):
            await c.close("test over")
            await c.wait_stopped()
        server.close()
        await server.wait_closed()


async def test_both_roles_log_on_and_deliver_messages_in_order() -> None:
    async with pair() as (init, _ini, acc, acc_rec):
        assert acc_rec.of(LoggedOn)[0] == LoggedOn("TICKFAN", 30)
        for i in range(20):
            init.send(NewOrder(f"c{i}", "AAPL", "buy", i + 1).to_fix())
        await eventually(lambda: len(acc_rec.of(FixMessage)) == 20, what="20 orders at the acceptor")
        got = [NewOrder.from_fix(m).cl_ord_id for m in acc_rec.of(FixMessage)]  # type: ignore[arg-type]
        assert got == [f"c{i}" for i in range(20)]
        assert init.session.next_out_seq == acc.session.next_in_seq == 22  # Logon + 20


async def test_heartbeats_flow_both_ways_from_the_timer_loop() -> None:
    async with pair(hb=1) as (init, _ini, acc, _acc):
        await eventually(lambda: init.session.counters["heartbeats_out"] >= 2
                         and acc.session.counters["heartbeats_out"] >= 2, what="heartbeats from both sides")
        assert init.session.active and acc.session.active


async def test_a_reject_from_a_handler_reaches_the_peer() -> None:
    async with pair() as (init, ini_rec, _acc, acc_rec):
        acc_rec.reject_next = True
        init.send(NewOrder("r1", "AAPL", "buy", 1).to_fix())
        await eventually(lambda: ini_rec.of(RejectReceived), what="the Reject at the initiator")
        rej = ini_rec.of(RejectReceived)[0].reject  # type: ignore[attr-defined]
        assert (rej.ref_seq_num, rej.ref_tag, rej.text) == (2, 55, "not today")


async def test_logout_ends_both_sides_with_one_closed_event_each() -> None:
    async with pair() as (init, ini_rec, acc, acc_rec):
        init.session.logout("done for the day", asyncio.get_running_loop().time())
        init.write_pending()
        await eventually(lambda: ini_rec.of(Closed) and acc_rec.of(Closed), what="Closed on both sides")
        assert "done for the day" in acc_rec.of(Closed)[0].reason  # type: ignore[attr-defined]
        await asyncio.wait_for(init.wait_ended(), 10)
        assert init.session.closed and acc.session.closed
    assert len(ini_rec.of(Closed)) == 1 and len(acc_rec.of(Closed)) == 1


async def test_a_lost_connection_is_a_closed_event_with_the_eof_reason() -> None:
    async with pair() as (init, _ini, _acc, acc_rec):
        init.abort("pulled the plug")
        await eventually(lambda: acc_rec.of(Closed), what="the acceptor saw the connection go")
        assert acc_rec.of(Closed)[0].reason == "closed by the client"  # type: ignore[attr-defined]


async def test_close_does_not_cancel_a_reader_inside_on_message() -> None:
    async with pair() as (init, _ini, acc, acc_rec):
        acc_rec.gate = asyncio.Event()
        init.send(NewOrder("slow", "AAPL", "buy", 1).to_fix())
        await eventually(lambda: acc_rec.of(FixMessage), what="the acceptor inside on_message")
        await acc.close("closing while busy")
        assert acc.session.closed and acc_rec.finished_messages == 0
        acc_rec.gate.set()  # the handler finishes its message; then the read loop sees the closed session
        await asyncio.wait_for(acc.wait_stopped(), 10)
        assert acc_rec.finished_messages == 1 and all(t.done() and not t.cancelled() for t in acc.tasks[:1])
