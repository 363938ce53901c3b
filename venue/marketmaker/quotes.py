"""Where the market maker's book comes from: a quote per symbol, top of book only.

:class:`StaticQuoteProvider` is a table (tests, offline demos; ``parse_static_quotes`` reads the command's
``--static-quotes``). :class:`HttpQuoteProvider` polls the snapshot service's ``GET /v1/quotes`` for the symbols
traded, caches, and treats halted, stale or old quotes as none. Anything with ``quote(symbol)`` will do
(:class:`QuoteProvider`); one that can also ``prime(symbol)`` is fetched from on a symbol's first order.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple, Protocol, runtime_checkable

import orjson

from normalize.quote import QuoteView
from vocab.digits import parse_ascii_int
from vocab.prices import parse_price

# The snapshot service's HTTP (tickfan node/demo --http; see tickfan/node.py)
DEFAULT_QUOTES_URL = "http://127.0.0.1:8000"


class BookQuote(NamedTuple):
    """Top of book: prices with 4 implied decimals (0 = no such side), sizes in shares."""

    bid_px: int
    bid_size: int
    ask_px: int
    ask_size: int


@runtime_checkable
class QuoteProvider(Protocol):
    def quote(self, symbol: str) -> tuple[int, int, int, int] | None:
        """(bid_px, bid_size, ask_px, ask_size) for ``symbol``, or None when unknown or without a quote."""
        ...


@runtime_checkable
class PrimableQuoteProvider(QuoteProvider, Protocol):
    async def prime(self, symbol: str) -> tuple[int, int, int, int] | None:
        """Fetch ``symbol`` now (first order for it); same answer as ``quote`` afterwards."""
        ...


class StaticQuoteProvider:
    """A quote table, changeable at any time (tests, offline demos)."""

    def __init__(self, quotes: Mapping[str, tuple[int, int, int, int]] | None = None) -> None:
        self.quotes: dict[str, BookQuote] = {s: BookQuote(*q) for s, q in (quotes or {}).items()}

    def set(self, symbol: str, bid_px: int, bid_size: int, ask_px: int, ask_size: int) -> None:
        self.quotes[symbol] = BookQuote(bid_px, bid_size, ask_px, ask_size)

    def remove(self, symbol: str) -> None:
        self.quotes.pop(symbol, None)

    def quote(self, symbol: str) -> BookQuote | None:
        return self.quotes.get(symbol)


def parse_static_quotes(text: str) -> dict[str, BookQuote]:
    """``AAPL=189.25x300/189.26x200,MSFT=...`` (bid x size / ask x size) as a quote table."""
    out: dict[str, BookQuote] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            sym, _, rest = item.partition("=")
            bid, _, ask = rest.partition("/")
            bid_px, _, bid_size = bid.partition("x")
            ask_px, _, ask_size = ask.partition("x")
            out[sym.strip().upper()] = BookQuote(parse_price(bid_px), parse_ascii_int(bid_size.strip()),
                                                 parse_price(ask_px), parse_ascii_int(ask_size.strip()))
        except ValueError as e:
            raise ValueError(f"expected SYMBOL=BIDxSIZE/ASKxSIZE, got {item!r}: {e}") from None
    return out


class HttpQuoteProvider:
    """Quotes from the snapshot service: ``GET {base_url}/v1/quotes?symbols=...`` every ``interval`` seconds.

    Only symbols asked for are polled (at most ``max_symbols``, the least recently asked dropped first). A
    quote older than ``max_age`` (the service is down), halted or stale counts as no quote. Symbols the
    service calls unknown are remembered as such for ``unknown_ttl`` seconds. Runs urllib in a thread: no
    HTTP client dependency for one small GET.
    """

    def __init__(self, base_url: str = DEFAULT_QUOTES_URL, *, interval: float = 0.25, max_age: float = 5.0,
                 timeout: float = 1.0, max_symbols: int = 1000, unknown_ttl: float = 30.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.tls = tls  # an https:// service's certificate is verified with this context (None: the system's)
        self.interval, self.max_age, self.timeout = interval, max_age, timeout
        self.max_symbols, self.unknown_ttl = max_symbols, unknown_ttl
        self._cache: dict[str, tuple[BookQuote | None, float]] = {}
        self._wanted: OrderedDict[str, None] = OrderedDict()
        self.counters = {"polls": 0, "errors": 0, "unknown": 0}
        self.last_error: str | None = None

    def _want(self, symbol: str) -> None:
        self._wanted[symbol] = None
        self._wanted.move_to_end(symbol)
        while len(self._wanted) > self.max_symbols:
            old, _ = self._wanted.popitem(last=False)
            self._cache.pop(old, None)

    def quote(self, symbol: str) -> BookQuote | None:
        self._want(symbol)
        entry = self._cache.get(symbol)
        if entry is None:
            return None
        q, at = entry
        return q if q is not None and time.monotonic() - at <= self.max_age else None

    async def prime(self, symbol: str) -> BookQuote | None:
        q = self.quote(symbol)
        if q is None and symbol not in self._known_unknown():
            await self.fetch([symbol])
            q = self.quote(symbol)
        return q

    def _known_unknown(self) -> set[str]:
        now = time.monotonic()
        return {s for s, (q, at) in self._cache.items() if q is None and now - at <= self.unknown_ttl}

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            unknown = self._known_unknown()
            symbols = [s for s in self._wanted if s not in unknown]
            if symbols:
                await self.fetch(symbols)
            await asyncio.sleep(self.interval)

    async def fetch(self, symbols: list[str]) -> None:
        for i in range(0, len(symbols), 500):
            chunk = symbols[i:i + 500]
            for _ in range(2):  # once more without the symbols the service did not know
                retry = await self._fetch_chunk(chunk)
                if not retry:
                    break
                chunk = retry

    async def _fetch_chunk(self, symbols: list[str]) -> list[str]:
        url = f"{self.base_url}/v1/quotes?symbols={urllib.parse.quote(','.join(symbols), safe=',')}"
        self.counters["polls"] += 1
        try:
            status, body = await asyncio.to_thread(self._get, url)
            doc = orjson.loads(body)
        except (OSError, ValueError) as e:
            self.counters["errors"] += 1
            self.last_error = f"{url}: {e}"
            return []
        now = time.monotonic()
        if status == 404 and isinstance(doc, dict) and doc.get("error", {}).get("code") == "unknown_symbol":
            unknown = {str(s) for s in doc["error"].get("symbols", [])}
            for s in unknown:
                self._cache[s] = (None, now)
                self.counters["unknown"] += 1
            return [s for s in symbols if s not in unknown]
        if status != 200 or not isinstance(doc, dict):
            self.counters["errors"] += 1
            self.last_error = f"{url}: HTTP {status}"
            return []
        for rec in doc.get("quotes", []):
            try:
                self._cache[rec["symbol"]] = (quote_from_record(rec), now)
            except (KeyError, ValueError, TypeError) as e:
                self.counters["errors"] += 1
                self.last_error = f"bad quote record {rec!r}: {e}"
        self.last_error = None
        return []

    def _get(self, url: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout, context=self.tls) as resp:  # noqa: S310 (configured URL)
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())


def quote_from_record(rec: Mapping[str, object]) -> BookQuote | None:
    """A ``/v1/quotes`` record (the quote view's JSON form) as a BookQuote; None when halted, stale or empty."""
    v = QuoteView.parse(rec)
    if v.halted or v.stale or not (v.bid_price or v.ask_price):
        return None
    return BookQuote(v.bid_price, v.bid_size, v.ask_price, v.ask_size)


__all__ = ["DEFAULT_QUOTES_URL", "BookQuote", "HttpQuoteProvider", "PrimableQuoteProvider", "QuoteProvider",
           "StaticQuoteProvider", "parse_static_quotes", "quote_from_record"]
