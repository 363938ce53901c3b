"""``POST /v1/dev/token`` (issue 12): a short-lived token for the demo's users, only when the server signs with the
development key; never for another user, never for a foreign page, rate limited like every request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from order_api.api import create_app
from order_api.devtoken import DevTokens
from order_api.limits import HttpLimits
from vocab.auth import Verifier, mint_token

from .conftest import ScopedLedger, quotes

pytestmark = pytest.mark.anyio
KEY = "development-key-of-this-machine-32+bytes"
OWN = "http://127.0.0.1:8000"


@asynccontextmanager
async def api(ledger: ScopedLedger, dev: DevTokens | None, rate: int = 100) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ledger, quotes(), verifier=Verifier(secret=KEY), relay=False, dev_tokens=dev,
                     limits=HttpLimits(rate=rate), ledger_check_interval=0, allowed_origins=[OWN])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


async def test_a_demo_user_gets_a_short_lived_token_the_api_accepts(ledger: ScopedLedger) -> None:
    alice = ledger.user("alice")
    await ledger.deposit(alice, 1_000 * 10_000)
    async with api(ledger, DevTokens(KEY, frozenset({alice}))) as c:
        r = await c.post("/v1/dev/token", json={"user": alice}, headers={"Origin": OWN})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user_id"] == alice and body["token_type"] == "Bearer" and body["expires_in"] == 900
        assert r.headers["access-control-allow-origin"] == OWN
        claims = Verifier(secret=KEY).claims(body["token"])
        assert claims.user == alice and claims.issued is not None and claims.expires - claims.issued == 900
        portfolio = await c.get("/v1/portfolio", headers={"authorization": f"Bearer {body['token']}"})
        assert portfolio.status_code == 200 and portfolio.json()["user_id"] == alice


async def test_only_listed_users_with_an_account_and_only_from_allowed_pages(ledger: ScopedLedger) -> None:
    alice, bob = ledger.user("alice"), ledger.user("bob")  # bob is listed but has no account
    await ledger.deposit(alice, 1_000 * 10_000)
    async with api(ledger, DevTokens(KEY, frozenset({alice, bob}))) as c:
        for body, status, code in (
            ({"user": "mallory"}, 403, "user_not_allowed"),
            ({"user": bob}, 404, "unknown_user"),
            ({"user": alice, "admin": True}, 400, "invalid_body"),
            ({"who": alice}, 400, "invalid_body"),
        ):
            r = await c.post("/v1/dev/token", json=body)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
            assert "token" not in r.json()
        foreign = await c.post("/v1/dev/token", json={"user": alice}, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
        assert "token" not in foreign.text


async def test_without_the_development_key_there_is_no_such_route(ledger: ScopedLedger) -> None:
    alice = ledger.user("alice")
    await ledger.deposit(alice, 1_000 * 10_000)
    async with api(ledger, None) as c:
        r = await c.post("/v1/dev/token", json={"user": alice})
        assert r.status_code == 404


async def test_dev_tokens_are_rate_limited_per_address(ledger: ScopedLedger) -> None:
    alice = ledger.user("alice")
    await ledger.deposit(alice, 1_000 * 10_000)
    async with api(ledger, DevTokens(KEY, frozenset({alice})), rate=2) as c:
        answers = [await c.post("/v1/dev/token", json={"user": alice}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json()["error"]["code"] == "rate_limited" and "retry-after" in answers[2].headers
        # a user's own budget is not the address's
        own = await c.get("/v1/portfolio", headers={"authorization": f"Bearer {mint_token(alice, key=KEY)}"})
        assert own.status_code == 200
