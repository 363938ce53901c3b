"""TLS contexts from certificate files: one place that decides how every link of ours is encrypted.

Servers (the node's WebSocket and HTTP, the order API, the FIX acceptor) take a certificate chain and its key,
and, for mutual TLS, the CA that signs the client certificates they accept. Clients (``tickfan watch``,
``tickfan trade``, the execution worker's FIX initiator) verify the server against a CA file (the system's
trust store when none is given) and may present a certificate of their own. TLS 1.2 is the floor.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files: ``cert``/``key`` this side's chain and key; ``ca`` the CA that signs the other side."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None

    def __post_init__(self) -> None:
        if (self.key is not None) and self.cert is None:
            raise ValueError("a TLS key needs its certificate (--tls-cert)")

    @property
    def enabled(self) -> bool:
        return self.cert is not None


def server_context(cert: str, key: str | None = None, client_ca: str | None = None) -> ssl.SSLContext:
    """A server's context: its certificate chain and key; with ``client_ca``, clients must present a certificate
    signed by that CA (mutual TLS), otherwise the handshake fails."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ca: str | None = None, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A client's context: the server is verified (certificate and host name) against ``ca``, or the system's
    trust store; ``cert``/``key`` are presented when the server asks for a client certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def server_context_of(files: TlsFiles) -> ssl.SSLContext | None:
    """``server_context`` for these files, or None when no certificate is configured (plain TCP)."""
    if files.cert is None:
        return None
    return server_context(files.cert, files.key, files.ca)


def peer_common_name(peercert: dict[str, object] | None) -> str | None:
    """The subject CN of a verified peer certificate (``SSLObject.getpeercert()``), None without one."""
    if not peercert:
        return None
    subject = peercert.get("subject")
    if not isinstance(subject, tuple):
        return None
    for rdn in subject:
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


__all__ = ["TlsFiles", "client_context", "peer_common_name", "server_context", "server_context_of"]
