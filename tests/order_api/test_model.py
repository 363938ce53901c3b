"""The pure trading rules: validation, collars, holds, market hours, the lifecycle machine, journal balance."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_api import ledger
from order_api.model import (
    ApiError,
    IllegalTransition,
    OrderRequest,
    Quote,
    Rules,
    Status,
    parse_order,
    pre_trade,
    reserve_price,
    shard_of,
    transition,
)

Q = Quote(bid=1_000_000, ask=1_000_200, last=1_000_100, halted=False, stale=False)


def req(**kw: object) -> OrderRequest:
    base: dict[str, object] = {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "market", "limit_price": None,
                               "tif": "day", "idempotency_key": "k"}
    base.update(kw)
    return OrderRequest(**base)  # type: ignore[arg-type]


def test_parse_order_normalises_and_refuses_precisely() -> None:
    r = parse_order(b'{"symbol": " aapl ", "side": "buy", "qty": 5, "idempotency_key": "x", "type": "limit",'
                    b' "limit_price": "100.5"}')
    assert (r.symbol, r.limit_price, r.tif) == ("AAPL", 1_005_000, "day")
    for body, code in [(b"{x", "malformed_json"), (b'{"symbol": "A"}', "invalid_order"),
                       (b'{"symbol": "A", "side": "buy", "qty": 0, "idempotency_key": "x"}', "invalid_quantity"),
                       (b'{"symbol": "A", "side": "buy", "qty": 1, "idempotency_key": "x", "type": "limit", '
                        b'"limit_price": "-1"}', "invalid_limit_price")]:
        with pytest.raises(ApiError) as e:
            parse_order(body)
        assert e.value.code == code


def test_collars_and_market_buy_protection() -> None:
    rules = Rules(collar_bps=500)
    pre_trade(req(type="limit", limit_price=1_050_000), Q, rules)
    with pytest.raises(ApiError) as e:
        pre_trade(req(type="limit", limit_price=1_060_000), Q, rules)
    assert e.value.code == "limit_off_collar"
    assert reserve_price(req(), Q, rules) == 1_000_200 + 50_010
    assert reserve_price(req(type="limit", limit_price=990_000), Q, rules) == 990_000
    with pytest.raises(ApiError) as e:
        pre_trade(req(), Quote(0, 0, 0, False, False), rules)
    assert e.value.code == "no_market"
    with pytest.raises(ApiError) as e:
        pre_trade(req(), Quote(1, 2, 1, False, True), rules)
    assert e.value.status == 503


def test_market_hours_and_halts_come_from_the_feed() -> None:
    rules = Rules()
    pre_trade(req(), dataclasses.replace(Q, market_open=True), rules)
    pre_trade(req(), Q, rules)  # a fixed price table (no feed): open, the documented fallback
    for quote, code in [(dataclasses.replace(Q, market_open=False), "market_closed"),
                        (dataclasses.replace(Q, market_open=True, halted=True, trading_state="P",
                                             trading_reason="LUDP"), "symbol_halted")]:
        with pytest.raises(ApiError) as e:
            pre_trade(req(), quote, rules)
        assert e.value.code == code
    with pytest.raises(ApiError) as e:
        pre_trade(req(), dataclasses.replace(Q, halted=True, trading_state="P", trading_reason="LUDP"), rules)
    assert "paused LUDP" in str(e.value)
    with pytest.raises(ApiError) as e:  # the operator's switch closes whatever the feed says
        pre_trade(req(), dataclasses.replace(Q, market_open=True), Rules(market_open=False))
    assert e.value.code == "market_closed"


def test_lifecycle_refuses_illegal_transitions() -> None:
    assert transition(Status.ACCEPTED, Status.ROUTED) is Status.ROUTED
    assert transition(Status.PARTIALLY_FILLED, Status.PARTIALLY_FILLED) is Status.PARTIALLY_FILLED
    for old, new in [(Status.FILLED, Status.CANCELLED), (Status.CANCELLED, Status.FILLED),
                     (Status.ROUTED, Status.ACCEPTED), (Status.PARTIALLY_FILLED, Status.REJECTED)]:
        with pytest.raises(IllegalTransition):
            transition(old, new)


@given(qty=st.integers(1, 10**10), price=st.integers(1, 10**8), carry=st.integers(0, 999_999))
def test_fills_balance_to_the_unit(qty: int, price: int, carry: int) -> None:
    cost, _ = ledger.buy_cost(qty, price, carry)
    proceeds, _ = ledger.sell_proceeds(qty, price, carry)
    for entries in (ledger.buy_fill("u", "AAPL", qty, price, cost), ledger.sell_fill("u", "AAPL", qty, price, proceeds),
                    ledger.hold_cash("u", ledger.buy_hold(qty, price)), ledger.deposit("u", price)):
        for asset in {e.asset for e in entries}:
            assert sum(e.amount for e in entries if e.asset == asset) == 0


def test_fee_rounds_up_to_the_cent_and_shards_are_stable() -> None:
    assert ledger.fee_for(5_699_700, 1) == 600 and ledger.fee_for(5_699_700, 0) == 0
    assert shard_of("alice", 2) == shard_of("alice", 2) and {shard_of(f"u{i}", 2) for i in range(20)} == {0, 1}
