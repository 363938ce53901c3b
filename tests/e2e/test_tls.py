"""Every link over TLS, the roles least-privileged, in process on loopback with trustme certificates:

ingest --(rediss://, user ingest)--> Redis (TLS only, client certificates, deploy/redis-acl.conf) --(user edge)-->
a fan-out node (wss://, https:// with the order API) ; the order API and the execution worker (user trading)
--> PostgreSQL (private, verify-full, role in tickfan_app) ; the worker --(FIX over mutual TLS, CompID = CN)-->
the market maker. And what the ACL forbids: an edge node cannot publish a fake order update or rewrite a quote.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import redis.exceptions
import websockets

from normalize.replicas.redis import RedisPublisher
from order_api.api import OrderService
from order_api.db import Ledger
from order_api.execution import ExecutionWorker
from order_api.quotes import RedisQuotes
from tests.conftest import TEST_JWT_SECRET, WAIT, Certs, PrivatePostgres, PrivateRedis, eventually, free_port
from tests.fanout.conftest import bump, make_books
from tickfan import trading_cli
from tickfan.node import Node, NodeConfig
from tickfan_proto import stream_pb2 as pb
from venue.marketmaker import BookQuote, MarketMaker, StaticQuoteProvider
from vocab.auth import mint_token
from vocab.keys import bars_channel, bars_key, depth_channel, depth_key, exec_stream, order_channel, quote_key
from vocab.tls import TlsFiles, client_context, server_context

pytestmark = pytest.mark.anyio

ACL_FILE = Path(__file__).resolve().parents[2] / "deploy" / "redis-acl.conf"
USERS = ("ingest", "edge", "trading")
KEY = TEST_JWT_SECRET  # the process-wide verifier (built once) checks the node's WebSocket tokens with it


@pytest.fixture(scope="module")
def tls_redis(certs: Certs) -> Iterator[tuple[PrivateRedis, dict[str, str]]]:
    """A private redis-server: TLS only, client certificates required, the shipped ACL file with its password
    placeholders filled in. Yields the server and each user's rediss:// URL."""
    acl = ACL_FILE.read_text()
    passwords = {u: secrets.token_hex(16) for u in USERS}
    for user, password in passwords.items():
        acl = acl.replace(f">{user.upper()}_PASSWORD", f">{password}")
    with PrivateRedis(certs=certs, client_auth=True, acl=acl) as server:
        yield server, {u: server.tls_url(u, passwords[u], certs.client(u)) for u in USERS}


async def test_each_redis_user_may_do_only_its_part(tls_redis: tuple[PrivateRedis, dict[str, str]],
                                                     certs: Certs) -> None:
    server, urls = tls_redis
    edge, trading, ingest = (aioredis.from_url(urls[u]) for u in ("edge", "trading", "ingest"))
    try:
        assert await edge.ping() and await trading.ping() and await ingest.ping()
        await ingest.hset(quote_key("TEST"), mapping={"bid_price": "189.2500"})
        assert (await edge.hgetall(quote_key("TEST")))[b"bid_price"] == b"189.2500"
        with pytest.raises(redis.exceptions.NoPermissionError):  # a fake fill for someone else's order
            await edge.spublish(order_channel("victim"), b"fake order update")
        with pytest.raises(redis.exceptions.NoPermissionError):  # the price pre-trade checks read
            await edge.hset(quote_key("TEST"), mapping={"bid_price": "0.0001"})
        with pytest.raises(redis.exceptions.NoPermissionError):  # work for the execution workers
            await edge.xadd(exec_stream(0), {"action": "new"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            await trading.hset(quote_key("TEST"), mapping={"bid_price": "0.0001"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            await ingest.spublish(order_channel("victim"), b"fake order update")
        assert await trading.spublish(order_channel("nobody"), b"an update") == 0  # the relay's right (sharded)
        assert (await edge.hgetall(quote_key("TEST")))[b"bid_price"] == b"189.2500"
        # bars: ingest writes the history and publishes, the edge reads and subscribes, never writes
        await ingest.zadd(bars_key("TEST", "1s"), {b"bar": 1})
        await ingest.zremrangebyrank(bars_key("TEST", "1s"), 0, -3)
        await ingest.spublish(bars_channel(0), b"bars")
        assert await edge.zrange(bars_key("TEST", "1s"), -2, -1) == [b"bar"]
        with pytest.raises(redis.exceptions.NoPermissionError):
            await edge.zadd(bars_key("TEST", "1s"), {b"forged": 2})
        # depth: ingest writes the key and publishes, the edge reads it and subscribes, never writes
        await ingest.set(depth_key("TEST"), b"depth")
        await ingest.spublish(depth_channel(0), b"depth")
        assert await edge.get(depth_key("TEST")) == b"depth"
        with pytest.raises(redis.exceptions.NoPermissionError):
            await edge.set(depth_key("TEST"), b"forged")
    finally:
        for c in (edge, trading, ingest):
            await c.aclose()
    anonymous = aioredis.from_url(f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={certs.ca}"
                                  f"&ssl_certfile={certs.client('edge')[0]}&ssl_keyfile={certs.client('edge')[1]}")
    no_certificate = aioredis.from_url(urls["edge"].split("&ssl_certfile")[0])
    plain = aioredis.from_url(f"redis://127.0.0.1:{server.port}/0", socket_timeout=5)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):  # the default user is off
            await anonymous.ping()
        with pytest.raises(redis.exceptions.ConnectionError):
            await no_certificate.ping()
        with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            await plain.ping()
    finally:
        for c in (anonymous, no_certificate, plain):
            await c.aclose()


async def test_an_order_travels_every_link_over_tls(tls_redis: tuple[PrivateRedis, dict[str, str]], certs: Certs,
                                                    private_postgres: PrivatePostgres) -> None:
    _, urls = tls_redis
    trusted = client_context(certs.ca)
    books = make_books()  # AAPL 100.0000 x 100 / 100.0100 x 100
    publisher = RedisPublisher(books, urls["ingest"])
    await publisher.start()
    bump(books, 1, 1_000_000)  # a new version of AAPL (same best bid): the publisher sends what moved
    trading = aioredis.from_url(urls["trading"])
    ledger = await Ledger.connect(await private_postgres.ledger_dsns(("tickfan_e2e_0", "tickfan_e2e_1")),
                                  max_size=4)
    mm = MarketMaker(StaticQuoteProvider({"AAPL": BookQuote(1_000_000, 100, 1_000_100, 100)}), host="127.0.0.1",
                     port=0, tls=server_context(certs.server_cert, certs.server_key, client_ca=certs.ca))
    http, ws = free_port(), free_port()
    node = Node(NodeConfig(from_redis=urls["edge"], orders_redis=urls["edge"], http=("127.0.0.1", http),
                           ws=("127.0.0.1", ws), tls=TlsFiles(certs.server_cert, certs.server_key)))
    service = OrderService(ledger, RedisQuotes(trading), jwt_key=KEY, redis_client=trading, relay=True)
    worker = ExecutionWorker(ledger, trading, fix_port=0, comp_id="TICKFAN",
                             fix_tls=client_context(certs.ca, *certs.client("TICKFAN")))
    running: asyncio.Task[None] | None = None
    try:
        await eventually(lambda: trading.hgetall(quote_key("AAPL")), what="ingest's quote hash in Redis")
        await mm.start()
        worker.fix_port = mm.port
        node.extra_routes = service.routes()
        await node.start()
        await service.start()
        running = asyncio.create_task(worker.run())
        user = f"tls-{uuid.uuid4().hex[:8]}"
        await ledger.deposit(user, 10_000 * 10_000)
        token = mint_token(user, key=KEY)
        async with websockets.connect(f"wss://127.0.0.1:{ws}/v1/stream", ssl=trusted,
                                      additional_headers={"Authorization": f"Bearer {token}"}) as stream:
            await stream.send(pb.ClientMessage(subscribe=pb.Subscribe(symbols=["AAPL"], channels=["quotes", "orders"]))
                              .SerializeToString())
            async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{http}", verify=trusted) as api:
                r = await api.post("/v1/orders", headers={"authorization": f"Bearer {token}"},
                                   json={"symbol": "AAPL", "side": "buy", "qty": 10, "idempotency_key": "t1"})
                assert r.status_code == 201, r.text
            seen: list[str] = []
            quoted = False

            async def filled() -> None:
                nonlocal quoted
                while "filled" not in seen:
                    raw = await stream.recv()
                    msg = pb.ServerMessage.FromString(raw if isinstance(raw, bytes) else raw.encode())
                    kind = msg.WhichOneof("kind")
                    prices = (msg.snapshot.quotes if kind == "snapshot" else msg.quotes.quotes if kind == "quotes"
                              else [])
                    quoted |= any(q.bid_price == 1_000_000 for q in prices)
                    if kind == "order_update":
                        seen.append(msg.order_update.status)

            await asyncio.wait_for(filled(), WAIT)
        assert quoted  # the price came ingest -> Redis -> the edge, over TLS
        assert seen[0] == "accepted" and seen[-1] == "filled"
        assert set(mm.sessions) == {"TICKFAN"}
        # `tickfan trade` over https:// and wss:// with --ca: places a second order and follows it to its fill
        parser = argparse.ArgumentParser()
        trading_cli.add_trade_arguments(parser)
        args = parser.parse_args([user, "buy", "AAPL", "5", "--api", f"https://127.0.0.1:{http}", "--stream",
                                  f"wss://127.0.0.1:{ws}/v1/stream", "--ca", certs.ca])
        assert await trading_cli.trade(args) == 0
        assert await ledger.check([user]) == []
    finally:
        worker.stop()
        if running is not None:
            await running
        await service.close()
        await node.close()
        await mm.stop()
        await ledger.close()
        await trading.aclose()
        await publisher.close()
