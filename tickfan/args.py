"""Argument types shared by the commands: the bottom layer's parsers, turned into usage errors."""

from __future__ import annotations

import argparse

from vocab.addr import parse_hostport


def hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` for argparse: a malformed address is a usage error naming it, not a traceback."""
    try:
        return parse_hostport(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
