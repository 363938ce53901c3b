"""Hostile order bodies, generated: arbitrary bytes, JSON with wrong types, other scripts' digits, NULs, huge and
negative numbers, prices with many decimals. Through the real ASGI app on the real ledger the oracle is simple:
the user has no cash and no shares, so no body may place anything. Every answer is a 4xx with a code, and the
ledger holds nothing for the user. The decoder alone: an ``OrderRequest`` within bounds, or ``ApiError``.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_api.api import create_app
from order_api.limits import HttpLimits
from tests.fuzz.fuzz_order_body import one_input

from .conftest import ScopedLedger, quotes
from .test_api import KEY, auth

pytestmark = pytest.mark.anyio

# characters that have broken parsers: NUL and controls, other scripts' digits, superscripts, full-width forms,
# a lone surrogate's neighbours, signs, separators, exponents
HOSTILE_CHARS = st.sampled_from(list("\x00\x01\x07\n\r\t \u00a0\u200b²³¹١٢٣٤５６７８９０+-_.,eE∞٫\u2028\ufeff"
                                     "0123456789AAPLMSFTbuysellmarketlimitdayioc\"\\{}[]"))
HOSTILE_TEXT = st.one_of(st.text(HOSTILE_CHARS, max_size=24), st.text(max_size=24),
                         st.sampled_from(["AAPL", "MSFT", "buy", "sell", "market", "limit", "day", "ioc", "189.50",
                                          "1.00001", "0", "-1", "1e5", "NaN", "Infinity", ""]))
NUMBERS = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1, 1, 10**6, 10**6 + 1]),
                    st.floats(allow_nan=False, allow_infinity=False), st.decimals(allow_nan=False,
                                                                                  allow_infinity=False).map(str))
ANY_JSON: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, HOSTILE_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(HOSTILE_TEXT, inner, max_size=3)),
    max_leaves=6)
FIELDS = {"symbol": ANY_JSON, "side": ANY_JSON, "qty": ANY_JSON, "idempotency_key": ANY_JSON, "type": ANY_JSON,
          "limit_price": ANY_JSON, "time_in_force": ANY_JSON}


@st.composite
def order_bodies(draw: st.DrawFn) -> bytes:
    """Mostly order-shaped JSON with some fields hostile, some bodies not JSON at all."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=200))
    body: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "qty": 1, "idempotency_key": "k"}
    for name in draw(st.sets(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=4)):
        body[name] = draw(FIELDS[name])
    if kind == 3:
        body[draw(HOSTILE_TEXT)] = draw(ANY_JSON)  # an unknown field
    try:
        raw = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer beyond 64 bits: write it by hand
        raw = repr(body).encode()
    if kind == 2 and raw:  # a byte of it spoiled
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    return raw


@given(order_bodies())
@settings(max_examples=300)
def test_the_decoder_returns_a_bounded_order_or_a_coded_refusal(raw: bytes) -> None:
    one_input(raw)


@given(raw=order_bodies())
@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_no_hostile_body_places_anything_or_gets_a_5xx(ledger: ScopedLedger, raw: bytes) -> None:
    # one user (no cash, no shares) for every example: the fixture lives as long as the test, not an example
    u = ledger.users[0] if ledger.users else ledger.user("hostile")
    app = create_app(ledger, quotes(), jwt_key=KEY, relay=False, limits=HttpLimits(rate=0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        r = await c.post("/v1/orders", content=raw, headers={**auth(u), "content-type": "application/json"})
    assert 400 <= r.status_code < 500, (raw, r.status_code, r.text)
    code = r.json()["error"]["code"]
    assert isinstance(code, str) and code.isidentifier(), r.text
    pool = ledger.pool_for(u)
    assert await pool.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 0
    assert await pool.fetchval("SELECT count(*) FROM journal WHERE user_id = $1", u) == 0
    assert await ledger.check() == []
