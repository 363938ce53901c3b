"""A commit whose answer is lost: ``503 outcome_unknown``, and the retry with the same key finds the order.

Real PostgreSQL behind a tiny TCP proxy of our own (bytes forwarded both ways, nothing parsed): armed, it lets
the next request through to the server and then drops the connection instead of forwarding the answer, which
is exactly "the connection was lost after COMMIT was sent, before its answer".
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from order_api.api import create_app
from order_api.db import Ledger
from tests.conftest import eventually

from .conftest import TEST_DSNS, ScopedLedger, quotes
from .test_api import KEY, auth, order

pytestmark = pytest.mark.anyio


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL. ``arm(pattern)``: the next bytes a client sends (that contain
    ``pattern``) reach the server, and its answer is thrown away with both connections. ``refuse``: new
    connections are closed at once (the server unreachable, so nothing can be sent)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.armed = False
        self.pattern = b""  # armed: cut only after client bytes containing this (b"COMMIT": the commit itself)
        self.refuse = False
        self.cuts = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> CuttingProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def arm(self, pattern: bytes = b"") -> None:
        self.armed, self.pattern = True, pattern

    async def _client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        if self.refuse:
            cw.close()
            return
        sr, sw = await asyncio.open_connection(*self.upstream)
        cut = asyncio.Event()  # set when this connection carried the armed request: drop the next answer

        async def up() -> None:
            while data := await cr.read(65536):
                if self.armed and self.pattern in data:
                    self.armed = False
                    cut.set()
                sw.write(data)
                await sw.drain()

        async def down() -> None:
            while data := await sr.read(65536):
                if cut.is_set():
                    self.cuts += 1
                    return  # the answer (the commit's result) never reaches the client
                cw.write(data)
                await cw.drain()

        tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
                self._tasks.discard(t)
            for w in (cw, sw):
                w.close()


@contextlib.asynccontextmanager
async def through_proxy() -> AsyncIterator[tuple[CuttingProxy, Ledger]]:
    proxy = await CuttingProxy(("127.0.0.1", 5432)).start()
    dsns = [dsn.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") for dsn in TEST_DSNS]
    # one connection per shard: the warm-up prepares the placement statement on the very connection that is cut
    ledger = await Ledger.connect(dsns, min_size=1, max_size=1)
    try:
        yield proxy, ledger
    finally:
        await ledger.close()
        await proxy.close()


async def test_a_commit_whose_answer_is_lost_is_outcome_unknown_and_the_retry_returns_the_order(
        ledger: ScopedLedger) -> None:
    """The Why: the lost answer was reported as "503 ledger_unavailable, nothing was written", so a client that
    retried with a new key placed the order twice. Now: 503 outcome_unknown, and the same key finds the order."""
    u = ledger.user()
    await ledger.deposit(u, 10_000 * 10_000)
    async with through_proxy() as (proxy, proxied):
        app = create_app(proxied, quotes(), jwt_key=KEY, relay=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            warm = await c.post("/v1/orders", json=order(), headers=auth(u))
            assert warm.status_code == 201, warm.text

            body = order(idempotency_key="lost-answer")
            proxy.arm()
            r = await c.post("/v1/orders", json=body, headers=auth(u))
            assert proxy.cuts == 1
            assert r.status_code == 503 and r.json()["error"]["code"] == "outcome_unknown", r.text
            assert "the same idempotency_key" in r.json()["error"]["message"]
            pool = ledger.pool_for(u)
            placed = await pool.fetchval(
                "SELECT order_id FROM orders WHERE user_id = $1 AND idempotency_key = 'lost-answer'", u)
            assert placed is not None  # it was committed: "nothing was written" would have been a lie

            async def retried() -> bool:
                nonlocal r
                r = await c.post("/v1/orders", json=body, headers=auth(u))
                return r.status_code != 503
            await eventually(retried, what="the retry with the same key answered")
            assert r.status_code == 200 and r.json()["order_id"] == str(placed), r.text
    assert await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 2
    assert await ledger.check() == []


async def test_a_ledger_that_cannot_be_reached_is_unavailable_and_nothing_was_written(ledger: ScopedLedger) -> None:
    """Failing before anything was sent stays "503 ledger_unavailable; nothing was written"."""
    u = ledger.user()
    await ledger.deposit(u, 10_000 * 10_000)
    proxy = await CuttingProxy(("127.0.0.1", 5432)).start()
    proxy.refuse = True
    dsns = [dsn.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") for dsn in TEST_DSNS]
    unreachable = await Ledger.connect(dsns, min_size=0, max_size=1)  # connects on first use
    try:
        app = create_app(unreachable, quotes(), jwt_key=KEY, relay=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            r = await c.post("/v1/orders", json=order(), headers=auth(u))
        assert r.status_code == 503 and r.json()["error"]["code"] == "ledger_unavailable", r.text
        assert "nothing was written" in r.json()["error"]["message"]
    finally:
        await unreachable.close()
        await proxy.close()
    assert await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 0


@pytest.mark.parametrize("cut_at,code,cancelled", [(b"COMMIT", "outcome_unknown", True),
                                                    (b"", "ledger_unavailable", False)])
async def test_a_cancel_cut_at_its_commit_is_outcome_unknown_and_before_it_nothing_was_written(
        ledger: ScopedLedger, cut_at: bytes, code: str, cancelled: bool) -> None:
    """A cancel is a transaction of several statements: cut at its COMMIT, it may stand (here it did); cut at its
    first statement, it was rolled back and the order is still open."""
    u = ledger.user()
    await ledger.deposit(u, 10_000 * 10_000)
    async with through_proxy() as (proxy, proxied):
        app = create_app(proxied, quotes(), jwt_key=KEY, relay=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            placed = (await c.post("/v1/orders", json=order(), headers=auth(u))).json()
            proxy.arm(cut_at)
            r = await c.delete(f"/v1/orders/{placed['order_id']}", headers=auth(u))
            assert proxy.cuts == 1
            assert r.status_code == 503 and r.json()["error"]["code"] == code, r.text
    status = await ledger.pool_for(u).fetchval("SELECT status FROM orders WHERE order_id = $1",
                                               uuid.UUID(placed["order_id"]))
    assert status == ("cancelled" if cancelled else "accepted")
    assert await ledger.check() == []
