"""Argument types shared by the commands: the bottom layer's parsers, turned into usage errors."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import ssl

from vocab.addr import parse_hostport
from vocab.clock import parse_date
from vocab.tls import TlsFiles, client_context


def hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` for argparse: a malformed address is a usage error naming it, not a traceback."""
    try:
        return parse_hostport(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def date_arg(text: str) -> dt.date:
    """``YYYY-MM-DD`` for argparse (a session date): a malformed one is a usage error naming it."""
    try:
        return parse_date(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_tls_arguments(parser: argparse.ArgumentParser, what: str, *, prefix: str = "") -> None:
    """``--tls-cert``, ``--tls-key``, ``--tls-client-ca``: a server's certificate and, for mutual TLS, the CA of
    the client certificates it accepts (the node's and the order API's: they share a host name and so a
    certificate, and ``TICKFAN_TLS_CERT``...). A ``prefix`` names another service's (``fix-``: the market maker's
    FIX port), the unprefixed spellings kept as aliases; the destinations stay ``tls_cert``, ``tls_key``,
    ``tls_client_ca`` (``tls_files``)."""
    def spellings(name: str) -> list[str]:
        return [f"--{prefix}{name}", f"--{name}"] if prefix else [f"--{name}"]

    group = parser.add_argument_group("TLS")
    group.add_argument(*spellings("tls-cert"), dest="tls_cert", default=None, metavar="PEM",
                       help=f"{what} with this certificate chain (PEM; default: plain)")
    group.add_argument(*spellings("tls-key"), dest="tls_key", default=None, metavar="PEM",
                       help=f"the certificate's private key, if not in the --{prefix}tls-cert file")
    group.add_argument(*spellings("tls-client-ca"), dest="tls_client_ca", default=None, metavar="PEM",
                       help="mutual TLS: refuse clients without a certificate signed by this CA "
                            "(default: no client certificate asked)")


def tls_files(args: argparse.Namespace) -> TlsFiles:
    """The server TLS files the flags name (``TlsFiles()`` when none: plain)."""
    cert, key, ca = (getattr(args, n, None) for n in ("tls_cert", "tls_key", "tls_client_ca"))
    if cert is None and (key is not None or ca is not None):
        raise SystemExit("tickfan: --tls-key and --tls-client-ca need --tls-cert")
    for path in (cert, key, ca):
        if path is not None and not os.path.isfile(path):
            raise SystemExit(f"tickfan: TLS file not found: {path}")
    return TlsFiles(cert, key, ca)


def add_client_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ca``, ``--client-cert``, ``--client-key``: how a client checks a ``wss://``/``https://`` server, and
    the certificate it presents to a server that asks for one (mutual TLS)."""
    group = parser.add_argument_group("TLS")
    group.add_argument("--ca", default=None, metavar="PEM",
                       help="verify wss:// and https:// servers against this CA (default: the system's trust store)")
    group.add_argument("--client-cert", default=None, metavar="PEM",
                       help="client certificate for servers that require one (mutual TLS)")
    group.add_argument("--client-key", default=None, metavar="PEM",
                       help="the client certificate's key, if not in --client-cert")


def client_tls(args: argparse.Namespace, *urls: str) -> ssl.SSLContext | None:
    """The client context for ``--ca``/``--client-cert``/``--client-key`` when any of ``urls`` is ``wss://`` or ``https://``."""
    if not any(u.startswith(("wss://", "https://")) for u in urls):
        return None
    return client_context(getattr(args, "ca", None), getattr(args, "client_cert", None),
                          getattr(args, "client_key", None))


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
