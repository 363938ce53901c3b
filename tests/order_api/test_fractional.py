"""Fractional arithmetic, pure: the per-order rounding rule and the house's fractional account (order_api/ledger.py),
and the refusals of an order's amount (order_api/model.py). The same through the ledger: test_ledger_fractional.py."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_api import ledger
from order_api.model import ApiError, Quote, Rules, notional_sell_qty, notional_terms, parse_order
from vocab.quantities import QTY_SCALE

S = QTY_SCALE


def _order(**fields: object) -> bytes:
    import orjson
    return orjson.dumps({"symbol": "AAPL", "side": "buy", "idempotency_key": "k", **fields})


def test_qty_is_a_whole_number_or_a_decimal_string() -> None:
    assert parse_order(_order(qty=3)).qty == 3 * S
    assert parse_order(_order(qty="0.5")).qty == S // 2
    assert parse_order(_order(qty="1.000001")).qty == S + 1
    r = parse_order(_order(notional="10"))
    assert (r.qty, r.notional) == (0, 100_000)


@pytest.mark.parametrize(("fields", "code"), [
    ({"qty": "0.0000001"}, "invalid_quantity"),       # 7 decimals
    ({"qty": "0"}, "invalid_quantity"),
    ({"qty": "-1"}, "invalid_quantity"),
    ({"qty": "1000000.000001"}, "invalid_quantity"),  # over the bound
    ({"qty": 1.5}, "invalid_order"),                   # a JSON float: never trusted as a quantity
    ({"qty": "1", "notional": "10"}, "qty_and_notional"),
    ({}, "missing_qty"),
    ({"notional": "10", "type": "limit", "limit_price": "1"}, "notional_market_only"),
    ({"notional": "10", "side": "sell", "type": "stop", "stop_price": "1"}, "notional_market_only"),
    ({"notional": "0"}, "invalid_notional"),
    ({"notional": "1.00001"}, "invalid_notional"),
    ({"notional": "abc"}, "invalid_notional"),
])
def test_refusal_codes(fields: dict[str, object], code: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_order(_order(**fields))
    assert e.value.code == code and e.value.status == 422


def test_a_notional_buys_what_it_pays_for_at_the_ask() -> None:
    quote = Quote(bid=1_899_000, ask=1_900_000, last=1_899_500, halted=False, stale=False)
    qty, limit = notional_terms(100_000, quote, Rules())  # $10 at $190
    assert qty == 100_000 * S // 1_900_000 == 52_631
    assert 1_900_000 <= limit and qty * limit <= 100_000 * S  # filled at the limit, it still costs <= $10
    with pytest.raises(ApiError) as e:
        notional_terms(1, Quote(bid=0, ask=10**10, last=0, halted=False, stale=False), Rules())
    assert e.value.code == "notional_too_small"


def test_a_notional_sell_sells_what_the_notional_is_worth_at_the_bid() -> None:
    r = parse_order(_order(side="sell", notional="10"))  # taken now (it was refused as notional_buy_only)
    assert (r.side, r.qty, r.notional, r.type) == ("sell", 0, 100_000, "market")
    quote = Quote(bid=1_899_000, ask=1_900_000, last=1_899_500, halted=False, stale=False)
    qty = notional_sell_qty(100_000, quote)  # $10 at the bid of $189.90
    assert qty == 100_000 * S // 1_899_000 == 52_659
    assert qty * 1_899_000 <= 100_000 * S < (qty + 1) * 1_899_000  # at the bid: at most $10, a millionth short
    with pytest.raises(ApiError) as e:
        notional_sell_qty(1, Quote(bid=10**10, ask=10**10, last=0, halted=False, stale=False))
    assert e.value.code == "notional_too_small"


@given(st.integers(1, 10**10), st.integers(1, 10**9))
def test_a_notional_sell_never_raises_more_than_its_notional_at_the_bid(notional: int, bid: int) -> None:
    quote = Quote(bid=bid, ask=bid + 1, last=bid, halted=False, stale=False)
    try:
        qty = notional_sell_qty(notional, quote)
    except ApiError:
        assert notional * S < bid  # less than a millionth of a share
        return
    proceeds, _ = ledger.sell_proceeds(qty, bid, 0)
    assert proceeds <= notional and qty * bid <= notional * S < (qty + 1) * bid or qty == 1_000_000 * S


fills = st.lists(st.tuples(st.integers(1, 3 * S), st.integers(1, 5_000_000)), min_size=1, max_size=12)


@given(fills=fills, sells=fills)
def test_no_unit_created_or_lost_over_fills(fills: list[tuple[int, int]], sells: list[tuple[int, int]]) -> None:
    """Random buy fills then sell fills: every journal entry balances per asset, the buyer pays the exact cost
    rounded up and the seller receives it rounded down (per order, whatever the number of fills), and the
    market and the house's fractional account hold exactly the other side."""
    total: dict[tuple[str, str, str], int] = defaultdict(int)
    reserve = max(p for _, p in fills)
    qty = sum(q for q, _ in fills)
    held = ledger.buy_hold(qty, reserve)
    carry = paid = 0
    for q, p in fills:
        cost, carry = ledger.buy_cost(q, p, carry)
        paid += cost
        assert 0 <= carry < S and paid <= held
        for e in ledger.buy_fill("u", "X", q, p, cost):
            total[e.user_id, e.account, e.asset] += e.amount
    exact = sum(q * p for q, p in fills)
    assert paid == -(-exact // S) <= held
    assert total["u", "shares", "X"] == qty
    assert total["u", "cash_held", "USD"] == -paid
    carry = got = 0
    sold = 0
    for q, p in sells:
        q = min(q, qty - sold)
        if q <= 0:
            break
        sold += q
        proceeds, carry = ledger.sell_proceeds(q, p, carry)
        got += proceeds
        for e in ledger.sell_fill("u", "X", q, p, proceeds):
            total[e.user_id, e.account, e.asset] += e.amount
    for asset in ("USD", "X"):
        assert sum(v for k, v in total.items() if k[2] == asset) == 0
    # the market trades whole shares only; the house keeps the fractions (never a negative inventory)
    assert total["", "market", "X"] % S == 0
    assert total["", "fractional", "X"] >= 0 or sold > 0
