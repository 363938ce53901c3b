"""Which browser origins may use the stream and the HTTP APIs (pure), and the HTTP side's ASGI guard.

A browser names the page that opened a WebSocket or made a cross-origin request in its ``Origin`` header; a
page on another site must not drive a user's session here (cross-site WebSocket hijacking, CSRF). So:

- no ``Origin`` header: not a browser (``tickfan watch``, an SDK in Node, a load test): accepted;
- an ``Origin`` in the configured set (``--allowed-origin``; the node's own HTTP origin(s) by default): accepted,
  and on HTTP granted CORS (``Access-Control-Allow-Origin`` naming it, never ``*``);
- any other, ``null`` included (a sandboxed frame, a file:// page): refused at the WebSocket upgrade (HTTP 403
  ``origin_not_allowed``), refused on state-changing HTTP requests (POST, PUT, PATCH, DELETE: 403
  ``origin_not_allowed``) and on CORS preflights, and never granted CORS on reads (the browser hides the
  answer from the foreign page).

Origins compare as scheme, host and port, lower case, with the scheme's default port implied (what browsers
send: ``http://localhost:8000``, ``https://trade.example.com``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CODE = "origin_not_allowed"
DEFAULT_PORTS = {"http": 80, "https": 443}
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# what a page of an allowed origin may send and read cross-origin (the order API's request and answer headers)
ALLOW_HEADERS = "Authorization, Content-Type"
EXPOSE_HEADERS = "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
ALLOW_METHODS = "GET, POST, DELETE"
PREFLIGHT_MAX_AGE = "600"


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` in the form browsers send it; ``ValueError`` for anything else (a path, a
    query, credentials, a scheme other than http/https, ``*``)."""
    raw = text.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"bad origin {text!r}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError(f"bad origin {text!r}: give scheme://host[:port] with scheme http or https")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"bad origin {text!r}: an origin has no path, query or fragment")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, bracketed as in the header
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def own_origins(host: str, port: int, *, tls: bool = False) -> tuple[str, ...]:
    """The origins a node's own pages have when served on ``host:port``: that one; for a loopback or wildcard
    bind every loopback name too (a page opened as http://localhost:8000 or http://127.0.0.1:8000)."""
    scheme = "https" if tls else "http"
    names = [host]
    if host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""):
        names = list(LOOPBACK_NAMES)
    out: list[str] = []
    for name in names:
        bracketed = f"[{name}]" if ":" in name and not name.startswith("[") else name
        origin = normalize_origin(f"{scheme}://{bracketed}:{port}")
        if origin not in out:
            out.append(origin)
    return tuple(out)


@dataclass
class OriginPolicy:
    """The allowed origins of one surface (the stream, or an HTTP app), and what it decided, counted."""

    allowed: frozenset[str]
    absent: int = 0    # requests/upgrades without an Origin header (non-browser clients): accepted
    granted: int = 0   # with an allowed Origin: accepted
    refused: int = 0   # with a foreign Origin: refused (the upgrade, a state-changing request, a preflight)
    foreign_reads: int = 0  # a foreign Origin reading (GET): answered without a CORS grant

    @classmethod
    def of(cls, origins: Iterable[str]) -> OriginPolicy:
        return cls(frozenset(normalize_origin(o) for o in origins))

    def is_allowed(self, origin: str) -> bool:
        try:
            return normalize_origin(origin) in self.allowed
        except ValueError:
            return False  # "null", garbage: never one of ours

    def admit(self, origin: str | None) -> bool:
        """An upgrade or state-changing request carrying ``origin`` (None: no header): accept it? Counted."""
        if origin is None:
            self.absent += 1
            return True
        if self.is_allowed(origin):
            self.granted += 1
            return True
        self.refused += 1
        return False

    def refusal_message(self, origin: str) -> str:
        return (f"origin {origin[:100]!r} is not allowed here; the server's --allowed-origin flags list the "
                f"origins whose pages may use it")

    def refusal_body(self, origin: str) -> bytes:
        return json.dumps({"error": {"code": CODE, "message": self.refusal_message(origin)}}).encode()

    def counters(self) -> dict[str, int]:
        return {"absent": self.absent, "granted": self.granted, "refused": self.refused,
                "foreign_read": self.foreign_reads}


# ---------------------------------------------------------------------- the HTTP side: an ASGI middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class OriginGuard:
    """Wraps an ASGI app: CORS for the allowed origins, 403 ``origin_not_allowed`` for a foreign origin's
    preflight or state-changing request, reads from a foreign origin answered without a grant."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        method = str(scope.get("method", "GET")).upper()
        preflight = method == "OPTIONS" and _header(scope, b"access-control-request-method") is not None
        if origin is None:
            self.policy.absent += 1
            await self.app(scope, receive, send)
            return
        if not self.policy.is_allowed(origin):
            if preflight or method in STATE_CHANGING:
                self.policy.refused += 1
                await _answer(send, 403, self.policy.refusal_body(origin), [(b"content-type", b"application/json")])
                return
            self.policy.foreign_reads += 1
            await self.app(scope, receive, send)  # the browser keeps the answer from the foreign page
            return
        self.policy.granted += 1
        grant = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if preflight:
            await _answer(send, 204, b"", [*grant, (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                                          (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                                          (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode())])
            return

        async def granted(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *grant,
                                      (b"access-control-expose-headers", EXPOSE_HEADERS.encode())]
            await send(message)

        await self.app(scope, receive, granted)


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
