"""POST /v1/orders answered in front of Starlette (order_api/hot_path.py) and by Starlette's own route (the demo's
node mounts ``OrderService.routes()``): the same status, JSON body and headers for every kind of answer."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from order_api.api import OrderService, create_app
from order_api.limits import HttpLimits

from .conftest import ScopedLedger, quotes
from .test_api import KEY, auth

pytestmark = pytest.mark.anyio

VARYING = ("order_id", "idempotency_key", "created_at", "updated_at", "quote_age")  # each app places its own


def comparable(r: httpx.Response) -> tuple[int, Any, list[tuple[str, str]]]:
    body = orjson.loads(r.content)
    varying = {"x-ratelimit-reset"}  # seconds of the wall clock
    if r.status_code in (200, 201):
        for key in VARYING:
            body.pop(key)
        varying.add("content-length")  # an isoformat time without microseconds is shorter
    return r.status_code, body, sorted((k, v) for k, v in r.headers.multi_items() if k not in varying)


def requests(rich: str, poor: str) -> list[tuple[dict[str, str], bytes]]:
    """One of each kind of answer; fresh idempotency keys on every call (each app places its own orders)."""
    cases: list[tuple[dict[str, str], bytes]] = []

    def case(headers: dict[str, str], body: Any) -> None:
        cases.append((headers, body if isinstance(body, bytes) else orjson.dumps(body)))

    for who in (rich, poor):
        key = uuid.uuid4().hex
        case(auth(who), {"symbol": "AAPL", "side": "buy", "qty": 1, "idempotency_key": key})  # placed / refused
        case(auth(who), {"symbol": "AAPL", "side": "buy", "qty": 1, "idempotency_key": key})  # the same again
        case(auth(who), {"symbol": "AAPL", "side": "buy", "qty": 2, "idempotency_key": key})  # a conflict
    case(auth(rich), b"{not json")
    case(auth(rich), {"symbol": "AAPL", "side": "sell", "qty": 1, "idempotency_key": uuid.uuid4().hex})
    case(auth(rich), {"symbol": "ZZZZ", "side": "buy", "qty": 1, "idempotency_key": uuid.uuid4().hex})
    case(auth(rich), b"x" * 513)  # over the cap
    case(auth(rich), {"symbol": "AAPL", "side": "buy", "qty": 1, "idempotency_key": uuid.uuid4().hex})  # 8th
    case({}, {"symbol": "AAPL"})  # no token
    case({"authorization": "Bearer nonsense"}, {"symbol": "AAPL"})
    return cases


async def test_the_raw_route_answers_as_starlettes(ledger: ScopedLedger) -> None:
    limits = HttpLimits(max_body=512, rate=7, window=60)
    hot = create_app(ledger, quotes(), jwt_key=KEY, relay=False, limits=limits, ledger_check_interval=0)
    plain = Starlette(routes=OrderService(ledger, quotes(), jwt_key=KEY, relay=False, limits=limits,
                                          ledger_check_interval=0).routes())
    rich, poor = ledger.user("rich"), ledger.user("poor")
    await ledger.deposit(rich, 1_000_000 * 10_000)
    await ledger.deposit(poor, 1 * 10_000)
    answers: dict[str, list[tuple[int, Any, list[tuple[str, str]]]]] = {}
    for name, app in (("hot", hot), ("plain", plain)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            answers[name] = [comparable(await c.post("/v1/orders", content=body, headers=headers))
                             for headers, body in requests(rich, poor)]
    assert answers["hot"] == answers["plain"]
    statuses = [status for status, _, _ in answers["hot"]]
    # every kind of answer was compared: the rich user's eighth request is past the rate limit
    assert statuses == [201, 200, 409, 422, 422, 422, 400, 422, 422, 413, 429, 401, 401], statuses
    assert ("x-ratelimit-remaining", "6") in answers["hot"][0][2]
    assert ("connection", "close") in answers["hot"][9][2]
    assert ("retry-after", "60") in answers["hot"][10][2]
    assert await ledger.check() == []
