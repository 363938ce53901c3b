"""A WebSocket lives as long as its token: closed (4001) when it expires, kept open by a Refresh; single-use
tickets; credentials in the upgrade's query never reach a log line."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from fanout.protocol import CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_REVOKED, ClientProtocol, parse_upgrade
from tests.conftest import WAIT, eventually
from tickfan_proto import stream_pb2 as pb
from vocab.auth import Claims, Verifier, mint_token

from .conftest import client_message, fanout_server, make_books, until

KEY = "token-lifetime-test-signing-key-32-bytes!"
VERIFIER = Verifier(secret=KEY)
pytestmark = pytest.mark.timeout(60)


def refresh(token: str) -> bytes:
    return client_message(refresh=pb.Refresh(token=token))


async def closed_with(ws: websockets.ClientConnection) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


# ---------------------------------------------------------------- the pure protocol


def test_the_protocol_knows_its_tokens_expiry_and_its_refresh() -> None:
    p = ClientProtocol({"AAPL": 1}.get, verify=VERIFIER.claims)
    now = time.time()
    p.open(f"Bearer {mint_token('alice', key=KEY, ttl=60, now=now)}")
    deadline = p.next_deadline()
    assert p.user == "alice" and deadline == int(now) + 60
    assert p.tick(deadline - 1).close is None
    reply = p.receive(refresh(mint_token("alice", key=KEY, ttl=600, now=now)), 1.0)
    assert reply.messages[0].refreshed.expires_at_ns == (int(now) + 600) * 10**9
    assert p.next_deadline() == int(now) + 600 and p.tick(deadline + 1).close is None
    for token, code in [(mint_token("bob", key=KEY), "wrong_user"), ("garbage", "invalid_token"),
                        (mint_token("alice", key=KEY, ttl=10, now=now - 100), "token_expired")]:
        reply = p.receive(refresh(token), 2.0)
        assert reply.messages[0].error.code == code and p.next_deadline() == int(now) + 600  # the old one counts
    reply = p.tick(int(now) + 600)
    assert reply.close == (CLOSE_TOKEN_EXPIRED, "token expired") and reply.messages[0].error.code == "token_expired"
    assert p.next_deadline() is None and p.tick(int(now) + 700) == type(reply)()


def test_anonymous_connections_never_expire_and_cannot_refresh() -> None:
    p = ClientProtocol({"AAPL": 1}.get, verify=VERIFIER.claims)
    p.open()
    assert p.next_deadline() is None and p.tick(1e12).close is None
    assert p.receive(refresh(mint_token("alice", key=KEY)), 1.0).messages[0].error.code == "unauthenticated"
    assert p.revoke(1e12).close is None


def test_revoke_closes_only_connections_with_older_tokens() -> None:
    now = time.time()
    p = ClientProtocol({"AAPL": 1}.get, verify=VERIFIER.claims)
    p.open(None, mint_token("alice", key=KEY, now=now))
    assert p.revoke(int(now)).close is None  # issued at the revocation time: newer, stays
    reply = p.revoke(int(now) + 1)
    assert reply.close == (CLOSE_TOKEN_REVOKED, "token revoked") and reply.messages[0].WhichOneof("kind") == "revoked"


def test_refresh_in_json_mode() -> None:
    p = ClientProtocol({"AAPL": 1}.get, verify=VERIFIER.claims, json_mode=True)
    p.open(f"Bearer {mint_token('alice', key=KEY, ttl=60)}")
    reply = p.receive(json.dumps({"refresh": {"token": mint_token("alice", key=KEY, ttl=120)}}), 1.0)
    assert reply.messages[0].WhichOneof("kind") == "refreshed"


def test_the_upgrade_takes_a_ticket() -> None:
    upgrade = parse_upgrade("/v1/stream?ticket=abc&format=json", "/v1/stream")
    assert upgrade is not None and upgrade.ticket == "abc" and upgrade.token is None and upgrade.json_mode


# ---------------------------------------------------------------- over real sockets


def test_an_expired_token_closes_its_websocket_and_a_refresh_keeps_another_open() -> None:
    async def main() -> None:
        async with fanout_server(make_books(), verifier=VERIFIER) as server:
            short = mint_token("alice", key=KEY, ttl=2)
            expires = VERIFIER.claims(short).expires
            async with (websockets.connect(server.url, additional_headers={"Authorization": f"Bearer {short}"})
                        as lapsing, websockets.connect(f"{server.url}?format=json",
                                                       additional_headers={"Authorization": f"Bearer {short}"})
                        as refreshed):
                await refreshed.send(json.dumps({"refresh": {"token": mint_token("alice", key=KEY, ttl=600)}}))
                assert json.loads(await asyncio.wait_for(refreshed.recv(), WAIT))["refreshed"]["expiresAtNs"]
                assert await closed_with(lapsing) == CLOSE_TOKEN_EXPIRED
                assert time.time() >= expires - 1
                await eventually(lambda: time.time() > expires + 1, what="past the first token's expiry")
                await refreshed.send(json.dumps({"ping": {"nonce": "7"}}))
                while "pong" not in (message := json.loads(await asyncio.wait_for(refreshed.recv(), WAIT))):
                    assert "error" not in message, message
                assert server.stats.token_expired_closes == 1

    asyncio.run(main())


def test_a_ticket_opens_one_connection_only() -> None:
    async def main() -> None:
        async with fanout_server(make_books(), verifier=VERIFIER) as server:
            ticket = VERIFIER.mint_ticket(VERIFIER.claims(mint_token("alice", key=KEY, ttl=600)))
            async with websockets.connect(f"{server.url}?ticket={ticket}") as first:
                await first.send(client_message(subscribe=pb.Subscribe(channels=["orders"])))
                error = await until(first, "error")
                assert error.error.code == "orders_unavailable"  # authenticated: only this node has no Redis
            async with websockets.connect(f"{server.url}?ticket={ticket}") as again:
                error = await until(again, "error")
                assert error.error.code == "ticket_used"
            assert server.stats.tickets_redeemed == 1 and server.stats.tickets_refused == 1

    asyncio.run(main())


def test_tokens_and_tickets_in_the_upgrade_query_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    token = mint_token("alice", key=KEY, ttl=600)
    ticket = VERIFIER.mint_ticket(Claims("alice", time.time() + 600, time.time()))
    caplog.set_level(1)  # everything, picows' own level-9 debugging included

    async def main() -> None:
        async with fanout_server(make_books(), verifier=VERIFIER) as server:
            for query in (f"token={token}", f"ticket={ticket}", f"token={token}x"):
                async with websockets.connect(f"{server.url}?{query}") as ws:
                    await ws.send(client_message(ping=pb.Ping(nonce=1)))
                    await until(ws, "pong")

    asyncio.run(main())
    assert any(r.name.startswith("picows") for r in caplog.records)  # the logs were captured at all
    # the server's side: picows, our own loggers (the test's websockets client logs its own request line)
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client"))
    assert token not in logged and ticket not in logged and token[-20:] not in logged
