"""The order API's abuse limits (real PostgreSQL; a real uvicorn server for the socket tests): bodies read with a
cap, a per-user request rate with its headers, and no input that gets a 500 or a traceback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.routing import Route
from starlette.types import Message

from order_api.api import create_app
from order_api.limits import HttpLimits, RateLimiter
from order_api.model import Quote
from tests.conftest import free_port
from tickfan.metrics_orders import api_metrics_endpoint

from .conftest import ScopedLedger, quotes
from .test_api import KEY, auth, order

pytestmark = pytest.mark.anyio

CAP = 16 * 1024
HUGE = 256 * 1024 * 1024  # the Why's body: 256 MiB


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[int]:
    """The app on a real uvicorn server (httptools, as `tickfan api` runs it) on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           access_log=False, http="httptools"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn exited at start"
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 30)
    return int(lines[0].split()[1]), headers, body


async def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_sent(ledger: ScopedLedger) -> None:
    """The Why: a 256 MiB body was read whole before the 16 KiB check. Now the headers alone decide: the 413
    arrives while the client has sent none of the body, and the server closes the connection."""
    u = ledger.user()
    async with served(create_app(ledger, quotes(), jwt_key=KEY, relay=False)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        token = auth(u)["authorization"]
        writer.write(f"POST /v1/orders HTTP/1.1\r\nhost: t\r\nauthorization: {token}\r\n"
                     f"content-type: application/json\r\ncontent-length: {HUGE}\r\n\r\n".encode())
        await writer.drain()
        status, headers, body = await read_response(reader)  # the old code waited here for 256 MiB
        assert status == 413 and orjson.loads(body)["error"]["code"] == "body_too_large"
        assert headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 30) == b""  # closed: the body will not be read
        writer.close()
    assert await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 0


async def test_a_chunked_body_is_cut_at_the_cap_over_a_real_socket(ledger: ScopedLedger) -> None:
    """Without a Content-Length the body is read as it comes and abandoned past the cap: the client streaming
    256 MiB is answered 413 and cut off long before it has sent it all. (The server closes with our unread bytes
    in its buffer, so the kernel may send a reset that overtakes the 413: either ends the upload.)"""
    async with served(create_app(ledger, quotes(), jwt_key=KEY, relay=False)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        token = auth(ledger.user())["authorization"]
        writer.write(f"POST /v1/orders HTTP/1.1\r\nhost: t\r\nauthorization: {token}\r\n"
                     "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".encode())
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
        sent = 0
        answer: asyncio.Task[tuple[int, dict[str, str], bytes]] = asyncio.create_task(read_response(reader))
        with contextlib.suppress(ConnectionError):
            while sent < HUGE and not answer.done():
                writer.write(chunk)
                await writer.drain()
                sent += 64 * 1024
        try:
            status, _, body = await answer
            assert status == 413 and orjson.loads(body)["error"]["code"] == "body_too_large"
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the reset overtook the answer: the connection is gone all the same
        assert sent < HUGE // 4, f"the server let {sent} bytes in before ending the upload"
        writer.close()


async def test_the_app_stops_reading_a_streamed_body_at_the_cap(ledger: ScopedLedger) -> None:
    """At the ASGI level, with a body offered in 64 KiB pieces (64 MiB in all, produced only when asked for):
    the app asks for one piece past the 16 KiB cap and no more, so it never holds more than the cap plus a piece
    (the old code read all 1,024 pieces, 64 MiB, before refusing)."""
    app = create_app(ledger, quotes(), jwt_key=KEY, relay=False)
    piece, pieces = b"x" * 64 * 1024, 1024
    asked = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": piece, "more_body": asked < pieces}

    async def send(message: Message) -> None:
        sent.append(message)

    token = auth(ledger.user())["authorization"].encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/orders", "raw_path": b"/v1/orders", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"t"), (b"authorization", token), (b"transfer-encoding", b"chunked")],
             "server": ("t", 80), "client": ("127.0.0.1", 1)}
    await app(scope, receive, send)
    assert sent[0]["status"] == 413 and asked == 1  # one 64 KiB piece is past the cap: the rest never read
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "body_too_large"


@contextlib.asynccontextmanager
async def api(ledger: ScopedLedger, **kw: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ledger, kw.pop("quotes", None) or quotes(), jwt_key=KEY, relay=False, **kw)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


async def test_each_user_has_a_request_budget_and_refused_requests_count(ledger: ScopedLedger) -> None:
    now = [1000.0]
    app = create_app(ledger, quotes(), jwt_key=KEY, relay=False, limits=HttpLimits(rate=5, window=60),
                     clock=lambda: now[0])
    app.router.routes.append(Route("/metrics", api_metrics_endpoint(app.state.order_service)))  # as `tickfan api`
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        u, other = ledger.user(), ledger.user("other")
        await ledger.deposit(u, 10_000 * 10_000)
        remaining = []
        for i in range(5):  # refused and accepted requests alike use the budget
            r = (await c.post("/v1/orders", content=b"{bad", headers=auth(u)) if i % 2
                 else await c.get("/v1/orders", headers=auth(u)))
            assert r.status_code in (200, 400), r.text
            assert r.headers["x-ratelimit-limit"] == "5"
            remaining.append(int(r.headers["x-ratelimit-remaining"]))
            assert int(r.headers["x-ratelimit-reset"]) > 0
        assert remaining == [4, 3, 2, 1, 0]
        r = await c.post("/v1/orders", json=order(), headers=auth(u))
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert r.headers["retry-after"] == "60" and r.headers["x-ratelimit-remaining"] == "0"
        assert await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 0
        r = await c.get("/v1/orders", headers=auth(other))  # another user's budget is untouched
        assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == "4"
        now[0] += 30
        r = await c.get("/v1/orders", headers=auth(u))
        assert r.status_code == 429 and r.headers["retry-after"] == "30"
        now[0] += 30  # the window has ended
        r = await c.post("/v1/orders", json=order(), headers=auth(u))
        assert r.status_code == 201 and r.headers["x-ratelimit-remaining"] == "4"
        assert "tickfan_api_rate_limited_total 2.0" in (await c.get("/metrics")).text
        assert await ledger.check() == []


async def test_the_default_is_200_requests_a_minute(ledger: ScopedLedger) -> None:
    async with api(ledger) as c:
        r = await c.get("/v1/orders", headers=auth(ledger.user()))
        assert r.headers["x-ratelimit-limit"] == "200" and r.headers["x-ratelimit-remaining"] == "199"


class Broken:
    """A quote source with a bug in it: what an unforeseen error looks like to the client."""

    async def quote(self, symbol: str) -> Quote | None:
        raise ZeroDivisionError("a bug, with a secret in its message")

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        raise ZeroDivisionError("a bug, with a secret in its message")


async def test_no_known_input_gets_a_500(ledger: ScopedLedger) -> None:
    """The Why's inputs (a NUL in idempotency_key or ?status=) and their kin are 4xx with codes, nothing written;
    an unforeseen error is a 500 'internal' that shows neither traceback nor message."""
    async with api(ledger) as c:
        u = ledger.user()
        await ledger.deposit(u, 1_000 * 10_000)
        cases: list[tuple[str, str, Any, int, str]] = [
            ("POST", "/v1/orders", order(idempotency_key="a\x00b"), 422, "invalid_idempotency_key"),
            ("POST", "/v1/orders", order(idempotency_key="\x07bell"), 422, "invalid_idempotency_key"),
            ("POST", "/v1/orders", b'{"symbol":"AAPL","side":"buy","qty":1,"idempotency_key":"\\ud800"}', 400,
             "malformed_json"),
            ("POST", "/v1/orders", order(symbol="AA\x00PL"), 422, "invalid_symbol"),
            ("POST", "/v1/orders", orjson.dumps(order()).replace(b'"qty":1', b'"qty":' + b"9" * 30), 422,
             "invalid_quantity"),
            ("POST", "/v1/orders", orjson.dumps(order()).replace(b'"qty":1', b'"qty":1e400'), 422, "invalid_order"),
            ("POST", "/v1/orders", order(qty="1.0000001"), 422, "invalid_quantity"),
            ("POST", "/v1/orders", order(qty="9" * 30), 422, "invalid_quantity"),
            ("POST", "/v1/orders", order(qty=1.5), 422, "invalid_order"),
            ("POST", "/v1/orders", order(qty=None), 422, "missing_qty"),
            ("POST", "/v1/orders", order(symbol=["AAPL"]), 422, "invalid_order"),
            ("POST", "/v1/orders", [1, 2], 422, "invalid_order"),
            ("POST", "/v1/orders", order(type="limit", limit_price="١٩٠"), 422, "invalid_limit_price"),
            ("POST", "/v1/orders", order(type="limit", limit_price="190.00\n"), 422, "invalid_limit_price"),
            ("POST", "/v1/orders", order(type="limit", limit_price="9" * 5000), 422, "invalid_limit_price"),
            ("POST", "/v1/orders", b"\xff\xfe", 400, "malformed_json"),
            # not UTF-8 inside a string: msgspec raised UnicodeDecodeError, a 500 (found by the fuzz target)
            ("POST", "/v1/orders", b'{"symbol":"AAPL","side":"buy","qty":1,"idempotency_key":"\xd9i"}', 400,
             "malformed_json"),
            ("GET", "/v1/orders?status=%00", None, 400, "invalid_parameter"),
            ("GET", "/v1/orders?status=open", None, 400, "invalid_parameter"),
            ("GET", "/v1/orders?limit=%C2%B2", None, 400, "invalid_parameter"),
            ("GET", "/v1/orders?limit=%D9%A1%D9%A2", None, 400, "invalid_parameter"),
            ("GET", "/v1/orders?limit=" + "9" * 5000, None, 400, "invalid_parameter"),
            ("GET", "/v1/orders?limit=-1", None, 400, "invalid_parameter"),
            ("GET", "/v1/ledger?before=%00", None, 400, "invalid_parameter"),
            ("GET", "/v1/orders/%00", None, 404, "order_not_found"),
        ]
        for method, path, body, status, code in cases:
            content = body if isinstance(body, bytes) else (orjson.dumps(body) if body is not None else None)
            r = await c.request(method, path, content=content, headers=auth(u))
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (path, body, r.text)
        assert await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 0
        assert await ledger.check() == []
    async with api(ledger, quotes=Broken()) as c:
        r = await c.post("/v1/orders", json=order(), headers=auth(u))
        assert r.status_code == 500 and r.json() == {"error": {"code": "internal",
                                                               "message": "internal error; it has been logged"}}
        assert "secret" not in r.text and "Traceback" not in r.text


async def test_every_new_code_is_in_the_openapi_document() -> None:
    from order_api.openapi import openapi_document

    text = orjson.dumps(openapi_document()).decode()
    for code in ("rate_limited", "body_too_large", "outcome_unknown", "quote_stale", "internal", "invalid_parameter",
                 "X-RateLimit-Remaining", "Retry-After"):
        assert code in text, code


def test_the_limiter_forgets_ended_windows_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("order_api.limits.MAX_TRACKED_USERS", 10)
    now = [0.0]
    limiter = RateLimiter(rate=2, window=60, clock=lambda: now[0])
    for i in range(10):
        limiter.hit(f"old-{i}")
    now[0] = 61.0  # every window above has ended: a new user makes room by forgetting them
    assert limiter.hit("new").allowed and limiter.tracked == 1
    for i in range(30):  # all open at once: the oldest half goes rather than the table growing
        limiter.hit(f"u-{i}")
        assert limiter.tracked <= 10
