"""Snapshot HTTP endpoint over real books fed with ITCH messages."""

from __future__ import annotations

import httpx
import pytest

from ingest.messages import AddOrder, OrderExecuted
from normalize import Books
from snapshots.http import create_app
from tests.conftest import directory


@pytest.fixture
def books() -> Books:
    b = Books()
    b.apply_batch([
        directory(1, "AAPL"),
        directory(2, "MSFT"),
        AddOrder(1, 0, 10, 1001, "B", 300, "AAPL", 1892500),
        AddOrder(1, 0, 11, 1002, "S", 200, "AAPL", 1892600),
        AddOrder(1, 0, 12, 1003, "S", 100, "AAPL", 1892700),
        OrderExecuted(1, 0, 13, 1002, 50, 77),
    ])
    return b


async def _get(books: Books, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(books))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(url)


@pytest.mark.anyio
async def test_quotes_are_exact_decimal_strings(books: Books) -> None:
    r = await _get(books, "/v1/quotes?symbols=aapl,MSFT")
    assert r.status_code == 200
    aapl, msft = r.json()["quotes"]
    assert aapl["symbol"] == "AAPL"
    assert (aapl["bid_price"], aapl["bid_size"]) == ("189.2500", 300)
    assert (aapl["ask_price"], aapl["ask_size"]) == ("189.2600", 150)
    assert (aapl["last_price"], aapl["last_size"], aapl["volume"]) == ("189.2600", 50, 50)
    assert aapl["exchange_time_ns"] == 13 and aapl["seq"] >= 1
    assert msft["symbol"] == "MSFT" and msft["bid_price"] is None and msft["ask_price"] is None


@pytest.mark.anyio
async def test_unknown_symbol_is_a_404_naming_it(books: Books) -> None:
    r = await _get(books, "/v1/quotes?symbols=AAPL,NOPE,ZZZ")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "unknown_symbol" and err["symbols"] == ["NOPE", "ZZZ"]


@pytest.mark.anyio
@pytest.mark.parametrize("url,status,code", [
    ("/v1/quotes", 400, "missing_symbols"),
    ("/v1/quotes?symbols=", 400, "missing_symbols"),
    ("/v1/quotes?symbols=" + ",".join(f"S{i}" for i in range(1001)), 400, "too_many_symbols"),
    ("/v2/nothing", 404, "not_found"),
])
async def test_bad_requests_get_a_code(books: Books, url: str, status: int, code: str) -> None:
    r = await _get(books, url)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


@pytest.mark.anyio
async def test_depth_levels_best_first(books: Books) -> None:
    r = await _get(books, "/v1/depth?symbol=aapl&levels=5")
    assert r.status_code == 200
    d = r.json()
    assert d["symbol"] == "AAPL" and d["bids"] == [{"price": "189.2500", "size": 300}]
    assert d["asks"] == [{"price": "189.2600", "size": 150}, {"price": "189.2700", "size": 100}]
    assert (await _get(books, "/v1/depth?symbol=AAPL&levels=1")).json()["asks"] == [{"price": "189.2600",
                                                                                       "size": 150}]


@pytest.mark.anyio
@pytest.mark.parametrize("url,status,code", [
    ("/v1/depth", 400, "missing_symbol"),
    ("/v1/depth?symbol=AAPL&levels=0", 400, "bad_levels"),
    ("/v1/depth?symbol=AAPL&levels=x", 400, "bad_levels"),
    ("/v1/depth?symbol=AAPL&levels=²", 400, "bad_levels"),  # was a 500: "²".isdigit() but int("²") raises
    ("/v1/depth?symbol=AAPL&levels=١", 400, "bad_levels"),
    ("/v1/depth?symbol=NOPE", 404, "unknown_symbol"),
])
async def test_bad_depth_requests(books: Books, url: str, status: int, code: str) -> None:
    r = await _get(books, url)
    assert r.status_code == status and r.json()["error"]["code"] == code
