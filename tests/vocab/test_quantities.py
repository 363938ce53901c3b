from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab.quantities import QTY_SCALE, format_qty, parse_qty, shares, whole_shares


def test_quantities_read_and_render_exactly() -> None:
    assert parse_qty("0.5") == 500_000 and parse_qty("100") == shares(100) and parse_qty("1.000001") == 1_000_001
    assert parse_qty(".25") == 250_000 and parse_qty("2.5000000") == 2_500_000
    assert format_qty(1_500_000) == "1.5" and format_qty(shares(100)) == "100" and format_qty(1) == "0.000001"
    assert whole_shares(1_999_999) == 1 and QTY_SCALE == 1_000_000


@pytest.mark.parametrize("text", ["", ".", "-1", "+1", "1e3", "0.0000001", "1.2.3", " 1", "١٢", "1,5", "1.5\n"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_qty(text)


@given(st.integers(0, 10**15))
def test_format_then_parse_is_the_identity(qty: int) -> None:
    assert parse_qty(format_qty(qty)) == qty
