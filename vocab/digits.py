"""Whole numbers from text that came from outside (the wire, a query string, a Redis hash, a flag): ASCII digits only.

Python's own checks are wider than any protocol we speak: ``str.isdigit()`` is true for ``"²"`` (which ``int()``
then refuses with a ValueError, inside code promised never to raise), and ``int()`` accepts ``"١٢"`` (Arabic-Indic
digits), ``" 12 "``, ``"+12"`` and ``"1_2"``. Every parser of counts, sequence numbers, tags and sizes uses these
two functions instead, so one rule holds at every edge: ``0-9`` only, at least one, at most ``max_digits``.
"""

from __future__ import annotations

_ASCII_DIGITS = frozenset("0123456789")
MAX_DIGITS = 19  # an int64's width; longer digit strings are refused before int() sees them


def is_ascii_digits(text: str | bytes, max_digits: int = MAX_DIGITS) -> bool:
    """True when ``text`` is 1..``max_digits`` characters, each one of ``0123456789``."""
    if isinstance(text, (bytes, bytearray)):
        return 0 < len(text) <= max_digits and text.isdigit()  # bytes.isdigit() is ASCII-only
    return 0 < len(text) <= max_digits and _ASCII_DIGITS.issuperset(text)


def parse_ascii_int(text: str | bytes, max_digits: int = MAX_DIGITS) -> int:
    """The non-negative integer ``text`` spells in ASCII digits; ``ValueError`` naming it for anything else."""
    if not is_ascii_digits(text, max_digits):
        raise ValueError(f"not a whole number of at most {max_digits} ASCII digits: {text[:40]!r}")
    return int(text)
