"""Who a FIX peer is, from its TLS client certificate: the CompID bound to the certificate.

Under mutual TLS the acceptor knows, before any FIX byte, which certificate the peer presented (the handshake
has already checked it against the configured CA). We bind the peer's CompID to that certificate's subject
**CN**: the Logon's SenderCompID must equal it, so a holder of one valid certificate cannot log on as
another firm. The CN (one name per certificate, set by whoever issues it) rather than a SAN, because a SAN
lists host names and addresses, while a CompID names a party.
"""

from __future__ import annotations

import asyncio

from vocab.tls import peer_common_name


def bound_comp_id(writer: asyncio.StreamWriter) -> str | None:
    """The only SenderCompID this connection may log on with: its client certificate's CN. None when the
    connection carries no client certificate (plain TCP, or TLS without client authentication): then any
    CompID the session accepts goes."""
    peercert = writer.get_extra_info("peercert")
    return peer_common_name(peercert) if peercert else None


__all__ = ["bound_comp_id"]
