"""Snapshot HTTP endpoint over real books fed with ITCH messages."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
    ("/v1/quotes?symbols=" + "AAPL," * 1001, 400, "too_many_symbols"),  # duplicates count toward the cap
    ("/v1/quotes?symbols=" + "A," * 5000, 400, "too_many_symbols"),
    ("/v1/quotes?symbols=%00", 404, "unknown_symbol"),
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
    ("/v1/depth?symbol=AAPL&levels=%C2%B2", 400, "bad_levels"),  # "²": isdigit() said yes, int() raised: a 500
    ("/v1/depth?symbol=AAPL&levels=%D9%A5", 400, "bad_levels"),  # Arabic-Indic 5: int() took it
    ("/v1/depth?symbol=AAPL&levels=%2B5", 400, "bad_levels"),
    ("/v1/depth?symbol=AAPL&levels=" + "9" * 5000, 400, "bad_levels"),
    ("/v1/depth?symbol=AAPL&levels=%00", 400, "bad_levels"),
    ("/v1/depth?symbol=AA%00PL", 404, "unknown_symbol"),
    ("/v1/depth?symbol=AAPL&levels=²", 400, "bad_levels"),  # was a 500: "²".isdigit() but int("²") raises
    ("/v1/depth?symbol=AAPL&levels=١", 400, "bad_levels"),
    ("/v1/depth?symbol=NOPE", 404, "unknown_symbol"),
])
async def test_bad_depth_requests(books: Books, url: str, status: int, code: str) -> None:
    r = await _get(books, url)
    assert r.status_code == status and r.json()["error"]["code"] == code


@pytest.mark.anyio
async def test_a_symbol_listed_many_times_is_answered_once(books: Books) -> None:
    """The Why: 1,000 x AAPL returned 1,000 quotes (188 KB); now one, in the order first asked."""
    r = await _get(books, "/v1/quotes?symbols=" + ",".join(["AAPL"] * 1000))
    assert r.status_code == 200 and [q["symbol"] for q in r.json()["quotes"]] == ["AAPL"]
    r = await _get(books, "/v1/quotes?symbols=msft,AAPL,MSFT,aapl")
    assert [q["symbol"] for q in r.json()["quotes"]] == ["MSFT", "AAPL"]
    r = await _get(books, "/v1/quotes?symbols=NOPE,NOPE,AAPL")
    assert r.status_code == 404 and r.json()["error"]["symbols"] == ["NOPE"]


@pytest.mark.anyio
async def test_an_unforeseen_error_is_a_500_with_a_code_and_no_traceback(books: Books) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug, with a secret in its message")

    app = create_app(books, [Route("/broken", broken)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/broken")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
    assert "secret" not in r.text and "Traceback" not in r.text
