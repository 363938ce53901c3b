"""ASCII-only integer parsing: every other script's digits, signs, spaces and huge numbers are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab.digits import is_ascii_digits, parse_uint


@pytest.mark.parametrize("text", ["", "²", "١٢", "１２", "+1", "-1", " 1", "1 ", "1_000", "1.0", "0x10", "1\x00",
                                  "9" * 20])
def test_anything_but_ascii_digits_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_uint(text)


def test_ascii_digits_parse() -> None:
    assert parse_uint("0") == 0 and parse_uint("0042") == 42 and parse_uint("9" * 19) == 10**19 - 1


@given(st.text(max_size=30))
def test_parse_uint_accepts_exactly_ascii_digit_strings(text: str) -> None:
    ok = is_ascii_digits(text) and len(text) <= 19
    try:
        value = parse_uint(text)
    except ValueError:
        assert not ok
    else:
        assert ok and value == int(text) and all(c in "0123456789" for c in text)
