"""The one price parser and formatter: exact, no floats, one rule for every edge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab.prices import format_price, parse_price


@pytest.mark.parametrize("text,value", [
    ("189.2500", 1892500), ("189.25", 1892500), ("189", 1890000), ("0.0001", 1), ("189.250000", 1892500),
    ("-1.5", -15000), (".5", 5000), ("7.", 70000),
])
def test_parse_price(text: str, value: int) -> None:
    assert parse_price(text) == value


@pytest.mark.parametrize("text", ["", "-", ".", "1e5", "189.25001", "1,5", "abc", " 1.0", "+1", "1.2.3", "nan",
                                  "١٢.5", "²", "1.5\n", "1\x00"])
def test_parse_price_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_price(text)


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_price_round_trip(value: int) -> None:
    assert parse_price(format_price(value)) == value
