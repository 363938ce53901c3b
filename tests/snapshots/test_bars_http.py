"""``GET /v1/bars``: exact decimal strings, epoch start times, and clear 4xx errors."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from ingest.messages import AddOrder, BrokenTrade, OrderExecuted, Trade
from normalize import Books
from normalize.bar_feed import BarFeed
from normalize.bar_types import MINUTE, SECOND
from snapshots.bars import iso_utc
from snapshots.http import create_app
from tests.conftest import directory
from vocab.clock import eastern_midnight_ns

OFFSET = eastern_midnight_ns(dt.date(2026, 11, 26))  # the session's Eastern midnight: ITCH ns -> epoch ns
T0 = (9 * 3600 + 30 * 60) * SECOND  # 09:30 Eastern, as ITCH ns since midnight


@pytest.fixture
def feed() -> BarFeed:
    books = Books()
    f = BarFeed(books, time_offset=OFFSET)  # before the messages: it reads the prints recorded after it
    books.apply_batch([
        directory(1, "AAPL"), directory(2, "MSFT"),
        AddOrder(1, 0, T0, 1001, "S", 300, "AAPL", 1892500),
        OrderExecuted(1, 0, T0 + 1, 1001, 100, 1),  # 100 @ 189.2500
        Trade(1, 0, T0 + 2, 0, "B", 200, "AAPL", 1892600, 2),  # 200 @ 189.2600
        Trade(1, 0, T0 + 3, 0, "B", 100, "AAPL", 1892601, 3),  # 100 @ 189.2601
        Trade(1, 0, T0 + SECOND, 0, "B", 100, "AAPL", 1892700, 4),  # the next second
        BrokenTrade(1, 0, T0 + SECOND + 1, 3),  # breaks the 189.2601 print: its (closed) 1 s bar is revised
    ])
    f.pump()
    return f


async def _get(feed: BarFeed | None, url: str) -> httpx.Response:
    books = feed.books if feed is not None else Books()
    assert isinstance(books, Books)
    transport = httpx.ASGITransport(app=create_app(books, bars=feed))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(url)


@pytest.mark.anyio
async def test_bars_are_exact_decimal_strings_with_epoch_start_times(feed: BarFeed) -> None:
    r = await _get(feed, "/v1/bars?symbol=aapl&interval=1s&limit=10")
    assert r.status_code == 200
    body = r.json()
    assert body["symbol"] == "AAPL" and body["interval"] == "1s"
    first, second = body["bars"]
    start = OFFSET + T0
    assert first == {"start_time_ns": start, "start_time": "2026-11-26T14:30:00Z", "open": "189.2500",
                     "high": "189.2600", "low": "189.2500", "close": "189.2600",
                     # (100 x 189.25 + 200 x 189.26) / 300 = 189.25666.. -> 189.2567; the broken print is out
                     "vwap": "189.2567", "volume": 300, "trades": 2,
                     "notional": str(100 * 1892500 + 200 * 1892600), "state": "revised", "version": 1}
    assert second["start_time_ns"] == start + SECOND and second["state"] == "update"
    assert second["open"] == second["close"] == second["vwap"] == "189.2700"
    minute = (await _get(feed, "/v1/bars?symbol=AAPL&interval=1m")).json()["bars"]
    assert [(b["volume"], b["trades"], b["state"]) for b in minute] == [(400, 3, "update")]
    assert minute[0]["start_time_ns"] == start - start % MINUTE
    # limit: the newest bars
    only = (await _get(feed, "/v1/bars?symbol=AAPL&interval=1s&limit=1")).json()["bars"]
    assert only == [second]


@pytest.mark.anyio
async def test_a_symbol_without_prints_has_no_bars(feed: BarFeed) -> None:
    r = await _get(feed, "/v1/bars?symbol=MSFT&interval=1m")
    assert r.status_code == 200 and r.json()["bars"] == []


@pytest.mark.anyio
@pytest.mark.parametrize(("query", "status", "code"), [
    ("interval=1m", 400, "missing_symbol"),
    ("symbol=AAPL&interval=5m", 400, "bad_interval"),
    ("symbol=AAPL&interval=", 400, "bad_interval"),
    ("symbol=AAPL&limit=0", 400, "bad_limit"),
    ("symbol=AAPL&limit=10001", 400, "bad_limit"),
    ("symbol=AAPL&limit=-1", 400, "bad_limit"),
    ("symbol=AAPL&limit=%C2%B2", 400, "bad_limit"),  # "²": isdigit() says yes, int() says no
    ("symbol=AAPL&limit=12345678901234567890", 400, "bad_limit"),
    ("symbol=XYZ&interval=1s", 404, "unknown_symbol"),
])
async def test_bad_requests_are_4xx_with_a_code(feed: BarFeed, query: str, status: int, code: str) -> None:
    r = await _get(feed, "/v1/bars?" + query)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


@pytest.mark.anyio
async def test_a_node_without_bars_says_so() -> None:
    books = Books()
    books.apply(directory(1, "AAPL"))
    transport = httpx.ASGITransport(app=create_app(books))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/v1/bars?symbol=AAPL")
    assert r.status_code == 503 and r.json()["error"]["code"] == "bars_unavailable"


def test_iso_times_are_utc_with_the_fraction_only_when_there_is_one() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(1_500_000_000) == "1970-01-01T00:00:01.5Z"
