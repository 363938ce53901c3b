"""The node's feed flags: the session is required (or learnt from a snapshot), sources are explicit."""

from __future__ import annotations

import argparse

import pytest

from ingest.recovery import DEFAULT_MAX_HELD_BYTES
from ingest.session import DEFAULT_MAX_GAP
from tickfan.node import add_arguments, node_config


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tickfan node")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_a_node_with_a_feed_refuses_to_start_without_a_session_or_a_snapshot() -> None:
    with pytest.raises(SystemExit, match="--session NAME is required"):
        node_config(parse("--feed", "127.0.0.1:30001"))
    assert node_config(parse("--snapshot", "127.0.0.1:30002")).session is None  # pinned from the snapshot
    assert node_config(parse("--attach", "shm")).session is None  # no feed: nothing to name
    with pytest.raises(SystemExit, match="1 to 10 characters"):
        node_config(parse("--session", "ELEVENCHARS"))


def test_feed_sources_hosts_and_bounds_reach_the_config() -> None:
    config = node_config(parse("--session", "TICKFAN001", "--feed-source", "localhost",
                               "--feed-source", "127.0.0.2:4000", "--max-gap", "500", "--max-held-mib", "8"))
    assert config.session == "TICKFAN001"
    assert config.feed_sources == [("127.0.0.1", None), ("127.0.0.2", 4000)]
    assert config.max_gap == 500 and config.max_held_bytes == 8 << 20
    default = node_config(parse("--session", "S"))
    assert default.feed_sources is None and default.max_gap == DEFAULT_MAX_GAP
    assert default.max_held_bytes == DEFAULT_MAX_HELD_BYTES
    with pytest.raises(SystemExit):
        parse("--feed-source", "127.0.0.1:99999")


def test_help_says_that_any_source_is_accepted_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "ANY source is accepted" in text and "never taken from the first packet seen" in text
