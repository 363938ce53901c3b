"""Quote providers: the static table's syntax, snapshot records as quotes, and the HTTP poller against a stand-in
for the snapshot service (with a market maker filling at what it serves)."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from ingest.messages import AddOrder
from normalize import Books
from normalize.quote import read_quote
from order_api.fix import ExecType, NewOrder
from tests.conftest import directory
from tests.order_api.fix.conftest import done, session
from venue.marketmaker import BookQuote, HttpQuoteProvider, MarketMaker, parse_static_quotes, quote_from_record

from .conftest import QUOTES


def test_static_quotes_parse() -> None:
    assert parse_static_quotes("AAPL=189.25x300/189.26x100, msft=400x50/400.1x50") == QUOTES
    with pytest.raises(ValueError):
        parse_static_quotes("AAPL=189.25/189.26")



def _books() -> Books:
    b = Books()
    b.apply_batch([directory(1, "AAPL"), directory(2, "MSFT"),
                   AddOrder(1, 0, 10, 1001, "B", 300, "AAPL", 1892500),
                   AddOrder(1, 0, 11, 1002, "S", 200, "AAPL", 1892600)])
    return b


@contextlib.contextmanager
def snapshot_server() -> Any:
    """A stand-in for ``GET /v1/quotes`` answering with the real snapshot records and error shape."""
    books = _books()
    records = {s: orjson.loads(orjson.dumps(read_quote(books, loc).record())) for s, loc in books.locate_of.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            wanted = parse_qs(urlparse(self.path).query)["symbols"][0].split(",")
            unknown = [s for s in wanted if s not in records]
            body: dict[str, Any]
            if unknown:
                status, body = 404, {"error": {"code": "unknown_symbol", "message": "?", "symbols": unknown}}
            else:
                status, body = 200, {"quotes": [records[s] for s in wanted]}
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_quote_from_a_real_snapshot_record() -> None:
    books = _books()
    aapl = read_quote(books, books.locate_of["AAPL"]).record()
    assert quote_from_record(aapl) == BookQuote(1892500, 300, 1892600, 200)
    assert quote_from_record(read_quote(books, books.locate_of["MSFT"]).record()) is None  # no prices yet
    assert quote_from_record({"bid_price": "1.0000", "ask_price": "1.0100", "bid_size": 1, "ask_size": 1,
                              "halted": True}) is None


@pytest.mark.anyio
async def test_http_quote_provider() -> None:
    with snapshot_server() as url:
        provider = HttpQuoteProvider(url, interval=0.01)
        assert provider.quote("AAPL") is None  # nothing fetched yet
        assert await provider.prime("AAPL") == BookQuote(1892500, 300, 1892600, 200)
        assert provider.quote("AAPL") == BookQuote(1892500, 300, 1892600, 200)
        assert await provider.prime("NOPE") is None
        await provider.fetch(["AAPL", "NOPE", "MSFT"])  # one unknown symbol does not hide the others
        assert provider.quote("AAPL") is not None and provider.quote("MSFT") is None
        assert provider.counters["unknown"] >= 1 and provider.last_error is None

        async with MarketMaker(provider, port=0) as mm, session(mm) as (client, reports):
            await client.send_new_order(NewOrder("h1", "AAPL", "buy", 5))
            await client.send_new_order(NewOrder("h2", "NOPE", "buy", 5))
            await reports.until(lambda items: done("h1")(items) and done("h2")(items))
            assert reports.of("h1")[-1].last_px == 1892600
            assert reports.of("h2")[-1].exec_type is ExecType.REJECTED


@pytest.mark.anyio
async def test_http_quote_provider_with_the_service_down() -> None:
    provider = HttpQuoteProvider("http://127.0.0.1:9", timeout=0.5)
    assert await provider.prime("AAPL") is None
    assert provider.counters["errors"] == 1 and provider.last_error
