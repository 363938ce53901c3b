"""Resume across nodes behind one load balancer: two fan-out nodes read one publisher's books from Redis; a
client that was on node A resumes on node B and misses nothing (the history lives in Redis), and trade prints,
their context and the feed's marks cross Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import websockets

from fanout.server import FanoutServer
from ingest.messages import AddOrder, OrderExecuted, Trade
from normalize import Books
from normalize.replicas.redis import RedisBooks, RedisPublisher
from tests.conftest import WAIT, PrivateRedis, directory, eventually
from tickfan_proto import stream_pb2 as pb

from .conftest import config, decode, subscribe
from .test_resume import Received, read_into, resume

SECRET = "one-secret-for-every-node"


@contextlib.asynccontextmanager
async def node(url: str) -> AsyncIterator[FanoutServer]:
    """A fan-out node with no feed, serving the books published to Redis (as ``tickfan node --from-redis``)."""
    books = RedisBooks(url)
    server = FanoutServer(books, config(resume_secret=SECRET, heartbeat_interval=0.1, poll_interval=0.005),
                          remote_history=books.fetch_trades, feed_state=books.feed_state)
    hub = server.hub
    books.watched = lambda: hub.quotes.count + hub.trade_count
    await books.start()
    await server.start()
    try:
        yield server
    finally:
        await server.close()
        await books.close()


def prints(books: Books, n: int) -> None:
    for _ in range(n):
        books.apply(Trade(1, 0, 7, 0, "B", 10, "RSMA", 1_000_000, 1))


def test_resume_on_another_node_sharing_redis_is_complete(private_redis: PrivateRedis) -> None:
    url = private_redis.url

    async def main() -> None:
        books = Books()
        publisher = RedisPublisher(books, url, interval=0.01, feed_state=lambda: "in_sync")
        await publisher.start()
        books.apply_batch([directory(1, "RSMA"), AddOrder(1, 0, 2, 1, "S", 100, "RSMA", 1_000_100)])
        await eventually(lambda: publisher.announced)
        try:
            async with node(url) as a, node(url) as b:
                before = Received()
                async with websockets.connect(a.url) as ws:
                    await ws.send(subscribe("RSMA", channels=("trades",)))
                    reader = asyncio.create_task(read_into(ws, before))
                    await eventually(lambda: before.token and a.hub.trade_count[1] == 1)
                    await asyncio.sleep(0.2)  # node A follows the symbol's partition
                    prints(books, 5)
                    books.apply(OrderExecuted(1, 0, 8, 1, 10, 2))  # a buy lifting the ask
                    await eventually(lambda: len(before.trades.get("RSMA", [])) == 6)
                    seen = len(before.heartbeats)
                    await eventually(lambda: len(before.heartbeats) > seen + 1)  # a token naming all six
                    token = before.token
                    await ws.close()
                    await reader
                assert before.trades["RSMA"] == [1, 2, 3, 4, 5, 6]
                prints(books, 30)  # 7..36 while the client is away
                await eventually(lambda: publisher.trade_cursor == books.trades_total)
                after = Received()
                async with websockets.connect(b.url) as ws:
                    await ws.send(resume(token))
                    reader = asyncio.create_task(read_into(ws, after))
                    await eventually(lambda: after.verdicts)
                    await asyncio.sleep(0.3)
                    prints(books, 4)  # 37..40 live, on node B
                    await eventually(lambda: after.trades.get("RSMA", [0])[-1] == 40)
                    await ws.close()
                    await reader
                (v,) = after.verdicts
                assert (v.symbol, v.verdict, v.epoch_changed) == ("RSMA", "complete", True)
                assert after.trades["RSMA"] == list(range(7, 41))
                assert b.stats.prints_replayed == 30
                # the liveness came from the publisher's marks
                assert after.heartbeats and after.heartbeats[-1].symbols[0].feed_state == "in_sync"
        finally:
            await publisher.close()

    asyncio.run(main())


def test_prints_cross_redis_with_their_context(private_redis: PrivateRedis) -> None:
    url = private_redis.url

    async def main() -> None:
        books = Books()
        publisher = RedisPublisher(books, url, interval=0.01)
        await publisher.start()
        books.apply_batch([directory(1, "RSMA"), AddOrder(1, 0, 2, 1, "B", 100, "RSMA", 1_000_000)])
        try:
            async with node(url) as a:
                await eventually(lambda: a.books.locate_of.get("RSMA") == 1)
                got: list[pb.Trade] = []
                async with websockets.connect(a.url) as ws:
                    await ws.send(subscribe("RSMA", channels=("trades",)))
                    await eventually(lambda: a.hub.trade_count[1] == 1)
                    await asyncio.sleep(0.2)
                    books.apply(OrderExecuted(1, 0, 8, 1, 10, 9))  # the bid hit: a sell
                    while not got:
                        msg = decode(await asyncio.wait_for(ws.recv(), WAIT))
                        got += msg.trades.trades
                (t,) = got
                assert (t.symbol, t.trade_seq, t.aggressor, t.printable, t.price, t.size, t.match_number) == \
                    ("RSMA", 1, "sell", True, 1_000_000, 10, 9)
                assert t.seq == int(books.seq[1])
        finally:
            await publisher.close()

    asyncio.run(main())
