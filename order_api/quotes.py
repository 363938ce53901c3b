"""Where pre-trade checks and the portfolio read current prices: the snapshot hashes ``quote:{SYMBOL}`` that
ingest keeps in Redis for internal services (see normalize/replicas/redis.py), the books of this process, or
a fixed table. Hashes and books are read through the quote view (``normalize.quote``).

A quote's ``age`` is how long ago it was known current: for Redis, the publisher's last round with changes
(``vocab.keys.QUOTES_LIVE``, read in the same round trip as the hash) plus the time since this process read it.
Pre-trade checks refuse a market order on a quote older than ``Rules.max_quote_age`` (``quote_stale``), so a
dead feed (its hashes frozen in Redis) cannot price one. Each quote carries the feed's market hours
(``Quote.market_open``): from the books' market status, or from Redis' ``tickfan:market`` hash read in the same
round trip; a feed that has not said (no hash) counts as closed. When Redis is down, the last quote this process read
of a symbol still serves, with its age growing: within the limit the order goes on, past it ``quote_stale``; the
portfolio (``quotes``) is priced the same way, each price with its age, so a dead feed or a dead Redis shows as old
prices (``Quote.is_stale``), never as an error."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from normalize.quote import QuoteView, read_quote
from normalize.source import BookSource
from normalize.status import MarketStatusView
from order_api.model import Quote
from vocab.keys import MARKET_STATUS, QUOTES_LIVE, quote_key
from vocab.redisconn import UNAVAILABLE, AnyRedis


class QuoteSource(Protocol):
    async def quote(self, symbol: str) -> Quote | None: ...

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]: ...


def quote_from_hash(raw: Mapping[Any, Any], market: Mapping[Any, Any] | None = None) -> Quote | None:
    """A ``quote:{SYMBOL}`` hash (bytes or str keys) as a Quote, with the market's hours from the ``tickfan:market``
    hash (missing or empty: the feed has not opened the market); None for a symbol that has none."""
    if not raw:
        return None
    status = MarketStatusView.parse(market or {})
    return Quote.of(QuoteView.parse(raw), market_open=status.market_open, market_phase=status.phase,
                    market_event=status.system_event)


class RedisQuotes:
    """Quotes read from Redis, each symbol's kept for ``max_age`` seconds.

    Pre-trade checks read the quote of every order; a busy symbol's orders within ``max_age`` share one read
    (a Redis round trip was a tenth of a placement's CPU). Ingest itself publishes a symbol's hash at most
    every few milliseconds, and a buy is held at the collar above the ask, so a quote this young is as good
    for the checks as a fresh one. ``max_age=0`` reads every time (the last quote read is still held, for when
    Redis is down). ``clock`` (monotonic) and ``wall`` (Unix seconds) are for tests. ``client`` may be a Redis
    Cluster's (``vocab.redisconn.open_redis``): each read is a non-transactional pipeline, split per node."""

    def __init__(self, client: AnyRedis, *, max_age: float = 0.05,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.max_age = max_age
        self.clock, self.wall = clock, wall
        # symbol -> (when read, the quote with its age at that moment)
        self._cache: dict[str, tuple[float, Quote | None]] = {}
        self.served_held = 0  # quotes served from this process's memory while Redis was down (a metric)
        # one read in flight per symbol: the orders that find a quote expired together wait for the same read
        self._reading: dict[str, asyncio.Future[Quote | None]] = {}

    def _aged(self, hit: tuple[float, Quote | None]) -> Quote | None:
        read_at, q = hit
        if q is None:
            return None
        return dataclasses.replace(q, age=q.age + max(0.0, self.clock() - read_at))

    async def quote(self, symbol: str) -> Quote | None:
        hit = self._cache.get(symbol)
        if hit is not None and self.clock() - hit[0] < self.max_age:
            return self._aged(hit)
        reading = self._reading.get(symbol)
        while reading is not None:
            try:
                return await asyncio.shield(reading)
            except asyncio.CancelledError:
                if not reading.cancelled():
                    raise  # this request itself was cancelled
                reading = self._reading.get(symbol)  # the reader's request was: read again
        reading = self._reading[symbol] = asyncio.get_running_loop().create_future()
        try:
            q = await self._read(symbol)
        except asyncio.CancelledError:
            reading.cancel()
            raise
        except Exception as e:
            if isinstance(e, UNAVAILABLE) and hit is not None and hit[1] is not None:
                # Redis is down: the last quote read serves, its age growing (pre-trade checks judge it)
                self.served_held += 1
                q = self._aged(hit)
                reading.set_result(q)
                return q
            reading.set_exception(e)
            reading.exception()  # retrieved here: nobody else may be waiting
            raise
        finally:
            del self._reading[symbol]
        if len(self._cache) > 20_000:
            self._cache.clear()  # bounded: unknown symbols must not grow it without end
        self._cache[symbol] = (self.clock(), q)
        reading.set_result(q)
        return q

    async def _read(self, symbol: str) -> Quote | None:
        return (await self._read_many([symbol]))[0]

    async def _read_many(self, symbols: list[str]) -> list[Quote | None]:
        """The hashes, the publisher's live mark and the market's hours, in one round trip (on a cluster, one per
        master: the keys live on different slots)."""
        pipe = self.redis.pipeline(transaction=False)
        for symbol in symbols:
            pipe.hgetall(quote_key(symbol))
        pipe.get(QUOTES_LIVE)
        pipe.hgetall(MARKET_STATUS)
        *raws, live, market = await pipe.execute()
        age: float | None = None  # no live mark: a publisher that does not write one, age unknown
        if live is not None:
            try:
                age = max(0.0, self.wall() - int(live) / 1e9)
            except ValueError:
                pass
        out: list[Quote | None] = []
        for raw in raws:
            q = quote_from_hash(raw, market)
            out.append(dataclasses.replace(q, age=age) if q is not None and age is not None else q)
        return out

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Current quotes of ``symbols`` (the portfolio's prices), each with its age; with Redis down, the last
        ones this process read, their ages growing (a symbol never read has none)."""
        names = list(dict.fromkeys(symbols))
        if not names:
            return {}
        try:
            got = await self._read_many(names)
        except UNAVAILABLE:
            held = {s: q for s in names if (hit := self._cache.get(s)) is not None and (q := self._aged(hit))}
            self.served_held += len(held)
            return held
        now = self.clock()
        if len(self._cache) + len(names) > 20_000:
            self._cache.clear()
        for s, q in zip(names, got, strict=True):
            self._cache[s] = (now, q)
        return {s: q for s, q in zip(names, got, strict=True) if q is not None}


class BookQuotes:
    """Straight from the books of this process (the demo serves the order API inside the node)."""

    def __init__(self, books: BookSource) -> None:
        self.books = books

    async def quote(self, symbol: str) -> Quote | None:
        loc = self.books.locate_of.get(symbol)
        if loc is None:
            return None
        status = MarketStatusView.of(self.books.market)
        return Quote.of(read_quote(self.books, loc), market_open=status.market_open, market_phase=status.phase,
                        market_event=status.system_event)

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        out = {}
        for s in symbols:
            q = await self.quote(s)
            if q is not None:
                out[s] = q
        return out


class StaticQuotes:
    """A fixed price table (tests and benchmarks that need no market-data path)."""

    def __init__(self, table: Mapping[str, Quote]) -> None:
        self.table = dict(table)

    async def quote(self, symbol: str) -> Quote | None:
        return self.table.get(symbol)

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        return {s: self.table[s] for s in symbols if s in self.table}
