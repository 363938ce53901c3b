"""The feed handler on real UDP sockets over loopback."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from ingest import itch, moldudp64
from ingest.handler import open_feed, open_feeds
from ingest.messages import Message, OrderDelete


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
            for _ in range(200):
                if len(got) == 5:
                    break
                await asyncio.sleep(0.01)
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
            for _ in range(200):
                if calls == 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            tx.close()
            handler.close()
        assert calls == 2 and handler.sink_errors == 1

    asyncio.run(scenario())


def test_multicast_feed_on_the_loopback_interface() -> None:
    from venue.simulator import serve

    async def scenario() -> None:
        got: list[Message] = []
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        handler = await open_feeds([("239.192.77.1", port)], got.extend, interface="127.0.0.1")
        try:
            sent = await serve([("239.192.77.1", port)], rate=10_000, symbols=20, duration=0.3, interface="127.0.0.1")
            await asyncio.sleep(0.2)
        finally:
            handler.close()
        assert sent > 1_000 and handler.session.counters["messages"] == sent

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
                await asyncio.sleep(0.005)
            send(7, session="OTHER")
            for _ in range(200):
                if handler.session.counters["packets"] == 7:
                    break
                await asyncio.sleep(0.01)
        finally:
            tx.close()
            handler.close()
        c = handler.session.counters
        assert c["gaps"] == 2 and c["unknown_session"] == 1 and c["messages_missed"] == 0
        assert [m.order_ref for m in got] == [1, 2, 3, 4, 5, 6]  # type: ignore[union-attr]

    with caplog.at_level(logging.WARNING, logger="tickfan.ingest"):
        asyncio.run(scenario())
    assert len([r for r in caplog.records if "feed gap" in r.getMessage()]) == 1
