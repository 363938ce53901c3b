"""``HOST:PORT`` as the commands take it: a plain ValueError for anything else, a usage error on the CLI."""

from __future__ import annotations

import argparse

import pytest

from tickfan.args import hostport
from vocab.addr import is_multicast, parse_hostport


@pytest.mark.parametrize("text,want", [("127.0.0.1:30001", ("127.0.0.1", 30001)), (":8000", ("127.0.0.1", 8000)),
                                       ("8765", ("127.0.0.1", 8765)), ("[::1]:9", ("::1", 9)),
                                       ("239.1.2.3:5", ("239.1.2.3", 5))])
def test_parse(text: str, want: tuple[str, int]) -> None:
    assert parse_hostport(text) == want


@pytest.mark.parametrize("text", ["garbage", "host:", "host:port", "1.2.3.4:70000", "1.2.3.4:-1"])
def test_refused_with_a_value_error_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT|out of range"):
        parse_hostport(text)
    with pytest.raises(argparse.ArgumentTypeError):
        hostport(text)


def test_multicast() -> None:
    assert is_multicast("239.192.77.7") and not is_multicast("127.0.0.1") and not is_multicast("localhost")
