"""Network addresses as the commands take them: ``HOST:PORT``, ``:PORT`` or ``PORT``.

Raises a plain ``ValueError`` for anything else; the command line turns it into a usage error.
"""

from __future__ import annotations

import ipaddress

from vocab.digits import parse_ascii_int

DEFAULT_HOST = "127.0.0.1"


def parse_hostport(text: str, default_host: str = DEFAULT_HOST) -> tuple[str, int]:
    """'HOST:PORT', ':PORT' or 'PORT' -> (host, port); ``ValueError`` naming the text for anything else."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = "", str(text)
    try:
        number = parse_ascii_int(port, 5)
    except ValueError:
        raise ValueError(f"expected HOST:PORT, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return (host.strip("[]") or default_host), number


def is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_multicast
    except ValueError:
        return False
