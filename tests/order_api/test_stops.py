"""The pure trigger core (order_api/stops.py) and the stop orders' validation (order_api/model.py): when a stop
triggers, how a trailing stop follows its mark, what gates triggering, and what a stop order body may say."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_api.model import ApiError, Quote, Rules, Status, parse_order, reserve_price, trail_stop, transition
from order_api.stops import Resting, Trailed, Triggered, step

RULES = Rules()
OPEN_Q = Quote(bid=1_000_000, ask=1_000_200, last=1_000_100, halted=False, stale=False, market_open=True)


def q(bid: int, ask: int | None = None, **kw: Any) -> Quote:
    return dataclasses.replace(OPEN_Q, bid=bid, ask=ask if ask is not None else bid + 200, **kw)


def body(**kw: object) -> bytes:
    return orjson.dumps({"symbol": "AAPL", "side": "sell", "qty": 1, "idempotency_key": "k", **kw})


def test_a_buy_stop_triggers_at_the_ask_and_a_sell_stop_at_the_bid() -> None:
    buy = Resting("b", "buy", stop=1_010_000)
    assert step(buy, q(1_000_000, 1_009_999), RULES) is None
    assert step(buy, q(1_000_000, 1_010_000), RULES) == Triggered("b", 1_010_000, 1_010_000, 0)
    sell = Resting("s", "sell", stop=990_000)
    assert step(sell, q(990_001), RULES) is None
    assert step(sell, q(989_000), RULES) == Triggered("s", 989_000, 990_000, 0)
    assert step(sell, q(0, 1_000_000), RULES) is None  # no bid: nothing to sell into, nothing triggers


@pytest.mark.parametrize("gate", [{"halted": True}, {"market_open": False}, {"stale": True}, {"age": 60.0}])
def test_halts_closed_markets_and_stale_quotes_trigger_nothing_and_move_no_mark(gate: dict[str, Any]) -> None:
    crossed = q(900_000, **gate)
    assert step(Resting("s", "sell", stop=990_000), crossed, RULES) is None
    trailing = Resting("t", "sell", stop=990_000, trail_price=10_000, mark=1_000_000)
    assert step(trailing, q(2_000_000, **gate), RULES) is None
    # the first eligible quote after the gate lifts triggers, at its own price
    assert step(Resting("s", "sell", stop=990_000), q(950_000), RULES) == Triggered("s", 950_000, 990_000, 0)


def test_the_operator_switch_gates_triggering_too() -> None:
    assert step(Resting("s", "sell", stop=990_000), q(900_000), Rules(market_open=False)) is None


def test_a_trailing_sell_follows_the_high_water_mark_and_triggers_on_the_way_down() -> None:
    order = Resting("t", "sell", stop=990_000, trail_percent=10_000, mark=1_000_000)  # 1 %
    up = step(order, q(1_100_000), RULES)
    assert up == Trailed("t", 1_089_000, 1_100_000)
    assert isinstance(up, Trailed)
    order = dataclasses.replace(order, stop=up.stop, mark=up.mark)
    assert step(order, q(1_095_000), RULES) is None  # below the mark, above the stop: nothing moves
    assert step(order, q(1_089_000), RULES) == Triggered("t", 1_089_000, 1_089_000, 1_100_000)


def test_a_trailing_buy_follows_the_low_water_mark_and_triggers_on_the_way_up() -> None:
    order = Resting("t", "buy", stop=1_010_200, trail_price=10_000, mark=1_000_200)
    down = step(order, q(900_000, 900_200), RULES)
    assert down == Trailed("t", 910_200, 900_200)
    assert isinstance(down, Trailed)
    order = dataclasses.replace(order, stop=down.stop, mark=down.mark)
    assert step(order, q(910_000, 910_200), RULES) == Triggered("t", 910_200, 910_200, 900_200)


@given(st.sampled_from(["buy", "sell"]), st.integers(1, 100_000), st.one_of(st.none(), st.integers(1, 999_999)),
       st.lists(st.integers(1, 5_000_000), min_size=1, max_size=40))
def test_a_trailing_stop_is_the_trail_from_the_best_price_seen_and_fires_at_the_first_cross(
        side: str, trail_price: int, trail_percent: int | None, prices: list[int]) -> None:
    """Against a model: the mark is the best price so far, the stop is ``trail_stop`` of it, the first price at or
    beyond the stop triggers, and the stop never loosens."""
    trail = None if trail_percent is not None else trail_price
    order = Resting("t", side, stop=0, trail_price=trail, trail_percent=trail_percent, mark=0)
    best = 0
    for price in prices:
        quote = q(price) if side == "sell" else q(max(price - 200, 1), price)
        best = price if not best else (max(best, price) if side == "sell" else min(best, price))
        expected = trail_stop(side, best, trail, trail_percent)
        decision = step(order, quote, RULES)
        crossed = (price <= expected if side == "sell" else price >= expected) and expected > 0
        if crossed:
            assert decision == Triggered("t", price, expected, best)
            return
        if isinstance(decision, Trailed):
            assert (decision.mark, decision.stop) == (best, expected)
            if order.stop:
                assert decision.stop >= order.stop if side == "sell" else decision.stop <= order.stop
            order = dataclasses.replace(order, stop=decision.stop, mark=decision.mark)
        else:
            assert decision is None and order.mark == best


def test_trail_stop_rounds_away_from_the_market() -> None:
    assert trail_stop("sell", 1_000_001, None, 10_000) == 990_000  # 990000.99 down
    assert trail_stop("buy", 1_000_001, None, 10_000) == 1_010_002  # 1010001.01 up
    assert trail_stop("sell", 5_000, 10_000, None) == 0  # a trail wider than the price: never triggers


def test_the_lifecycle_of_a_stop() -> None:
    assert transition(Status.PENDING_TRIGGER, Status.ACCEPTED) is Status.ACCEPTED
    assert transition(Status.PENDING_TRIGGER, Status.CANCELLED) is Status.CANCELLED
    for never in (Status.ROUTED, Status.PARTIALLY_FILLED, Status.FILLED):
        with pytest.raises(Exception, match="illegal"):
            transition(Status.PENDING_TRIGGER, never)


def test_stop_bodies_parse_to_fixed_point_and_a_buy_stop_holds_its_stop_plus_the_collar() -> None:
    stop = parse_order(body(type="stop", stop_price="185.5"))
    assert (stop.stop_price, stop.limit_price, stop.is_stop) == (1_855_000, None, True)
    limit = parse_order(body(type="stop_limit", stop_price="185", limit_price="184.5"))
    assert (limit.stop_price, limit.limit_price) == (1_850_000, 1_845_000)
    trail = parse_order(body(type="trailing_stop", trail_percent="1.5"))
    assert (trail.trail_percent, trail.trail_price) == (15_000, None)
    buy = parse_order(body(side="buy", type="stop", stop_price="200"))
    assert reserve_price(buy, OPEN_Q, RULES) == 2_200_000  # 200 + 10 %
    tbuy = parse_order(body(side="buy", type="trailing_stop", trail_price="1"))
    assert reserve_price(tbuy, OPEN_Q, RULES) == 1_010_200 + 101_020  # (ask + trail) + 10 %
    stop_one = parse_order(body(type="stop", stop_price="1"))
    assert parse_order(body(type="market")).fingerprint() != stop_one.fingerprint()


@pytest.mark.parametrize(("fields", "code"), [
    ({"type": "stop"}, "missing_stop_price"),
    ({"type": "stop", "stop_price": "0"}, "invalid_stop_price"),
    ({"type": "stop", "stop_price": "1.23456"}, "invalid_stop_price"),
    ({"type": "stop", "stop_price": "1", "limit_price": "1"}, "unexpected_limit_price"),
    ({"type": "stop_limit", "stop_price": "1"}, "missing_limit_price"),
    ({"type": "limit", "limit_price": "1", "stop_price": "1"}, "unexpected_stop_price"),
    ({"type": "trailing_stop"}, "missing_trail"),
    ({"type": "trailing_stop", "trail_percent": "1", "trail_price": "1"}, "missing_trail"),
    ({"type": "trailing_stop", "trail_percent": "100"}, "invalid_trail_percent"),
    ({"type": "trailing_stop", "trail_price": "-1"}, "invalid_trail_price"),
    ({"type": "trailing_stop", "trail_price": "1", "stop_price": "1"}, "unexpected_stop_price"),
    ({"type": "stop", "stop_price": "1", "trail_price": "1"}, "unexpected_trail"),
    ({"type": "stop", "stop_price": "1", "notional": "10", "qty": None}, "notional_market_only"),
])
def test_each_malformed_stop_is_refused_with_its_code(fields: dict[str, object], code: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_order(body(**fields))
    assert e.value.code == code
