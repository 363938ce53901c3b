"""Fixed-point prices: ITCH ``Price (4)`` integers with 4 implied decimals, rendered exactly.

Floats never touch a price: 1892500 is $189.2500 and is shown as the string "189.2500".
"""

from __future__ import annotations

PRICE_SCALE = 10_000


def format_price(price: int) -> str:
    """Render a 4-implied-decimal integer price as an exact decimal string."""
    sign = "-" if price < 0 else ""
    whole, frac = divmod(abs(int(price)), PRICE_SCALE)
    return f"{sign}{whole}.{frac:04d}"


def parse_price(text: str) -> int:
    """Parse a decimal string with at most 4 decimals into a 4-implied-decimal integer (exact, no floats)."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    if s[:1] in "+-":
        s = s[1:]
    whole, _, frac = s.partition(".")
    if not (whole.isdigit() or (whole == "" and frac)) or (frac and not frac.isdigit()) or len(frac) > 4:
        raise ValueError(f"not a price with at most 4 decimals: {text!r}")
    return sign * (int(whole or "0") * PRICE_SCALE + int(frac.ljust(4, "0") or "0"))
