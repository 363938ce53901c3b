"""Where pre-trade checks and the portfolio read current prices: the snapshot hashes ``quote:{SYMBOL}`` that
ingest keeps in Redis for internal services (see fanout/redis_bridge.py), or a fixed table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import redis.asyncio as aioredis

from normalize.prices import parse_price
from normalize.source import BookSource
from order_api.model import Quote


class QuoteSource(Protocol):
    async def quote(self, symbol: str) -> Quote | None: ...

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]: ...


def _price(v: bytes | str | None) -> int:
    if not v:
        return 0
    return parse_price(v.decode() if isinstance(v, bytes) else v)


def _flag(v: bytes | str | None) -> bool:
    return (v.decode() if isinstance(v, bytes) else (v or "")) in ("True", "true", "1")


def quote_from_hash(raw: Mapping[Any, Any]) -> Quote | None:
    """A ``quote:{SYMBOL}`` hash (bytes or str keys) as a Quote; None for a symbol that has none."""
    if not raw:
        return None
    h = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
    return Quote(bid=_price(h.get("bid_price")), ask=_price(h.get("ask_price")), last=_price(h.get("last_price")),
                 halted=_flag(h.get("halted")), stale=_flag(h.get("stale")))


class RedisQuotes:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def quote(self, symbol: str) -> Quote | None:
        return quote_from_hash(await self.redis.hgetall(f"quote:{symbol}"))

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        names = list(symbols)
        pipe = self.redis.pipeline(transaction=False)
        for s in names:
            pipe.hgetall(f"quote:{s}")
        out = {}
        for s, h in zip(names, await pipe.execute(), strict=True):
            q = quote_from_hash(h)
            if q is not None:
                out[s] = q
        return out


class BookQuotes:
    """Straight from the books of this process (the demo serves the order API inside the node)."""

    def __init__(self, books: BookSource) -> None:
        self.books = books

    async def quote(self, symbol: str) -> Quote | None:
        loc = self.books.locate_of.get(symbol)
        if loc is None:
            return None
        b = self.books
        return Quote(bid=int(b.bid_price[loc]), ask=int(b.ask_price[loc]), last=int(b.last_price[loc]),
                     halted=bool(b.halted[loc]), stale=bool(b.stale[loc]))

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
