"""The feed handler on real UDP sockets over loopback."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from ingest import itch, moldudp64
from ingest.handler import open_feed, open_feeds
from ingest.messages import Message, OrderDelete
from ingest.session import State
from tests.conftest import eventually, free_port

from .reference import RecordingSimulator


def test_handler_decodes_real_datagrams_and_survives_garbage() -> None:
    async def scenario() -> None:
        got: list[Message] = []
        handler = await open_feeds([("127.0.0.1", 0)], got.extend)
        port = handler.lines[0].get_extra_info("sockname")[1]
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            msgs = [itch.encode(OrderDelete(1, 0, 9, ref)) for ref in range(1, 6)]
            tx.sendto(moldudp64.encode_packet("S1", 1, msgs[:3]), ("127.0.0.1", port))
            tx.sendto(b"\x00not a packet", ("127.0.0.1", port))
            tx.sendto(moldudp64.encode_packet("S1", 4, msgs[3:]), ("127.0.0.1", port))
            await eventually(lambda: len(got) == 5, what="five messages", state=lambda: got)
        finally:
            tx.close()
            handler.close()
        assert [m.order_ref for m in got] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]
        assert handler.session.counters["malformed_packets"] == 1

    asyncio.run(scenario())


def test_a_failing_sink_is_counted_not_fatal() -> None:
    async def scenario() -> None:
        calls = 0

        def sink(msgs: list[Message]) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("downstream bug")

        handler = await open_feeds([("127.0.0.1", 0)], sink)
        port = handler.lines[0].get_extra_info("sockname")[1]
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for seq in (1, 2):
                tx.sendto(moldudp64.encode_packet("S1", seq, [itch.encode(OrderDelete(1, 0, 9, seq))]),
                          ("127.0.0.1", port))
            await eventually(lambda: calls == 2, what="two calls of the sink", state=lambda: calls)
        finally:
            tx.close()
            handler.close()
        assert calls == 2 and handler.sink_errors == 1

    asyncio.run(scenario())


def test_multicast_feed_on_the_loopback_interface() -> None:
    from venue.feed import serve

    async def scenario() -> None:
        got: list[Message] = []
        port = free_port(socket.SOCK_DGRAM)
        rewinder = ("127.0.0.1", free_port(socket.SOCK_DGRAM))  # for whatever loopback itself drops
        sim = RecordingSimulator(20)
        handler = await open_feeds([("239.192.77.1", port)], got.extend, interface="127.0.0.1", rewinder=rewinder)
        try:
            sent = await serve([("239.192.77.1", port)], rate=10_000, simulator=sim, duration=0.3,
                               interface="127.0.0.1", rewinder=rewinder)
            await eventually(lambda: handler.session.ended and handler.session.state is State.IN_SYNC,
                             what="the whole session", state=lambda: handler.session.counters)
        finally:
            handler.close()
        assert sent > 1_000 and sent == len(sim.log)
        assert [itch.encode(m) for m in got] == sim.log  # every message, once, in order, byte for byte

    asyncio.run(scenario())


def test_open_feed_one_line_and_gaps_are_logged_at_most_once_a_second(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        got: list[Message] = []
        transport, handler = await open_feed("127.0.0.1", 0, got.extend, session="S1")
        port = transport.get_extra_info("sockname")[1]
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def send(seq: int, session: str = "S1") -> None:
            tx.sendto(moldudp64.encode_packet(session, seq, [itch.encode(OrderDelete(1, 0, 9, seq))]),
                      ("127.0.0.1", port))

        try:
            # two holes, each filled late (reordering): two gaps within a second, one log line
            for seq in (1, 3, 2, 5, 4, 6):
                send(seq)
            send(7, session="OTHER")
            await eventually(lambda: handler.session.counters["packets"] == 7, what="seven packets",
                             state=lambda: handler.session.counters)
        finally:
            tx.close()
            handler.close()
        c = handler.session.counters
        assert c["gaps"] == 2 and c["unknown_session"] == 1 and c["messages_missed"] == 0
        assert [m.order_ref for m in got] == [1, 2, 3, 4, 5, 6]  # type: ignore[union-attr]

    with caplog.at_level(logging.WARNING, logger="tickfan.ingest"):
        asyncio.run(scenario())
    assert len([r for r in caplog.records if "feed gap" in r.getMessage()]) == 1
