"""Fixed-point quantities: shares in millionths (``QTY_SCALE``), rendered and parsed exactly.

One share is ``QTY_SCALE`` = 1,000,000 units, so a fractional order of 0.5 shares is 500000 and 100 shares is
100000000. Floats never touch a quantity. The text form is the shortest exact decimal ("100", "0.5",
"1.000001"); the parser takes a whole number or a decimal string with at most 6 decimals (further decimals only
if they are zeros), ASCII digits only, no sign, no exponent, no spaces. The ledger's money stays at
``vocab.prices.PRICE_SCALE``: the cost of ``qty`` units at ``price`` is ``qty * price / QTY_SCALE`` money units,
rounded by the ledger's rule (order_api/ledger.py).
"""

from __future__ import annotations

import re

QTY_SCALE = 1_000_000
QTY_DECIMALS = 6
_QTY_RE = re.compile(r"^(\d{0,18})(?:\.(\d*))?\Z", re.ASCII)


def format_qty(qty: int) -> str:
    """Render a quantity in millionths as the shortest exact decimal: 1500000 -> "1.5", 100000000 -> "100"."""
    sign = "-" if qty < 0 else ""
    whole, frac = divmod(abs(int(qty)), QTY_SCALE)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


def parse_qty(text: str) -> int:
    """A decimal quantity string as millionths, exactly: "1.5" -> 1500000; ``ValueError`` otherwise (a sign,
    more than 6 significant decimals, anything but ASCII digits and one point)."""
    m = _QTY_RE.match(text)
    if m is None or not (m.group(1) or m.group(2)):
        raise ValueError(f"not a decimal quantity: {text[:40]!r}")
    whole, frac = m.group(1) or "0", m.group(2) or ""
    if len(frac) > QTY_DECIMALS:
        if frac[QTY_DECIMALS:].strip("0"):
            raise ValueError(f"quantity with more than {QTY_DECIMALS} decimals: {text[:40]!r}")
        frac = frac[:QTY_DECIMALS]
    return int(whole) * QTY_SCALE + int(frac.ljust(QTY_DECIMALS, "0"))


def whole_shares(qty: int) -> int:
    """The whole shares in a quantity, truncated (what clients that know only whole shares are shown)."""
    return int(qty) // QTY_SCALE


def shares(n: int) -> int:
    """``n`` whole shares as a quantity."""
    return int(n) * QTY_SCALE
