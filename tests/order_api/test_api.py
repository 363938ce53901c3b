"""The order API over HTTP (ASGI in process, real PostgreSQL): every error path has its status and code."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from order_api.api import create_app
from vocab.auth import mint_token

from .conftest import ScopedLedger, quotes

pytestmark = pytest.mark.anyio

KEY = "test-signing-key-of-at-least-32-bytes!"


@asynccontextmanager
async def api(ledger: ScopedLedger) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ledger, quotes(), jwt_key=KEY, relay=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


def auth(who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(who, key=KEY)}"}


def order(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "qty": 1, "idempotency_key": uuid.uuid4().hex}
    body.update(kw)
    return body


async def test_place_get_list_cancel_portfolio_ledger(ledger: ScopedLedger) -> None:
    async with api(ledger) as c:
        u = ledger.user()
        await ledger.deposit(u, 100_000 * 10_000)
        r = await c.post("/v1/orders", json=order(qty=3, type="limit", limit_price="189.50"), headers=auth(u))
        assert r.status_code == 201, r.text
        o = r.json()
        assert o["status"] == "accepted" and o["limit_price"] == "189.5000" and o["qty"] == "3"
        r = await c.get(f"/v1/orders/{o['order_id']}", headers=auth(u))
        assert r.status_code == 200 and r.json()["order_id"] == o["order_id"]
        r = await c.get("/v1/orders", headers=auth(u))
        assert [x["order_id"] for x in r.json()["orders"]] == [o["order_id"]]
        r = await c.get("/v1/portfolio", headers=auth(u))
        p = r.json()
        assert p["cash_held"] == "568.5000" and p["cash"] == "99431.5000" and p["holdings"] == []
        r = await c.delete(f"/v1/orders/{o['order_id']}", headers=auth(u))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = await c.get("/v1/ledger", headers=auth(u))
        kinds = [e["kind"] for e in r.json()["entries"]]
        assert kinds == ["release", "release", "hold", "hold", "deposit"]
        r = await c.get("/openapi.json")
        assert r.status_code == 200 and "/v1/orders" in r.json()["paths"]
        assert await ledger.check() == []


async def test_every_refusal_is_a_4xx_with_a_code_and_writes_nothing(ledger: ScopedLedger) -> None:
    async with api(ledger) as c:
        u, other = ledger.user(), ledger.user("other")
        await ledger.deposit(u, 1_000 * 10_000)
        await ledger.deposit(other, 1_000 * 10_000)
        theirs = (await c.post("/v1/orders", json=order(), headers=auth(other))).json()
        cases: list[tuple[str, str, Any, int, str]] = [
            ("POST", "/v1/orders", b"{not json", 400, "malformed_json"),
            ("POST", "/v1/orders", order(qty=0), 422, "invalid_quantity"),
            ("POST", "/v1/orders", order(qty=-5), 422, "invalid_quantity"),
            ("POST", "/v1/orders", order(qty=1.5), 422, "invalid_order"),
            ("POST", "/v1/orders", order(side="hold"), 422, "invalid_order"),
            ("POST", "/v1/orders", order(extra=1), 422, "invalid_order"),
            ("POST", "/v1/orders", order(symbol="ZZZZ"), 422, "unknown_symbol"),
            ("POST", "/v1/orders", order(symbol="aa pl"), 422, "invalid_symbol"),
            ("POST", "/v1/orders", order(symbol="HALT"), 422, "symbol_halted"),
            ("POST", "/v1/orders", order(type="limit", limit_price="150.00"), 422, "limit_off_collar"),
            ("POST", "/v1/orders", order(type="limit", limit_price="1.23456"), 422, "invalid_limit_price"),
            ("POST", "/v1/orders", order(type="limit"), 422, "missing_limit_price"),
            ("POST", "/v1/orders", order(limit_price="190"), 422, "unexpected_limit_price"),
            ("POST", "/v1/orders", order(qty=100), 422, "insufficient_funds"),
            ("POST", "/v1/orders", order(side="sell"), 422, "insufficient_shares"),
            ("POST", "/v1/orders", order(idempotency_key=""), 422, "invalid_idempotency_key"),
            ("POST", "/v1/orders", b"x" * 20_000, 413, "body_too_large"),
            ("DELETE", f"/v1/orders/{theirs['order_id']}", None, 404, "order_not_found"),
            ("GET", f"/v1/orders/{theirs['order_id']}", None, 404, "order_not_found"),
            ("GET", "/v1/orders/not-a-uuid", None, 404, "order_not_found"),
            ("GET", "/v1/orders?limit=0", None, 400, "invalid_parameter"),
        ]
        pool = ledger.pool_for(u)
        before = await pool.fetchval("SELECT count(*) FROM journal WHERE user_id = $1", u)
        for method, path, body, status, code in cases:
            content = body if isinstance(body, bytes) else (orjson.dumps(body) if body is not None else None)
            r = await c.request(method, path, content=content, headers=auth(u))
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (path, body, r.text)
        assert await pool.fetchval("SELECT count(*) FROM journal WHERE user_id = $1", u) == before
        assert await pool.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 0
        assert (await c.get(f"/v1/orders/{theirs['order_id']}", headers=auth(other))).status_code == 200
        assert await ledger.check() == []


async def test_authentication_is_required_and_checked(ledger: ScopedLedger) -> None:
    async with api(ledger) as c:
        r = await c.get("/v1/portfolio")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        r = await c.get("/v1/portfolio", headers={"authorization": "Basic abc"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        forged = mint_token("x", key="another-signing-key-of-32-bytes-or-more")
        r = await c.get("/v1/portfolio", headers={"authorization": f"Bearer {forged}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        old = mint_token("x", key=KEY, ttl=10, now=1_000_000)
        r = await c.get("/v1/portfolio", headers={"authorization": f"Bearer {old}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"


async def test_idempotent_post_returns_the_first_order_and_conflicts_on_a_new_body(ledger: ScopedLedger) -> None:
    async with api(ledger) as c:
        u = ledger.user()
        await ledger.deposit(u, 10_000 * 10_000)
        body = order(idempotency_key="retry-me")
        first = await c.post("/v1/orders", json=body, headers=auth(u))
        second = await c.post("/v1/orders", json=body, headers=auth(u))
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["order_id"] == second.json()["order_id"]
        r = await c.post("/v1/orders", json={**body, "qty": 2}, headers=auth(u))
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict"
