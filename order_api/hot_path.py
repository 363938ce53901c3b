"""``POST /v1/orders`` as a raw ASGI route in front of Starlette (issue 16, benchmarks/RESULTS.md "Order
acknowledgement (item 4)").

Placing an order is the one request the API serves at a thousand a second; py-spy put Starlette's per-request
machinery (the middleware stack, the router's matching, a ``Request`` with its ``Headers``, a ``Response`` with
its ``MutableHeaders``) at 14% of the API's CPU at 1,000 orders/s. :class:`PlaceOrderRoute` answers it straight
from the ASGI scope and sends the two ASGI messages itself; every other request goes on to Starlette.

It answers exactly as the Starlette route does (``order_api.api``: ``authenticated`` around ``place_order``):
both call :func:`placement` for the order and ``order_api.answers`` for every refusal, so the status codes,
JSON bodies, error codes, ``X-RateLimit-*`` headers and idempotency are one definition. A request under a
root path (an app mounted below another) goes to Starlette, whose router knows how to strip it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from order_api.answers import answered, error_response
from order_api.limits import read_capped
from order_api.model import parse_order
from order_api.views import order_json
from vocab.auth import AuthError, bearer

if TYPE_CHECKING:
    from order_api.api import OrderService, Services

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/v1/orders"
JSON = (b"content-type", b"application/json")


async def placement(s: Services, user: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """Place the order in ``raw`` (the JSON body) for ``user``: (201, the order) when placed, (200, the first
    order) for its idempotency key again; a refusal raises (``ApiError`` and the rest: ``answers.answered``)."""
    req = parse_order(raw)
    quote = await s.quotes.quote(req.symbol)
    order, created = await s.ledger.place(user, req, quote)
    body = order_json(order)
    if quote is not None:
        # the price the checks just used: a limit order still goes on an old one (the market-data node down),
        # and the answer says so
        body["quote_age"] = round(quote.age, 3)
        body["quote_stale"] = quote.is_stale(s.ledger.rules.max_quote_age)
    return (201 if created else 200), body


class PlaceOrderRoute:
    """An ASGI app: ``POST /v1/orders`` answered here, anything else passed to ``app``."""

    def __init__(self, app: ASGIApp, service: OrderService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, headers, body = await self._answer(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.service.placements.record(status, body, time.perf_counter() - start)

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        authorization = declared = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"content-length" and declared is None:
                declared = value.decode("latin-1")
        service = self.service
        try:
            claims = service.verifier.claims(bearer(authorization))
        except AuthError as e:
            return _raw(error_response(401, e.code, str(e)))
        s = service.services

        async def run() -> Response | tuple[int, dict[str, Any]]:
            await service.sessions.check(claims)
            raw = await read_capped(declared, _chunks(receive), s.limits.max_body, s.bodies)
            return await placement(s, claims.user, raw)

        limiter = service.limiter
        if limiter is None:
            return _answer_of(await answered(_where, service, run))
        verdict = limiter.hit(claims.user)  # every request counts, refused ones too
        if verdict.allowed:
            status, headers, body = _answer_of(await answered(_where, service, run))
        else:
            status, headers, body = _raw(error_response(
                429, "rate_limited", f"at most {verdict.limit} requests per {limiter.window:g} s per user; "
                                     f"retry after Retry-After seconds"))
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in verdict.headers(time.time()).items()]
        return status, headers, body


def _where() -> str:
    return f"POST {PATH}"


def _answer_of(answer: Response | tuple[int, dict[str, Any]]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    if isinstance(answer, Response):
        return _raw(answer)
    status, body = answer
    encoded = orjson.dumps(body)
    return status, [(b"content-length", str(len(encoded)).encode()), JSON], encoded


def _raw(response: Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response.status_code, list(response.raw_headers), bytes(response.body)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body's chunks as ASGI delivers them (Starlette's ``Request.stream``, without the Request)."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
