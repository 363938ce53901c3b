"""``BookSource``: the read side of the books, as the edges (fan-out, snapshots, metrics) see it.

Both an in-process ``Books`` and a ``BookView`` over shared memory satisfy it, so the edges are written once.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from .trades import TradePrints


class BookSource(Protocol):
    bid_price: npt.NDArray[np.int64]
    bid_size: npt.NDArray[np.int64]
    ask_price: npt.NDArray[np.int64]
    ask_size: npt.NDArray[np.int64]
    last_price: npt.NDArray[np.int64]
    last_size: npt.NDArray[np.int64]
    volume: npt.NDArray[np.int64]
    exchange_time: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]
    depth_seq: npt.NDArray[np.int64]
    halted: npt.NDArray[np.bool_]
    stale: npt.NDArray[np.bool_]
    known: npt.NDArray[np.bool_]
    symbol_of: list[str | None]
    locate_of: dict[str, int]
    high_locate: int
    counters: dict[str, int]

    @property
    def trades_total(self) -> int: ...

    def levels(self, locate: int, side: int, n: int) -> list[tuple[int, int]]: ...

    def trades_since(self, cursor: int) -> tuple[TradePrints, int, int]: ...
