"""Fixed-point prices: ITCH ``Price (4)`` integers with 4 implied decimals, rendered and parsed exactly.

Floats never touch a price: 1892500 is $189.2500 and is shown as the string "189.2500". The ledger's money
uses the same scale (1/10,000 of a dollar), so the same two functions serve it. One parser for every edge
(HTTP bodies, Redis hashes, FIX fields, the command line), with one rule: an optional ``-``, digits with an
optional decimal point, at most 4 significant decimals (further decimals only if they are zeros), nothing
else (no spaces, no ``+``, no exponent).
"""

from __future__ import annotations

import re

PRICE_SCALE = 10_000
# re.ASCII: without it \d also matches "١٢٣" (Arabic-Indic digits), which int() would then happily read as 123;
# \Z, not $: "$" also matches before a final newline.
_PRICE_RE = re.compile(r"^(-?)(\d{0,18})(?:\.(\d*))?\Z", re.ASCII)


def format_price(price: int) -> str:
    """Render a 4-implied-decimal integer price as an exact decimal string: 1892500 -> "189.2500"."""
    sign = "-" if price < 0 else ""
    whole, frac = divmod(abs(int(price)), PRICE_SCALE)
    return f"{sign}{whole}.{frac:04d}"


def parse_price(text: str) -> int:
    """A decimal string as a 4-implied-decimal integer, exactly: "189.25" -> 1892500; ``ValueError`` otherwise."""
    m = _PRICE_RE.match(text)
    if m is None or not (m.group(2) or m.group(3)):
        raise ValueError(f"not a decimal price: {text!r}")
    sign, whole, frac = m.group(1), m.group(2) or "0", m.group(3) or ""
    if len(frac) > 4:
        if frac[4:].strip("0"):
            raise ValueError(f"price with more than 4 decimals: {text!r}")
        frac = frac[:4]
    value = int(whole) * PRICE_SCALE + int(frac.ljust(4, "0"))
    return -value if sign else value
