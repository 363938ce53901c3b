"""The upgrade's plumbing (picows side of ``fanout.server.FanoutServer``): a protocol per connection that knows
its peer's address when the listener factory runs (the per-address limits refuse at the upgrade), the JSON
answer of a refused upgrade, and picows' logger, which never goes below DEBUG (it logs credentials at level 9).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, cast

from multidict import CIMultiDict, CIMultiDictProxy
from picows import WSTransport, WSUpgradeRequest, WSUpgradeResponse, WSUpgradeResponseWithListener
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # not in picows' stubs

from .limits import Refusal

if TYPE_CHECKING:
    from .server import FanoutServer, _Client

# picows logs whole upgrade requests (the query string's ?token= and ?ticket=, the Authorization header) at its
# level 9, through a child logger per connection: its logger for our server never goes below DEBUG, whatever the
# root logger's level, so they never are.
_picows_log = logging.getLogger("picows.tickfan")
_picows_log.setLevel(logging.DEBUG)


class _ConnectionLog(logging.LoggerAdapter[logging.Logger]):
    """picows' logger as its connections get it: given a ``logging.Logger``, picows makes a child ``Logger`` per
    connection and keeps it for the connection's life (~1 kB each: benchmarks/RESULTS.md, "Memory per connection
    (item 3)"); given anything else, it logs through it as it is. The same records, without the socket's number in
    the logger's name."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


connection_log = _ConnectionLog(_picows_log)
# what stands for the upgrade's headers once a connection is open: picows keeps the request and the answer for the
# connection's life, and nothing reads their headers after the upgrade (the request's carried its credentials)
_NO_HEADERS = cast(CIMultiDict[str], CIMultiDictProxy(CIMultiDict[str]()))


def release_handshake(transport: WSTransport) -> None:
    """Drop the upgrade request's and answer's headers that picows holds for the connection's life."""
    for message in (transport.request, transport.response):
        if message is not None:
            message.headers = _NO_HEADERS


def follow_root_log_level() -> None:
    """picows' logger at the root's level, never below DEBUG (see above). Left at DEBUG it logged a line per
    connection accepted and closed under a root at WARNING: 10,000 lines in a reconnect storm, on the connect
    path. Called when a server starts, after the command has configured logging."""
    _picows_log.setLevel(max(logging.DEBUG, logging.getLogger().getEffectiveLevel()))


class _PeerProtocol(WSProtocol):  # type: ignore[misc]  # picows' protocol has no stubs
    """picows' server protocol, one per connection, telling the listener factory the client's address.

    picows calls the factory with the upgrade request alone, but the per-address limits must refuse at the
    upgrade (an HTTP 429 before any WebSocket frame), so each connection gets a factory bound to its own
    protocol, which learnt the peer in ``connection_made``. Arguments after the factory are ``WSProtocol``'s own,
    as ``picows.ws_create_server`` passes them.
    """

    __slots__ = ("peer", "_server")  # no dict per connection

    def __init__(self, server: FanoutServer, *args: Any) -> None:
        self.peer: str | None = None
        super().__init__(None, None, False, self._listener, *args)
        self._server = server

    def _listener(self, request: WSUpgradeRequest) -> _Client | WSUpgradeResponseWithListener | None:
        return self._server._listener(request, self.peer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else None
        super().connection_made(transport)


def _refusal_response(refusal: Refusal) -> WSUpgradeResponseWithListener:
    body = json.dumps({"error": {"code": refusal.code, "message": refusal.message}}).encode()
    return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
        refusal.status, body, {"Content-Type": "application/json", "Retry-After": str(refusal.retry_after)}), None)
