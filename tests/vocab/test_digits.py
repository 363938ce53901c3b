"""ASCII digits only, at every edge: the characters Python's own checks let through are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab.digits import MAX_DIGITS, is_ascii_digits, parse_ascii_int
from vocab.prices import parse_price


@pytest.mark.parametrize("text", ["²", "1²", "١٢", "１２", " 12", "12 ", "+12", "-1", "1_2", "", "12\n", "0x1"])
def test_what_int_or_isdigit_would_take_is_refused(text: str) -> None:
    assert not is_ascii_digits(text)
    with pytest.raises(ValueError):
        parse_ascii_int(text)


def test_plain_digits_and_bytes() -> None:
    assert parse_ascii_int("0") == 0 and parse_ascii_int("0042") == 42 and parse_ascii_int(b"17") == 17
    assert parse_ascii_int("9" * MAX_DIGITS) == int("9" * MAX_DIGITS)
    with pytest.raises(ValueError):
        parse_ascii_int("9" * (MAX_DIGITS + 1))  # refused before int() (which balks at 4,300 digits) sees it
    assert not is_ascii_digits(b"\xb2")  # superscript two in latin-1


@given(st.text(max_size=25))
def test_never_raises_anything_but_value_error_and_agrees_with_the_rule(text: str) -> None:
    ok = 0 < len(text) <= MAX_DIGITS and all("0" <= c <= "9" for c in text)
    assert is_ascii_digits(text) is ok
    try:
        assert parse_ascii_int(text) == int(text)
    except ValueError:
        assert not ok


@pytest.mark.parametrize("text", ["١٩٠", "١٩٠.٥", "190.5\n", "１９０"])
def test_prices_take_ascii_digits_only(text: str) -> None:
    # before: parse_price("١٩٠") == 1_900_000 (a limit price typed in Arabic-Indic digits was accepted)
    with pytest.raises(ValueError):
        parse_price(text)
