"""The stream's abuse limits from a node's flags to its fan-out, and out again as metrics (issue 10)."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

import pytest
import websockets
from prometheus_client import CollectorRegistry, generate_latest

from fanout.config import FanoutConfig
from fanout.server import FanoutServer
from ingest.handler import FeedHandler
from normalize import Books
from tests.fanout.conftest import closed, config, fanout_server, make_books
from tickfan.metrics import NodeCollector
from tickfan.node import add_arguments, node_config, stream_limit_flags
from tickfan.roles import NodeConfig, build_roles
from vocab.origins import own_origins


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--session", "TICKFAN001", *argv])  # a feed needs its session named


def test_node_flags_set_the_fanout_limits_and_pass_on_to_workers() -> None:
    args = parse("--max-connections", "500", "--max-connections-per-ip", "7", "--connection-rate-per-ip", "2.5",
                 "--connection-burst-per-ip", "9", "--max-connections-per-user", "3", "--limit-loopback",
                 "--max-fragments", "16", "--max-fragments-per-second", "40", "--max-symbols-per-second", "300",
                 "--symbol-burst", "1500", "--upgrade-timeout", "2", "--close-timeout", "3", "--ws", "127.0.0.1:0",
                 "--listen-backlog", "777", "--connection-rate", "900")
    stream = node_config(args).stream
    assert (stream.max_connections, stream.max_connections_per_ip, stream.connection_rate_per_ip,
            stream.connection_burst_per_ip, stream.max_connections_per_user, stream.limit_loopback,
            stream.max_fragments, stream.max_fragments_per_second, stream.max_symbols_per_second,
            stream.symbol_burst, stream.upgrade_timeout, stream.close_timeout, stream.listen_backlog,
            stream.connection_rate) == (500, 7, 2.5, 9, 3, True, 16, 40.0, 300.0, 1500, 2.0, 3.0, 777, 900.0)
    assert node_config(parse(*stream_limit_flags(args))).stream == stream  # what a fan-out worker is given
    # no flags: the defaults, with the node's own HTTP origins as the browser pages allowed on the stream
    assert node_config(parse()).stream == FanoutConfig(allowed_origins=own_origins("127.0.0.1", 8000))
    fanout = build_roles(node_config(args)).edge
    assert fanout is not None
    assert fanout.fanout.config.max_connections_per_ip == 7 and fanout.fanout.config.port == 0  # --ws still wins


def test_a_bad_limit_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="symbol_burst"):
        node_config(parse("--symbol-burst", "10"))
    with pytest.raises(SystemExit, match="max_connections_per_ip"):
        node_config(parse("--max-connections-per-ip", "0"))


@dataclass
class Measured:
    books: Books
    fanout: FanoutServer
    feed: FeedHandler | None = None


def test_refusals_limit_closes_and_settings_are_metrics() -> None:
    async def main() -> str:
        books = make_books()
        async with fanout_server(books, config(max_connections=1, max_fragments=4)) as server:
            url = server.url
            async with websockets.connect(url) as ws:
                with pytest.raises(websockets.InvalidStatus):  # the second: over the total cap
                    async with websockets.connect(url):
                        pass
                await ws.send([b""] * 10)  # 10 empty fragments against 4
                await closed(ws)
            registry = CollectorRegistry()
            registry.register(NodeCollector(Measured(books, server)))
            return generate_latest(registry).decode()

    text = asyncio.run(main())
    for line in ('tickfan_connections_refused_total{reason="total"} 1.0',
                 'tickfan_connections_refused_total{reason="per_ip"} 0.0',
                 'tickfan_limit_closes_total{reason="too_many_fragments"} 1.0',
                 "tickfan_symbol_rate_limited_total 0.0",
                 'tickfan_stream_limit{name="max_connections"} 1.0',
                 'tickfan_stream_limit{name="max_fragments"} 4.0',
                 'tickfan_stream_limit{name="limit_loopback"} 0.0'):
        assert line in text.splitlines(), line
    assert "tickfan_snapshot_symbols_encoded_total" in text


def test_node_config_defaults_to_the_fanout_defaults() -> None:
    assert NodeConfig().stream == FanoutConfig()
