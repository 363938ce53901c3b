"""The reference a delivery over real sockets is checked against: books built from the generated stream itself.

Loopback UDP may drop datagrams on a loaded machine, so no test assumes a lossless line: the sender's own
simulator keeps every message it generates, and what arrived is compared with that.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ingest import itch
from normalize import Books
from venue.simulator import ExchangeSimulator

FIELDS = ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume", "halted")


class RecordingSimulator(ExchangeSimulator):
    """The exchange simulator, keeping every message it generates (``log``), in order."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.log: list[bytes] = []

    def generate_encoded(self, n: int) -> list[bytes]:
        out = super().generate_encoded(n)
        self.log += out
        return out

    def books(self) -> Books:
        books = Books()
        books.apply_batch([itch.decode(m) for m in self.log])
        return books


def assert_same_books(got: Any, want: Books, fields: tuple[str, ...] = FIELDS) -> None:
    """Column by column, then order by order (``got`` may be any book implementation with ``live_orders``)."""
    for name in fields:
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert got.live_orders() == want.live_orders()
