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


@pytest.mark.parametrize("text", ["", "²", "١٢", "１２", "+1", "-1", " 1", "1 ", "1_000", "1.0", "0x10", "1\x00",
                                  "9" * 20])
def test_anything_but_ascii_digits_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ascii_int(text)


def test_ascii_digits_parse_and_long_ones_are_refused() -> None:
    assert parse_ascii_int("0") == 0 and parse_ascii_int("0042") == 42 and parse_ascii_int("9" * 19) == 10**19 - 1


@given(st.text(max_size=30))
def test_parse_ascii_int_accepts_exactly_ascii_digit_strings(text: str) -> None:
    ok = is_ascii_digits(text) and len(text) <= 19
    try:
        value = parse_ascii_int(text)
    except ValueError:
        assert not ok
    else:
        assert ok and value == int(text) and all(c in "0123456789" for c in text)
