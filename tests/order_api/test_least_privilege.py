"""The ledger on a private PostgreSQL over TLS (``sslmode=verify-full``, trustme certificates), used by a
least-privilege role (migration 007) while only migrations run as the superuser; and the order API while that
PostgreSQL is stopped and started again (``ledger_unavailable``, nothing lost or doubled)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from order_api.api import create_app
from order_api.db import migrate
from tests.conftest import PrivatePostgres, eventually
from vocab.auth import mint_token

from .conftest import QUOTES, ScopedLedger, quotes

pytestmark = pytest.mark.anyio

KEY = "test-signing-key-of-at-least-32-bytes!"
SHARDS = ("tickfan_tls_0", "tickfan_tls_1")
ROLE = "tickfan_svc"


async def app_dsns(pg: PrivatePostgres) -> list[str]:
    return await pg.ledger_dsns(SHARDS, ROLE)


@pytest.fixture
async def app_ledger(private_postgres: PrivatePostgres) -> AsyncIterator[ScopedLedger]:
    book = await ScopedLedger.connect(await app_dsns(private_postgres), max_size=4)
    assert isinstance(book, ScopedLedger)
    try:
        yield book
    finally:
        await book.close()


async def test_the_services_role_trades_over_verified_tls(app_ledger: ScopedLedger,
                                                          private_postgres: PrivatePostgres) -> None:
    async with app_ledger.pools[0].acquire() as conn:
        who, ssl_on = await conn.fetchrow(
            "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert (who, ssl_on) == (ROLE, True)
    assert await migrate(await app_dsns(private_postgres)) == []  # up to date: the role only reads
    u = app_ledger.user()
    await app_ledger.deposit(u, 100_000 * 10_000)
    from order_api.model import parse_order
    from vocab.quantities import QTY_SCALE as S

    req = parse_order(b'{"symbol": "AAPL", "side": "buy", "qty": 5, "idempotency_key": "k1"}')
    order, created = await app_ledger.place(u, req, QUOTES["AAPL"])
    assert created
    assert await app_ledger.mark_routed(u, order["order_id"]) is not None
    fill = await app_ledger.fill(u, order["order_id"], "E1", 5 * S, 1_900_000)
    assert fill is not None and fill.order["status"] == "filled"
    assert await app_ledger.check() == []


@pytest.mark.parametrize("statement", ["UPDATE journal SET amount = amount * 2",
                                       "DELETE FROM journal",
                                       "TRUNCATE journal"])
async def test_the_services_role_cannot_rewrite_the_journal(app_ledger: ScopedLedger, statement: str) -> None:
    u = app_ledger.user()
    await app_ledger.deposit(u, 10_000)
    async with app_ledger.pools[0].acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    assert await app_ledger.check() == []


async def test_the_superuser_still_changes_no_journal_row(private_postgres: PrivatePostgres,
                                                          app_ledger: ScopedLedger) -> None:
    u = app_ledger.user()
    await app_ledger.deposit(u, 10_000)
    conn = await asyncpg.connect(private_postgres.dsn(SHARDS[0]))
    try:  # migration 001's rules, kept by 007: UPDATE and DELETE do nothing, even for the owner
        assert await conn.execute("UPDATE journal SET amount = amount * 2") == "UPDATE 0"
        assert await conn.execute("DELETE FROM journal") == "DELETE 0"
    finally:
        await conn.close()
    assert await app_ledger.check() == []


async def test_plain_and_unverified_connections_are_refused(private_postgres: PrivatePostgres) -> None:
    dsn = (await app_dsns(private_postgres))[0]
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(dsn.split("?")[0] + "?sslmode=disable")
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):  # a server our CA did not sign
        await asyncpg.connect(private_postgres.dsn(SHARDS[0], ROLE, private_postgres.passwords[ROLE],
                                                   ca=private_postgres.certs.stranger_ca))
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(private_postgres.dsn(SHARDS[0], ROLE, "wrong"))


async def test_ledger_unavailable_while_postgres_is_stopped_then_nothing_lost_or_doubled(
        app_ledger: ScopedLedger, private_postgres: PrivatePostgres) -> None:
    u = app_ledger.user()
    await app_ledger.deposit(u, 100_000 * 10_000)
    auth = {"authorization": f"Bearer {mint_token(u, key=KEY)}"}
    first = {"symbol": "AAPL", "side": "buy", "qty": 1, "idempotency_key": uuid.uuid4().hex}
    second = {**first, "qty": 2, "idempotency_key": uuid.uuid4().hex}
    app = create_app(app_ledger, quotes(), jwt_key=KEY, relay=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        assert (await c.post("/v1/orders", json=first, headers=auth)).status_code == 201
        # in a thread: the loop meanwhile sees the server end its connections, as it would in production
        await asyncio.to_thread(private_postgres.stop)
        try:
            r = await c.post("/v1/orders", json=second, headers=auth)
            assert (r.status_code, r.json()["error"]["code"]) == (503, "ledger_unavailable"), r.text
            r = await c.get("/v1/orders", headers=auth)
            assert (r.status_code, r.json()["error"]["code"]) == (503, "ledger_unavailable"), r.text
        finally:
            await asyncio.to_thread(private_postgres.start)

        async def placed() -> bool:
            r = await c.post("/v1/orders", json=second, headers=auth)
            return r.status_code in (200, 201)

        await eventually(placed, what="the order API answering again after PostgreSQL restarted")
        again = await c.post("/v1/orders", json=second, headers=auth)  # the client's retry with the same key
        assert again.status_code == 200
        orders = (await c.get("/v1/orders", headers=auth)).json()["orders"]
        assert sorted(o["qty"] for o in orders) == ["1", "2"]  # the first kept, the second once
    assert await app_ledger.check() == []
