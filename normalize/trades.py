"""The trade-print ring: a bounded history of prints in numpy columns, read by cursor.

Writers never wait for readers: the ring keeps the last ``capacity`` prints and a monotonically increasing
``total``. A reader keeps its own cursor (a past ``total``); if it falls more than ``capacity`` behind, the
oldest prints it had not read are gone, and ``since`` says how many (``lost``) instead of blocking anyone.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


class TradePrints(NamedTuple):
    """Prints in the order they happened; each column is a fresh int64 array (safe to keep)."""

    locate: I64
    price: I64
    size: I64
    exchange_time: I64
    match_number: I64
    seq: I64  # the symbol's version that carried this print


class TradeRing:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"trade ring capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.total = 0
        self._cols: tuple[I64, ...] = tuple(np.zeros(capacity, np.int64) for _ in TradePrints._fields)
        # ``ndarray.data`` is a memoryview of the column: it writes one int about twice as fast as numpy's
        # own __setitem__
        self._locate, self._price, self._size, self._time, self._match, self._seq = (c.data for c in self._cols)

    def record(self, locate: int, price: int, size: int, exchange_time: int, match_number: int, seq: int) -> None:
        i = self.total % self.capacity
        self._locate[i] = locate
        self._price[i] = price
        self._size[i] = size
        self._time[i] = exchange_time
        self._match[i] = match_number
        self._seq[i] = seq
        self.total += 1

    def extend(self, prints: TradePrints) -> None:
        """Record many prints at once (in order), vectorised; only the newest ``capacity`` fit."""
        n = int(prints.locate.shape[0])
        cap = self.capacity
        cols = tuple(prints)
        if n > cap:
            cols = tuple(c[n - cap:] for c in cols)
            self.total += n - cap
            n = cap
        pos = (self.total + np.arange(n)) % cap
        for dst, src in zip(self._cols, cols, strict=True):
            dst[pos] = src
        self.total += n

    def since(self, cursor: int) -> tuple[TradePrints, int, int]:
        """Prints recorded at or after ``cursor``: (prints, new cursor, prints lost to the bound).

        A cursor from the future (not a past ``total`` of this ring) reads nothing and is reset to ``total``.
        """
        total, cap = self.total, self.capacity
        cursor = max(0, min(cursor, total))
        lost = max(0, total - cursor - cap)
        cursor += lost
        start, stop = cursor % cap, total % cap
        if cursor == total:
            idx: slice | I64 = slice(0, 0)
        elif start < stop:
            idx = slice(start, stop)
        else:  # wrapped (or exactly one full ring): two runs, gathered in order
            idx = np.concatenate((np.arange(start, cap), np.arange(0, stop))).astype(np.int64)
        return TradePrints(*(c[idx].copy() if isinstance(idx, slice) else c[idx] for c in self._cols)), total, lost
