"""Log out everywhere: the user's older tokens are refused over HTTP (at once by the API that served it, within the
revocation cache by the others) and their WebSockets are closed through the outbox, Redis and the node's relay;
WebSocket tickets from POST /v1/ws-ticket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from fanout.orders import OrderRelay
from order_api.api import create_app
from order_api.outbox import OutboxRelay
from tests.conftest import PrivateRedis, eventually
from tests.fanout.conftest import client_message, fanout_server, make_books, until
from tickfan_proto import stream_pb2 as pb
from vocab.auth import Verifier, mint_token

from .conftest import ScopedLedger, quotes

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

KEY = "sessions-test-signing-key-of-32-bytes-or-more"
VERIFIER = Verifier(secret=KEY)


@asynccontextmanager
async def api(ledger: ScopedLedger, revocation_cache: float = 1.0) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ledger, quotes(), verifier=VERIFIER, relay=False, revocation_cache=revocation_cache)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_logout_everywhere_refuses_the_older_tokens_over_http(ledger: ScopedLedger) -> None:
    u = ledger.user("leaver")
    old = mint_token(u, key=KEY, now=time.time() - 10)
    async with api(ledger) as here, api(ledger, revocation_cache=0.2) as elsewhere:
        assert (await here.get("/v1/orders", headers=bearer(old))).status_code == 200
        assert (await elsewhere.get("/v1/orders", headers=bearer(old))).status_code == 200  # cached there now
        r = await here.post("/v1/logout-everywhere", headers=bearer(old))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["generation"] == 1 and body["revoked_before"] > time.time() - 1
        r = await here.get("/v1/orders", headers=bearer(old))  # at once on the API that served the logout
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"

        async def refused_elsewhere() -> bool:  # the other API within its revocation cache's life
            return (await elsewhere.get("/v1/orders", headers=bearer(old))).status_code == 401
        await eventually(refused_elsewhere, what="the other API refusing the revoked token")

        fresh = mint_token(u, key=KEY, now=body["revoked_before"])
        assert (await here.get("/v1/orders", headers=bearer(fresh))).status_code == 200
        assert (await here.post("/v1/ws-ticket", headers=bearer(old))).status_code == 401  # no ticket either
        r = await here.post("/v1/logout-everywhere", headers=bearer(fresh))
        assert r.json()["generation"] == 2
    rows = await ledger.pool_for(u).fetch("SELECT payload FROM outbox WHERE user_id = $1 AND topic = 'session'", u)
    assert [pb.ServerMessage.FromString(r["payload"]).WhichOneof("kind") for r in rows] == ["revoked", "revoked"]


async def test_a_ws_ticket_is_issued_to_a_bearer_only(ledger: ScopedLedger) -> None:
    u = ledger.user("ticket")
    token = mint_token(u, key=KEY, ttl=600)
    async with api(ledger) as c:
        assert (await c.post("/v1/ws-ticket")).status_code == 401
        r = await c.post("/v1/ws-ticket", headers=bearer(token))
        assert r.status_code == 200 and r.json()["expires_in"] == 30
    claims, _, expires = VERIFIER.ticket(r.json()["ticket"])
    assert claims.user == u and claims.expires == VERIFIER.claims(token).expires and expires <= time.time() + 31


async def test_logout_everywhere_closes_the_users_older_websockets(ledger: ScopedLedger) -> None:
    """Through the real path: API -> outbox row -> relay -> Redis -> the node's OrderRelay -> close 4003."""
    u = ledger.user("ws-leaver")
    old = mint_token(u, key=KEY, now=time.time() - 10)
    with PrivateRedis() as redis_server:
        client = aioredis.from_url(redis_server.url)
        outbox = OutboxRelay(ledger, client)
        relaying = asyncio.create_task(outbox.run())
        relay = OrderRelay(redis_server.url, reconnect_min=0.05, reconnect_max=0.2)
        try:
            async with (fanout_server(make_books(), verifier=VERIFIER, orders=relay) as server,
                        api(ledger) as http):
                url = server.url
                async with (websockets.connect(url, additional_headers=bearer(old)) as orders_ws,
                            websockets.connect(url, additional_headers=bearer(old)) as prices_ws):
                    await orders_ws.send(client_message(subscribe=pb.Subscribe(channels=["orders"])))
                    await until(orders_ws, "subscribed")
                    await eventually(lambda: relay.users == 1 and u in relay._watched and relay._confirmed,
                                     what="the node listening on the user's channel")
                    r = await http.post("/v1/logout-everywhere", headers=bearer(old))
                    assert r.status_code == 200
                    for ws in (orders_ws, prices_ws):  # with or without the orders channel
                        revoked = await until(ws, "revoked")
                        assert revoked.revoked.revoked_before_ns == r.json()["revoked_before"] * 10**9
                        with pytest.raises(websockets.ConnectionClosed) as closed:
                            await asyncio.wait_for(ws.recv(), 30)
                        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
                    assert server.stats.token_revoked_closes == 2
                # the node remembers: the old token cannot open a new connection there either
                async with websockets.connect(url, additional_headers=bearer(old)) as again:
                    assert (await until(again, "revoked")).revoked.revoked_before_ns
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(again.recv(), 30)
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
                # a token issued after the logout opens a connection that stays
                fresh = mint_token(u, key=KEY, now=r.json()["revoked_before"])
                async with websockets.connect(url, additional_headers=bearer(fresh)) as ws:
                    await ws.send(client_message(ping=pb.Ping(nonce=3)))
                    assert (await until(ws, "pong")).pong.nonce == 3
        finally:
            outbox.stop()
            await relaying
            await client.aclose()
