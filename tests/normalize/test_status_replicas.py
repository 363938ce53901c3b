"""Trading status crosses every mode quotes cross: shared memory (partition writers, a reader) and Redis (the
publisher's hashes and channels, a ``RedisBooks`` reader, the order API's quote source)."""

from __future__ import annotations

import numpy as np
import pytest
import redis.asyncio as aioredis

from fanout.hub import Hub, Subscriber
from ingest import messages as im
from normalize import MAX_LOCATES, Books
from normalize.replicas.redis import RedisBooks, RedisPublisher
from normalize.replicas.shm import BookView, SharedBookState, ShmPublisher
from normalize.status import MarketStatusView, SymbolStatusView, read_status
from order_api.quotes import RedisQuotes
from tests.conftest import PrivateRedis, directory, eventually
from tickfan_proto import stream_pb2 as pb

pytestmark = pytest.mark.anyio


def test_shared_memory_carries_symbol_and_market_status() -> None:
    state = SharedBookState.create()
    try:
        writers = [ShmPublisher(state, 0), ShmPublisher(state, 1)]
        writers[0].apply_batch([directory(1, "TSLA")])
        writers[1].apply_batch([directory(2, "NVDA")])
        view = BookView(state)
        view.sync()
        assert view.status_since(0)[0] == []
        for w in writers:  # every partition applies the market's messages
            w.apply_batch([im.SystemEvent(0, 0, 5, "Q")])
        writers[0].apply_batch([im.TradingAction(1, 0, 6, "TSLA", "P", " ", "LUDP"),
                                im.LuldAuctionCollar(1, 0, 6, "TSLA", 100, 105, 95, 0)])
        writers[1].apply_batch([im.RegSho(2, 0, 7, "NVDA", "1")])
        view.sync()
        for loc, w in ((1, writers[0]), (2, writers[1])):
            assert read_status(view, view.symbol_of, loc) == read_status(w.books, w.books.symbol_of, loc)
        assert view.halted[1] and view.trading_state[1] == ord("P")
        market = MarketStatusView.of(view.market)
        assert market.market_open and market.system_event == "Q"
        events, _, lost = view.status_since(0)
        # states, not events: one per symbol that moved (its version says it covers two for TSLA) and the market
        assert lost == 0 and [loc for loc, _ in events] == [0, 1, 2]
        tsla = events[1][1]
        assert isinstance(tsla, SymbolStatusView) and tsla.version == 2 and tsla.luld_upper_price == 105
        view.sync()
        assert view.status_since(0)[0] == []
        # the fan-out over the reader: a status subscriber gets the change at the next flush
        hub = Hub(view)
        sub = Subscriber(1)
        hub.subscribe(sub, "status", [1])
        hub.flush(0)
        writers[0].apply_batch([im.TradingAction(1, 0, 8, "TSLA", "T", " ", "")])
        view.sync()
        (frame,) = [f for s, frames in hub.flush(0) for f in frames if s is sub]
        assert isinstance(frame, bytes)
        sent = pb.ServerMessage.FromString(frame).status.symbols
        assert [(s.symbol, s.trading_state, s.version) for s in sent] == [("TSLA", "T", 3)]
    finally:
        state.close()


async def test_redis_carries_status_to_a_reader_and_to_the_order_api(private_redis: PrivateRedis) -> None:
    url = private_redis.url
    books = Books()
    pub = RedisPublisher(books, url)
    watched = np.zeros(MAX_LOCATES, np.int32)
    reader = RedisBooks(url, watched=lambda: watched)
    client = aioredis.from_url(url)
    quotes = RedisQuotes(client, max_age=0)
    try:
        books.apply_batch([directory(3, "RPLA"), im.AddOrder(3, 0, 4, 1, "B", 100, "RPLA", 1_000_000),
                           im.SystemEvent(0, 0, 5, "Q"), im.TradingAction(3, 0, 6, "RPLA", "P", " ", "LUDP")])
        await pub.publish_once()
        q = await quotes.quote("RPLA")
        assert q is not None and q.market_open and q.halted and (q.trading_state, q.trading_reason) == ("P", "LUDP")
        await reader.start()
        watched[3] = 1  # a client subscribes: the reader seeds the symbol's status from its hash
        await eventually(lambda: reader.trading_state[3] == ord("P"), what="the status seeded from Redis")
        assert MarketStatusView.of(reader.market).market_open
        reader.status_since(0)
        books.apply_batch([im.TradingAction(3, 0, 7, "RPLA", "T", " ", ""), im.SystemEvent(0, 0, 8, "M")])
        await pub.publish_once()
        await eventually(lambda: reader.trading_state[3] == ord("T") and reader.market[1] == ord("M"),
                         what="the stream's status applied")
        events, _, _ = reader.status_since(0)
        assert {loc for loc, _ in events} == {0, 3}
        q = await quotes.quote("RPLA")
        assert q is not None and q.market_open is False and not q.halted
    finally:
        await reader.close()
        await pub.close()
        await client.aclose()
