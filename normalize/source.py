"""``BookSource``: the read side of the books, as the edges (fan-out, snapshots, metrics, replicas) see it.

The published row (``normalize.row.BookRow``, trading status included) plus names, counters, the market-wide
status, depth and trade prints. An in-process
``Books``, a ``BookView`` over shared memory and a ``RedisBooks`` fed from Redis all satisfy it, so the edges
are written once.
"""

from __future__ import annotations

from typing import Protocol

from .row import I64, BookRow
from .status import StatusEvent
from .trades import TradePrints


class BookSource(BookRow, Protocol):
    symbol_of: list[str | None]
    locate_of: dict[str, int]
    high_locate: int
    counters: dict[str, int]
    market: I64  # the market-wide trading status (``normalize.status``)

    @property
    def trades_total(self) -> int: ...

    def levels(self, locate: int, side: int, n: int) -> list[tuple[int, int]]: ...

    def trades_since(self, cursor: int) -> tuple[TradePrints, int, int]: ...

    @property
    def status_total(self) -> int: ...

    def status_since(self, cursor: int) -> tuple[list[StatusEvent], int, int]: ...
