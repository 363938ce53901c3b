from __future__ import annotations

from ingest.messages import AddOrder, StockDirectory
from normalize import Books

SYMBOLS = ("AAPL", "TSLA", "MSFT")


def make_books() -> Books:
    b = Books()
    for loc, sym in enumerate(SYMBOLS, start=1):
        b.apply(StockDirectory(loc, 0, 1, sym, "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1", "N", 0, "N"))
        b.apply(AddOrder(loc, 0, 2, loc * 100, "B", 100, sym, 1000000 * loc))
        b.apply(AddOrder(loc, 0, 3, loc * 100 + 1, "S", 100, sym, 1000000 * loc + 100))
    return b


_ref = [10_000]


def bump(b: Books, loc: int, price: int, ts: int = 5) -> None:
    """Move the symbol's best bid up: one new version."""
    _ref[0] += 1
    b.apply(AddOrder(loc, 0, ts, _ref[0], "B", 10, SYMBOLS[loc - 1], price))
