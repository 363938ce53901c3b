"""Stock split arithmetic, pure (order_api/splits.py): exact scaling, the remainder rule, nothing created or lost."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_api.ledger import HOUSE, USD, buy_hold
from order_api.splits import (
    ISSUER,
    BadSplit,
    OrderTerms,
    Ratio,
    adjusted_price,
    holder_entries,
    house_entries,
    needs_price,
    parse_ratio,
    rescale,
    scale,
    scale_price,
    tick,
)
from vocab.quantities import QTY_SCALE as S


def test_ratio_is_parsed_reduced_and_refused_clearly() -> None:
    assert parse_ratio("2:1") == Ratio(2, 1)
    assert parse_ratio(" 4:2 ") == Ratio(2, 1)
    assert parse_ratio("1:10") == Ratio(1, 10) and not Ratio(1, 10).forward
    assert parse_ratio("3:2") == Ratio(3, 2) and needs_price(Ratio(3, 2)) and not needs_price(Ratio(2, 1))
    for bad in ("2", "2:0", "0:1", "1:1", "5:5", "-2:1", "2.5:1", "2/1", "a:b", "20000:1", "", "١:٢"):
        with pytest.raises(BadSplit):
            parse_ratio(bad)


def test_examples() -> None:
    # forward 2:1: 1.5 shares become 3, no remainder
    h = scale(1_500_000, Ratio(2, 1), 0)
    assert (h.new_qty, h.remainder, h.cash_in_lieu) == (3 * S, 0, 0)
    # reverse 1:10 of 0.000015 shares: 0.0000015 -> 0.000001 held, half a millionth paid at $1000 * 10 = $10,000
    # a share: 0.0000005 * 10,000 = $0.005 = 50 units
    h = scale(15, Ratio(1, 10), 1000 * 10_000)
    assert (h.new_qty, h.remainder, h.cash_in_lieu) == (1, 5, 50)
    assert adjusted_price(1000 * 10_000, Ratio(1, 10)) == 10_000 * 10_000
    assert adjusted_price(1_000_001, Ratio(2, 1)) == 500_001  # half a unit rounds up (nearest)


def test_entries_balance_and_move_only_the_holder_and_the_issuer() -> None:
    h = scale(15, Ratio(1, 10), 1000 * 10_000)
    lines = holder_entries("alice", "XYZ", h)
    assert {(e.user_id, e.account, e.asset, e.amount) for e in lines} == {
        ("alice", "shares", "XYZ", -14), (HOUSE, ISSUER, "XYZ", 14), ("alice", "cash", USD, 50),
        (HOUSE, ISSUER, USD, -50)}
    house = house_entries("XYZ", scale(7, Ratio(3, 2), 0))
    assert {(e.account, e.amount) for e in house} == {("fractional", 3), (ISSUER, -3)}


ratios = st.builds(lambda n, m: parse_ratio(f"{n}:{m}") if n != m else Ratio(2, 1),
                   st.integers(1, 50), st.integers(1, 50))


@settings(max_examples=300, deadline=None)
@given(positions=st.lists(st.integers(0, 10**6 * S), min_size=1, max_size=30), ratio=ratios,
       price=st.integers(1, 10**8))
def test_shares_scale_exactly_and_no_value_is_created_or_lost(positions: list[int], ratio: Ratio,
                                                              price: int) -> None:
    holdings = [scale(q, ratio, price) for q in positions]
    for q, h in zip(positions, holdings, strict=True):
        exact = Fraction(q * ratio.new, ratio.old)
        # each holder gets the exact scaled quantity rounded down to the millionth, the rest as r/M millionths
        assert h.new_qty == int(exact) and Fraction(h.remainder, ratio.old) == exact - h.new_qty
        assert 0 <= h.remainder < ratio.old
        # cash-in-lieu: the remainder at the split-adjusted price, rounded down, short by less than a unit
        owed = Fraction(h.remainder, ratio.old * S) * Fraction(price * ratio.old, ratio.new)
        assert h.cash_in_lieu <= owed < h.cash_in_lieu + 1
        if not needs_price(ratio):
            assert h.remainder == 0 and h.cash_in_lieu == 0
    # scaled total = what the holders hold now plus the remainders paid out, exactly
    assert Fraction(sum(positions) * ratio.new, ratio.old) == \
        sum(h.new_qty for h in holdings) + sum(Fraction(h.remainder, ratio.old) for h in holdings)
    # the journal: every transaction balances per asset, the issuer is the only other side
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    for h in holdings:
        for e in holder_entries("u", "XYZ", h):
            totals[(e.user_id, e.account, e.asset)] += e.amount
    assert totals[("u", "shares", "XYZ")] == sum(h.new_qty - h.old_qty for h in holdings)
    assert totals[("u", "shares", "XYZ")] + totals[(HOUSE, ISSUER, "XYZ")] == 0
    assert totals[("u", "cash", USD)] == sum(h.cash_in_lieu for h in holdings) == -totals[(HOUSE, ISSUER, USD)]


@settings(max_examples=200, deadline=None)
@given(qty=st.integers(1, 10**6 * S), cost=st.integers(1, 10**12), ratio=ratios)
def test_average_price_scales_by_m_over_n_when_the_basis_is_kept(qty: int, cost: int, ratio: Ratio) -> None:
    # the basis is not touched, so the average price per share moves by exactly M/N (up to the millionth's floor)
    h = scale(qty, ratio, 0)
    if h.new_qty:
        before, after = Fraction(cost, qty), Fraction(cost, h.new_qty)
        exact_after = before * Fraction(ratio.old, ratio.new)
        assert after >= exact_after
        if h.remainder == 0:
            assert after == exact_after


def test_prices_scale_to_the_tick_never_against_the_user() -> None:
    assert tick(10_000) == 100 and tick(9_999) == 1
    assert scale_price(1_000_100, Ratio(2, 1), up=False) == 500_000   # $100.01 / 2 = $50.005: a buy's $50.00
    assert scale_price(1_000_100, Ratio(2, 1), up=True) == 500_100    # a sell's $50.01
    assert scale_price(15_000, Ratio(2, 1), up=True) == 7_500         # $0.75: below $1 the tick is $0.0001
    assert scale_price(1, Ratio(2, 1), up=False) == 0                 # nothing left: the order is cancelled
    assert rescale(OrderTerms("buy", S, 1), Ratio(2, 1)) is None
    assert rescale(OrderTerms("buy", S, 10_000, notional=100), Ratio(2, 1)) is None  # priced pre-split
    assert rescale(OrderTerms("sell", 3 * S, 10_000), Ratio(1, 4)) is None  # 0.75 of a whole-share order
    kept = rescale(OrderTerms("sell", 3 * S + 1, 10_000), Ratio(1, 4))  # a fractional order stays fractional
    assert kept is not None and kept.qty == 750_000


terms = st.builds(
    OrderTerms, side=st.sampled_from(["buy", "sell"]),
    qty=st.one_of(st.integers(1, 10**4).map(lambda n: n * S), st.integers(1, 10**4 * S)),
    limit_price=st.one_of(st.none(), st.integers(1, 10**8)), stop_price=st.one_of(st.none(), st.integers(1, 10**8)),
    reserve=st.integers(1, 10**8))


@settings(max_examples=500, deadline=None)
@given(order=terms, ratio=ratios)
def test_a_rescaled_order_is_never_worse_for_the_user_nor_holds_more(order: OrderTerms, ratio: Ratio) -> None:
    if order.side == "buy" and order.limit_price is not None:
        order = OrderTerms("buy", order.qty, order.limit_price, order.stop_price, order.limit_price)
    new = rescale(order, ratio)
    if new is None:
        return
    k = Fraction(ratio.new, ratio.old)
    assert new.qty <= order.qty * k and (order.qty % S or new.qty % S == 0)
    assert order.qty * k - new.qty < (S if order.qty % S == 0 else 1)
    if order.limit_price is not None:
        exact = order.limit_price / k
        assert new.limit_price is not None and abs(new.limit_price - exact) < 100
        assert new.limit_price <= exact if order.side == "buy" else new.limit_price >= exact
    if order.stop_price is not None:
        exact = order.stop_price / k
        assert new.stop_price is not None and abs(new.stop_price - exact) < 100
        assert new.stop_price >= exact if order.side == "buy" else new.stop_price <= exact
    if order.side == "buy":  # the cash held for the new order never exceeds the old hold: no money created
        assert buy_hold(new.qty, new.reserve) <= buy_hold(order.qty, order.reserve)
