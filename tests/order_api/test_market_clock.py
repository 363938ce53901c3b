"""GET /v1/clock and GET /v1/calendar over HTTP, with the wall clock driven by the test."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from order_api.api import create_app
from vocab.clock import EASTERN

from .conftest import ScopedLedger, quotes
from .test_api import KEY, auth

pytestmark = pytest.mark.anyio


def ns(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=EASTERN).timestamp()) * 1_000_000_000  # type: ignore[misc,arg-type]


async def test_clock_and_calendar(ledger: ScopedLedger) -> None:
    app = create_app(ledger, quotes(), jwt_key=KEY, relay=False, ledger_check_interval=0)
    now = [ns(2026, 11, 27, 12, 59)]  # the day after Thanksgiving, a minute before its early close
    app.state.order_service.services.now_ns = lambda: now[0]
    h = auth(ledger.user())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        r = await http.get("/v1/clock", headers=h)
        assert r.status_code == 200, r.text
        assert r.json() == {"timestamp": "2026-11-27T12:59:00-05:00", "is_open": True, "phase": "open",
                            "next_open": "2026-11-30T09:30:00-05:00", "next_close": "2026-11-27T13:00:00-05:00"}
        now[0] = ns(2026, 11, 27, 13, 0)
        assert (await http.get("/v1/clock", headers=h)).json()["is_open"] is False
        assert (await http.get("/v1/clock")).status_code == 401

        r = await http.get("/v1/calendar", headers=h)  # default: the current year
        body = r.json()
        assert r.status_code == 200 and body["start"] == "2026-01-01" and len(body["sessions"]) == 251
        year = body["years"][0]
        assert [d["date"] for d in year["early_closes"]] == ["2026-11-27", "2026-12-24"]
        assert {"date": "2026-04-03", "name": "Good Friday"} in year["holidays"]
        r = await http.get("/v1/calendar", params={"start": "2027-07-01", "end": "2027-07-07"}, headers=h)
        sessions = r.json()["sessions"]
        assert [s["date"] for s in sessions] == ["2027-07-01", "2027-07-02", "2027-07-06", "2027-07-07"]
        assert sessions[0] == {"date": "2027-07-01", "open": "2027-07-01T09:30:00-04:00",
                               "close": "2027-07-01T16:00:00-04:00", "pre_market_open": "2027-07-01T04:00:00-04:00",
                               "after_hours_close": "2027-07-01T20:00:00-04:00", "early_close": False}
        for params in ({"start": "2026-13-01"}, {"start": "2026-02-01", "end": "2026-01-01"},
                       {"start": "2020-01-01", "end": "2026-01-01"}, {"start": "1700-01-01", "end": "1700-01-02"}):
            r = await http.get("/v1/calendar", params=params, headers=h)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter", params
