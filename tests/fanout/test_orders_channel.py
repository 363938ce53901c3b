"""The `orders` channel end to end: a real fan-out server, real WebSocket clients, a real Redis.

The shared Redis (127.0.0.1:6379) carries the happy paths; pub/sub channels are server-wide, so every test uses
user ids with a random suffix. Outages use a private redis-server on a free port, never the shared one; the
failover a Redis Cluster of the test's own (``redis_cluster``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
import websockets
from redis.crc import key_slot

from fanout.config import FanoutConfig
from fanout.orders import OrderRelay
from fanout.server import FanoutServer
from normalize import Books
from tests.conftest import WAIT, LocalCluster, PrivateRedis, eventually, free_port
from tickfan_proto import stream_pb2 as pb
from vocab.auth import Claims, Verifier, mint_token
from vocab.keys import order_channel
from vocab.redisconn import AnyRedis, open_redis

from .conftest import bump, client_message, config, decode, fanout_server, make_books, until, until_pong

SHARED_REDIS = "redis://127.0.0.1:6379/0"
KEY = "orders-channel-test-signing-key-32-bytes!"
pytestmark = pytest.mark.timeout(60)


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def token(user: str, **kw: Any) -> str:
    return mint_token(user, key=KEY, **kw)


def verify(tok: str) -> Claims:
    return Verifier(secret=KEY).claims(tok)


Scenario = Callable[[FanoutServer, Books, str, Any], Awaitable[None]]


def run(scenario: Scenario, redis_url: str = SHARED_REDIS, settings: FanoutConfig | None = None) -> None:
    async def main() -> None:
        books = make_books()
        relay = OrderRelay(redis_url, reconnect_min=0.05, reconnect_max=0.2, confirm_timeout=1.0)
        async with (fanout_server(books, settings, orders=relay, verify=verify) as server,
                    open_redis(redis_url) as publisher):
            await scenario(server, books, server.url, publisher)

    asyncio.run(main())


async def order_updates(ws: Any, n: int) -> list[pb.OrderUpdate]:
    """The next ``n`` order updates (skipping other messages), then a ping barrier: nothing more was sent."""
    got: list[pb.OrderUpdate] = []
    while len(got) < n:
        msg = decode(await asyncio.wait_for(ws.recv(), WAIT))
        if msg.WhichOneof("kind") == "order_update":
            got.append(msg.order_update)
    extra = [m for m in await until_pong(ws) if m.WhichOneof("kind") == "order_update"]
    return got + [m.order_update for m in extra]


SUB_ORDERS = client_message(subscribe=pb.Subscribe(channels=["orders"]))
UNSUB_ORDERS = client_message(unsubscribe=pb.Unsubscribe(channels=["orders"]))


def update(order_id: str, status: str, version: int, reason: str = "") -> bytes:
    return bytes(pb.ServerMessage(order_update=pb.OrderUpdate(
        order_id=order_id, symbol="AAPL", side="buy", type="market", status=status, qty=10,
        version=version, reason=reason)).SerializeToString())


async def subscribe_orders(ws: Any) -> pb.ServerMessage:
    await ws.send(SUB_ORDERS)
    ack = await until(ws, "subscribed")
    assert "orders" in ack.subscribed.channels
    return ack


async def numsub(r: aioredis.Redis, user: str) -> int:
    return int((await r.pubsub_shardnumsub(order_channel(user)))[0][1])


async def numsub_becomes(r: aioredis.Redis, user: str, want: int) -> None:
    async def check() -> bool:
        return await numsub(r, user) == want

    await eventually(check, what=f"PUBSUB SHARDNUMSUB {order_channel(user)} == {want}",
                     state=lambda: numsub(r, user))


def test_each_user_gets_exactly_their_own_updates_in_publish_order() -> None:
    alice, bob = uid("alice"), uid("bob")

    async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
        async with (websockets.connect(f"{url}?token={token(alice)}") as a,
                    websockets.connect(f"{url}?token={token(bob)}") as b,
                    websockets.connect(url) as anon):
            await subscribe_orders(a)
            await subscribe_orders(b)
            await anon.send(client_message(subscribe=pb.Subscribe(symbols=["AAPL"])))
            await until(anon, "snapshot")
            # after the ack, nothing published can be missed: publish at once, interleaved
            sent = [(alice, "a1", "accepted", 1), (bob, "b1", "accepted", 1), (alice, "a1", "routed", 2),
                    (alice, "a2", "accepted", 1), (bob, "b1", "rejected", 2), (alice, "a1", "filled", 3)]
            for user, oid, status, version in sent:
                assert await r.spublish(order_channel(user), update(oid, status, version)) == 1
            got_a, got_b = await asyncio.gather(order_updates(a, 4), order_updates(b, 2))
            got_anon = await order_updates(anon, 0)  # after theirs: anything for anon was written by now
            assert [(u.order_id, u.status) for u in got_a] == [("a1", "accepted"), ("a1", "routed"),
                                                               ("a2", "accepted"), ("a1", "filled")]
            assert [(u.order_id, u.status) for u in got_b] == [("b1", "accepted"), ("b1", "rejected")]
            assert got_anon == []
        assert server.orders is not None and server.orders.stats.delivered == 6

    run(scenario)


def test_header_and_query_tokens_both_work_and_every_connection_gets_the_same_bytes() -> None:
    alice = uid("alice")

    async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
        async with (websockets.connect(url, additional_headers={"Authorization": f"Bearer {token(alice)}"}) as h,
                    websockets.connect(f"{url}?token={token(alice)}") as q,
                    websockets.connect(f"{url}?format=json&token={token(alice)}") as j):
            for ws in (h, q, j):
                await subscribe_orders(ws)
            assert await numsub(r, alice) == 1  # one Redis subscription per user per node, however many connections
            payload = update("o-1", "accepted", 1)
            await r.spublish(order_channel(alice), payload)
            assert await asyncio.wait_for(h.recv(), WAIT) == payload  # the publisher's bytes, unchanged
            assert await asyncio.wait_for(q.recv(), WAIT) == payload
            text = await asyncio.wait_for(j.recv(), WAIT)
            assert isinstance(text, str)
            assert json.loads(text)["orderUpdate"] == {"orderId": "o-1", "symbol": "AAPL", "side": "buy",
                                                       "type": "market", "status": "accepted", "qty": "10",
                                                       "version": "1"}
        assert server.stats.order_frames_sent == 3

    run(scenario)


def test_unauthenticated_orders_subscription_is_refused_and_quotes_still_stream() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
        async with websockets.connect(url) as ws:
            await ws.send(client_message(subscribe=pb.Subscribe(symbols=["AAPL"])))
            assert list((await until(ws, "subscribed")).subscribed.channels) == ["quotes"]
            await until(ws, "snapshot")
            await ws.send(SUB_ORDERS)
            err = decode(await asyncio.wait_for(ws.recv(), WAIT))
            assert err.WhichOneof("kind") == "error" and err.error.code == "unauthenticated"
            # with other channels in the same message: refused as a whole, nothing changes
            await ws.send(client_message(subscribe=pb.Subscribe(symbols=["TSLA"], channels=["quotes", "orders"])))
            assert decode(await asyncio.wait_for(ws.recv(), WAIT)).error.code == "unauthenticated"
            bump(books, 1, 1_000_500)
            server.notify()
            quote = (await until(ws, "quotes")).quotes.quotes[0]
            assert quote.symbol == "AAPL" and quote.bid_price == 1_000_500
            await ws.send(client_message(ping=pb.Ping(nonce=5)))
            assert (await until(ws, "pong")).pong.nonce == 5
        assert server.orders is not None and server.orders.subscribers == 0

    run(scenario)


@pytest.mark.parametrize(("how", "code"), [
    ("query-forged", "invalid_token"), ("header-expired", "token_expired"), ("header-basic", "unauthenticated"),
    ("query-empty", "invalid_token"),
])
def test_a_bad_token_connects_anonymously_and_is_told_at_once(how: str, code: str) -> None:
    user = uid("mallory")
    forged = mint_token(user, key=KEY + "-not-ours")
    expired = token(user, ttl=10, now=time.time() - 60)
    where, kind = how.split("-")

    async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
        value = {"forged": forged, "expired": expired, "empty": "", "basic": "dXNlcjpwYXNz"}[kind]
        if where == "query":
            ws_cm = websockets.connect(f"{url}?token={value}")
        else:
            scheme = "Basic" if kind == "basic" else "Bearer"
            ws_cm = websockets.connect(url, additional_headers={"Authorization": f"{scheme} {value}"})
        async with ws_cm as ws:
            first = decode(await asyncio.wait_for(ws.recv(), WAIT))  # the first frame, before anything is asked
            assert first.WhichOneof("kind") == "error" and first.error.code == code, first
            await ws.send(SUB_ORDERS)
            assert decode(await asyncio.wait_for(ws.recv(), WAIT)).error.code == "unauthenticated"
            await ws.send(client_message(subscribe=pb.Subscribe(symbols=["MSFT"])))
            assert (await until(ws, "snapshot")).snapshot.quotes[0].symbol == "MSFT"  # prices still work
        assert await numsub(r, user) == 0

    run(scenario)


def test_the_last_disconnect_unsubscribes_in_redis() -> None:
    alice = uid("alice")

    async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
        relay = server.orders
        assert relay is not None
        async with websockets.connect(f"{url}?token={token(alice)}") as one:
            await subscribe_orders(one)
            async with websockets.connect(f"{url}?token={token(alice)}") as two:
                await subscribe_orders(two)
                assert await numsub(r, alice) == 1 and relay.subscribers == 2 and relay.users == 1
            await eventually(lambda: relay.subscribers == 1, what="two's disconnect seen by the relay")
            assert await numsub(r, alice) == 1 and relay.users == 1  # one still wants alice's updates
            await r.spublish(order_channel(alice), update("o-1", "accepted", 1))
            assert [u.order_id for u in await order_updates(one, 1)] == ["o-1"]
            await one.send(UNSUB_ORDERS)
            ack = await until(one, "subscribed")
            assert "orders" not in ack.subscribed.channels
            # an authenticated connection still listens on its user's channel, for a revocation; no update reaches it
            assert relay.subscribers == 0 and relay.users == 1 and await numsub(r, alice) == 1
            assert await r.spublish(order_channel(alice), update("o-1", "routed", 2)) == 1
            await eventually(lambda: relay.stats.received >= 2, what="the update read by the relay")
            assert not [m for m in await until_pong(one) if m.WhichOneof("kind") == "order_update"]
            await subscribe_orders(one)  # again: subscribed again
            assert await numsub(r, alice) == 1
        await numsub_becomes(r, alice, 0)  # and the disconnect of the last one unsubscribes
        assert relay.subscribers == 0

    run(scenario)


def test_redis_outage_error_frame_prices_continue_then_recovery() -> None:
    alice, bob = uid("alice"), uid("bob")
    with PrivateRedis() as private:
        async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
            relay = server.orders
            assert relay is not None
            async with websockets.connect(f"{url}?token={token(alice)}") as a:
                await a.send(client_message(subscribe=pb.Subscribe(symbols=["AAPL"], channels=["quotes", "orders"])))
                ack = await until(a, "subscribed")
                assert list(ack.subscribed.channels) == ["quotes", "orders"]
                await until(a, "snapshot")
                await r.spublish(order_channel(alice), update("o-1", "accepted", 1))
                assert (await until(a, "order_update")).order_update.status == "accepted"

                private.stop()  # kill -9 the private Redis
                err = await until(a, "error")
                assert err.error.code == "orders_unavailable"
                bump(books, 1, 1_000_700)
                server.notify()
                assert (await until(a, "quotes")).quotes.quotes[0].bid_price == 1_000_700  # prices go on
                assert not relay.stats.up and relay.stats.outages == 1

                # a subscriber arriving during the outage: acknowledged, and told at once
                async with websockets.connect(f"{url}?token={token(bob)}") as b:
                    await subscribe_orders(b)
                    assert (await until(b, "error")).error.code == "orders_unavailable"

                    private.start()  # the same port: the relay reconnects with backoff and re-subscribes
                    again = await until(a, "subscribed")  # "live again"
                    assert list(again.subscribed.channels) == ["quotes", "orders"]
                    assert "orders" in (await until(b, "subscribed")).subscribed.channels
                    async with aioredis.from_url(private.url) as fresh:  # the old client's connection died
                        await fresh.spublish(order_channel(alice), update("o-1", "filled", 2))
                        await fresh.spublish(order_channel(bob), update("o-2", "accepted", 1))
                    assert (await until(a, "order_update")).order_update.status == "filled"
                    assert (await until(b, "order_update")).order_update.order_id == "o-2"
                    assert relay.stats.up and relay.stats.outages == 1 and relay.users == 2

        run(scenario, private.url)


def test_redis_unreachable_from_the_start_prices_still_served() -> None:
    alice = uid("alice")
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
        async with websockets.connect(f"{url}?token={token(alice)}") as ws:
            await ws.send(client_message(subscribe=pb.Subscribe(symbols=["TSLA"], channels=["quotes", "orders"])))
            assert list((await until(ws, "subscribed")).subscribed.channels) == ["quotes", "orders"]
            assert (await until(ws, "error")).error.code == "orders_unavailable"
            bump(books, 2, 2_000_500)
            server.notify()
            assert (await until(ws, "quotes")).quotes.quotes[0].bid_price == 2_000_500

    run(scenario, dead)


def test_a_paused_client_gets_every_order_update_when_it_reads_again() -> None:
    alice = uid("alice")
    n = 40

    async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        async with websockets.connect(f"{url}?token={token(alice)}", sock=raw, max_queue=1) as ws:
            await subscribe_orders(ws)
            for i in range(n):  # ~3 KB each: far more than the socket buffers hold
                await r.spublish(order_channel(alice), update(f"o-{i}", "accepted", 1, reason="x" * 3000))
            await eventually(lambda: any(c.protocol.order_frames_waiting for c in server._clients.values()),
                             what="the client paused, updates waiting")
            got = await order_updates(ws, n)
            assert [u.order_id for u in got] == [f"o-{i}" for i in range(n)]
        assert server.stats.order_queue_disconnects == 0

    run(scenario, settings=config(write_buffer_high=4096, socket_send_buffer=4096, order_queue_max=100))


def test_a_client_past_the_order_queue_limit_is_disconnected_not_silently_skipped() -> None:
    alice = uid("alice")
    n = 60

    async def scenario(server: FanoutServer, books: Books, url: str, r: aioredis.Redis) -> None:
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        async with (websockets.connect(f"{url}?token={token(alice)}", sock=raw, max_queue=1) as slow,
                    websockets.connect(f"{url}?token={token(alice)}") as good):
            await subscribe_orders(slow)
            await subscribe_orders(good)
            reading = asyncio.create_task(order_updates(good, n))  # this one reads as they come
            for i in range(n):
                await r.spublish(order_channel(alice), update(f"o-{i}", "accepted", 1, reason="x" * 3000))
                await asyncio.sleep(0.005)
            got = await reading  # the reading connection of the same user gets them all
            assert [u.order_id for u in got] == [f"o-{i}" for i in range(n)]
            assert server.stats.order_queue_disconnects == 1 and server.stats.slow_disconnects == 1
            seen = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:  # what reached the slow client, then the end: never a gap followed by more
                    msg = decode(await asyncio.wait_for(slow.recv(), WAIT))
                    if msg.WhichOneof("kind") == "order_update":
                        seen.append(msg.order_update.order_id)
            assert seen == [f"o-{i}" for i in range(len(seen))] and len(seen) < n
        assert server.orders is not None
        await numsub_becomes(r, alice, 0)

    run(scenario, settings=config(write_buffer_high=4096, socket_send_buffer=4096, order_queue_max=5))


def test_on_a_redis_cluster_updates_come_from_each_users_master_and_resume_after_a_failover(
        redis_cluster: LocalCluster) -> None:
    """Three users whose channels live on the three masters: each gets its own updates (SSUBSCRIBE on the owning
    master). The master of one is killed: every orders subscriber is told ``orders_unavailable``, prices go on,
    and once the replica is promoted each is acknowledged again and gets its updates from the new master."""
    masters = redis_cluster.masters()

    def master_of(user: str) -> int:
        slot = key_slot(order_channel(user).encode())
        return next(port for port, ranges in masters.items()
                    if any(int(a) <= slot <= int(b or a) for a, _, b in (r.partition("-") for r in ranges.split())))

    users: dict[int, str] = {}
    while len(users) < len(masters):
        u = uid("u")
        users.setdefault(master_of(u), u)

    async def scenario(server: FanoutServer, books: Books, url: str, r: AnyRedis) -> None:
        relay = server.orders
        assert relay is not None
        conns = [await websockets.connect(f"{url}?token={token(u)}") for u in users.values()]
        try:
            for ws in conns:
                await ws.send(client_message(subscribe=pb.Subscribe(symbols=["AAPL"], channels=["quotes", "orders"])))
                assert list((await until(ws, "subscribed")).subscribed.channels) == ["quotes", "orders"]
            for ws, u in zip(conns, users.values(), strict=True):
                assert await r.spublish(order_channel(u), update(f"{u}-1", "accepted", 1)) == 1
                assert (await until(ws, "order_update")).order_update.order_id == f"{u}-1"

            victim = next(iter(users))
            redis_cluster.kill_master(victim)
            for ws in conns:
                assert (await until(ws, "error")).error.code == "orders_unavailable"
            bump(books, 1, 1_000_700)
            server.notify()
            assert (await until(conns[0], "quotes")).quotes.quotes[0].bid_price == 1_000_700  # prices go on
            for ws in conns:  # live again, on the promoted replica for the victim's user
                assert "orders" in (await until(ws, "subscribed", timeout=60)).subscribed.channels

            for ws, u in zip(conns, users.values(), strict=True):
                async def delivered(u: str = u) -> bool:
                    try:
                        return int(await r.spublish(order_channel(u), update(f"{u}-2", "filled", 2))) == 1
                    except Exception:  # the publisher's client learning the new master
                        return False
                await eventually(delivered, what=f"{u}'s channel subscribed on its master again")
                assert (await until(ws, "order_update")).order_update.order_id == f"{u}-2"
            assert relay.stats.up and relay.stats.outages >= 1
        finally:
            for ws in conns:
                await ws.close()

    run(scenario, redis_cluster.url)
