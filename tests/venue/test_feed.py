"""The feed sender: the simulated stream on real UDP, paced, ended with End of Session; the commands' --help."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ingest import itch
from ingest.handler import open_feeds
from ingest.messages import Message
from ingest.session import State
from tests.conftest import eventually, free_port
from tests.ingest.reference import RecordingSimulator
from tickfan import cli
from venue.feed import Burst, serve


def test_udp_delivery_is_the_generated_stream() -> None:
    async def scenario() -> None:
        got: list[Message] = []
        rewinder = ("127.0.0.1", free_port(socket.SOCK_DGRAM))  # for whatever loopback itself drops
        handler = await open_feeds([("127.0.0.1", 0)], got.extend, rewinder=rewinder)
        port = handler.lines[0].get_extra_info("sockname")[1]
        sim = RecordingSimulator(100, seed=2)
        try:
            # a count, not a duration: on a loaded machine the pacer sends less per second (it never banks a
            # shortfall), and what this test checks is the stream, not the rate
            stop = asyncio.Event()

            async def enough() -> None:
                while len(sim.log) < 6_000:
                    await asyncio.sleep(0.01)
                stop.set()

            watcher = asyncio.create_task(enough())
            sent = await serve([("127.0.0.1", port)], rate=20_000, simulator=sim, duration=60, stop=stop,
                               rewinder=rewinder)
            watcher.cancel()
            await eventually(lambda: handler.session.ended and handler.session.state is State.IN_SYNC,
                             what="the whole session", state=lambda: handler.session.counters)
        finally:
            handler.close()
        c = handler.session.counters
        assert sent > 5_000 and sent == len(sim.log)
        assert c["messages"] == sent and c["malformed_packets"] == 0 and c["messages_missed"] == 0
        assert [itch.encode(m) for m in got] == sim.log

    asyncio.run(scenario())


def test_burst_parse_and_factor() -> None:
    b = Burst.parse("10@5+5")
    assert b == Burst(10.0, 5.0, 5.0)
    assert [b.factor_at(t) for t in (4.9, 5.0, 9.9, 10.0)] == [1.0, 10.0, 10.0, 1.0]
    for bad in ("10", "10@5", "x@1+1", "0@1+1", "2@-1+1", "2@1+0"):
        with pytest.raises(ValueError):
            Burst.parse(bad)


def test_serve_refuses_a_rate_of_zero() -> None:
    with pytest.raises(ValueError):
        asyncio.run(serve([("127.0.0.1", 9)], rate=0))


@pytest.mark.parametrize("command", ["simulate", "record", "replay"])
def test_each_feed_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0 and f"usage: tickfan {command}" in capsys.readouterr().out


def test_a_malformed_address_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["simulate", "--target", "nowhere"])
    assert e.value.code == 2 and "--target" in capsys.readouterr().err
