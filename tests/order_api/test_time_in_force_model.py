"""Time in force in the pure model: what a body may ask, and what the feed's market state lets through."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from order_api.model import ApiError, IllegalTransition, Quote, Rules, Status, parse_order, pre_trade, transition

from .conftest import QUOTES

AAPL = QUOTES["AAPL"]


def body(**kw: object) -> bytes:
    return orjson.dumps({"symbol": "AAPL", "side": "buy", "qty": 1, "idempotency_key": "k", **kw})


def refusal(raw: bytes, quote: Quote | None = AAPL) -> str:
    with pytest.raises(ApiError) as e:
        pre_trade(parse_order(raw), quote, Rules())
    return e.value.code


def in_phase(phase: str) -> Quote:
    return dataclasses.replace(AAPL, market_open=phase == "open", market_phase=phase)


def test_the_body() -> None:
    for tif in ("day", "gtc", "ioc", "fok", "opg", "cls"):
        assert parse_order(body(time_in_force=tif)).tif == tif
    with pytest.raises(ApiError, match="time_in_force"):
        parse_order(body(time_in_force="gtd"))
    req = parse_order(body(type="limit", limit_price="189.00", extended_hours=True))
    assert req.extended_hours and req.tif_column == "day+ext"
    assert req.fingerprint() != dataclasses.replace(req, extended_hours=False).fingerprint()
    for bad in (body(extended_hours=True), body(type="limit", limit_price="1", extended_hours=True,
                                                 time_in_force="gtc")):
        with pytest.raises(ApiError) as e:
            parse_order(bad)
        assert e.value.code == "invalid_extended_hours"


def test_the_feed_gates_each_time_in_force() -> None:
    ext = body(type="limit", limit_price="189.00", extended_hours=True)
    for phase in ("pre_market", "after_hours"):
        pre_trade(parse_order(ext), in_phase(phase), Rules())
        assert refusal(body(), in_phase(phase)) == "market_closed"
        pre_trade(parse_order(body(time_in_force="opg")), in_phase(phase), Rules())
    assert refusal(ext, in_phase("closed")) == "market_closed"
    assert refusal(body(time_in_force="cls"), in_phase("pre_market")) == "market_closed"
    assert refusal(body(time_in_force="opg"), in_phase("open")) == "opg_after_open"
    pre_trade(parse_order(ext), in_phase("open"), Rules())
    pre_trade(parse_order(body(time_in_force="opg")), AAPL, Rules())  # not a feed: no hours to keep


def test_expired_is_terminal() -> None:
    for status in (Status.ACCEPTED, Status.ROUTED, Status.PARTIALLY_FILLED):
        assert transition(status, Status.EXPIRED) is Status.EXPIRED
    with pytest.raises(IllegalTransition):
        transition(Status.EXPIRED, Status.CANCELLED)
