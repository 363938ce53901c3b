"""ASCII digits only: the one rule for every integer a client or a counterparty writes in text.

Python's ``int()``, ``str.isdigit()`` and the regex ``\\d`` accept every Unicode digit (``int("١٢")`` is 12,
``"²".isdigit()`` is True but ``int("²")`` raises), and ``int()`` also takes spaces, ``_`` and a sign. An edge
that parses user input with them either accepts text that no other hop reads the same way, or raises where it
promised a clear error. ``parse_uint`` takes ``[0-9]+`` and nothing else, bounded in length before any
conversion (so a ten-thousand-digit number costs nothing), and raises ``ValueError`` with a message for the
client. Pure.
"""

from __future__ import annotations

DIGITS = frozenset("0123456789")
MAX_DIGITS = 19  # an int64 has at most 19 digits; longer is refused before int() sees it


def is_ascii_digits(text: str) -> bool:
    """``text`` is one or more ASCII digits, nothing else."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_uint(text: str, *, max_digits: int = MAX_DIGITS) -> int:
    """A non-negative integer written in ASCII digits only (no sign, spaces, ``_`` or other scripts' digits)."""
    if len(text) > max_digits:
        raise ValueError(f"at most {max_digits} digits")
    if not is_ascii_digits(text):
        raise ValueError("ASCII digits 0-9 only")
    return int(text)
