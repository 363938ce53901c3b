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


def source(text: str) -> tuple[str, int | None]:
    """``HOST[:PORT]`` for argparse, the host resolved to its IPv4 address (datagrams carry addresses, not
    names); no port: any port of that host."""
    import socket

    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    try:
        number = int(port) if port else None
        if number is not None and not 0 < number < 65536:
            raise ValueError(f"port out of range in {text!r}")
        return socket.gethostbyname(host), number
    except (ValueError, OSError) as e:
        raise argparse.ArgumentTypeError(f"bad feed source {text!r}: {e}") from None
