"""Bars on a node: the pure builder (``normalize.bars``) fed from a book's trade and broken-trade rings.

``BarFeed`` is what ingest runs after each packet (per-message ``Books``) or batch (``KernelBooks``): it reads
the prints and breaks recorded since its cursors (``trades_since``/``breaks_since``, so both engines feed it
the same way and neither engine knows about bars) and hands them to one ``BarBuilder``: a handful of prints
go through ``add_print`` (plain Python, no numpy fixed cost), more through the vectorised ``apply``.
``close_until`` on a timer, driven by the feed's own clock (the latest exchange time of any book row, never
the host's), closes the bars of quiet symbols.

Times: the builder works on epoch nanoseconds: every print's exchange time plus ``time_offset``. A node's
books store epoch times already (``Books.set_session_date``), so ``tickfan.roles`` gives 0; books without a
session date (ITCH's ns since midnight) need their date's ``vocab.clock.eastern_midnight_ns``.

What the feed emitted is kept in a bounded log (``bars_since(cursor)``, like the trade ring): each pump's
closed bars (final, revised) then the open bars it touched (update). The fan-out, the Redis publisher and
anything else read it with their own cursors; a reader that falls more than ``log_size`` bars behind is
told how many it lost. ``BarSource`` is that read side plus the history, as the edges see it.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .bars import Bar, BarBuilder, breaks_from_ring, from_prints
from .trades import TradePrints, no_prints

__all__ = ["BarFeed", "BarLog", "BarSource", "PrintSource"]

_NO_BREAKS = no_prints()
SMALL_PUMP = 16  # up to this many prints a pump goes through ``add_print`` (numpy costs ~0.1 ms a call)


class PrintSource(Protocol):
    """What a bar feed reads from books: the trade and broken-trade rings, and the exchange clock."""

    exchange_time: npt.NDArray[np.int64]
    high_locate: int

    @property
    def trades_total(self) -> int: ...

    @property
    def breaks_total(self) -> int: ...

    def trades_since(self, cursor: int) -> tuple[TradePrints, int, int]: ...

    def breaks_since(self, cursor: int) -> tuple[TradePrints, int, int]: ...


class BarSource(Protocol):
    """The read side of bars, as the edges see it (an in-process ``BarFeed``, or a replica's)."""

    @property
    def bars_total(self) -> int: ...

    def bars_since(self, cursor: int) -> tuple[list[Bar], int, int]: ...

    def history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        """Up to ``limit`` newest bars held here, oldest first (what a subscription's snapshot is made of)."""
        ...

    async def fetch_history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        """``history``, from wherever the full history lives (``GET /v1/bars``)."""
        ...

    @property
    def bars_kept(self) -> int: ...

    @property
    def counters(self) -> dict[str, int]: ...


class BarLog:
    """Emitted bars in order, the last ``capacity`` of them, read by cursor (writers never wait)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"bar log capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.total = 0
        self._chunks: deque[tuple[int, list[Bar]]] = deque()  # (position of the first bar, bars)
        self._kept = 0

    def extend(self, bars: list[Bar]) -> None:
        if not bars:
            return
        self._chunks.append((self.total, bars))
        self.total += len(bars)
        self._kept += len(bars)
        while self._kept - len(self._chunks[0][1]) >= self.capacity:
            self._kept -= len(self._chunks.popleft()[1])

    def since(self, cursor: int) -> tuple[list[Bar], int, int]:
        """Bars emitted at or after ``cursor``: (bars, new cursor, bars lost to the bound). A cursor from the
        future reads nothing and is reset to ``total``."""
        total = self.total
        cursor = max(0, min(cursor, total))
        if cursor == total:
            return [], total, 0
        first = self._chunks[0][0] if self._chunks else total
        lost = max(0, first - cursor)
        cursor += lost
        picked: list[list[Bar]] = []
        for start, bars in reversed(self._chunks):
            if start + len(bars) <= cursor:
                break
            picked.append(bars[cursor - start:] if start < cursor else bars)
        out = [b for chunk in reversed(picked) for b in chunk]
        return out, total, lost


class BarFeed:
    """One ``BarBuilder`` fed from ``books``' rings; its emissions kept for the edges. See the module docstring."""

    def __init__(self, books: PrintSource, *, time_offset: int = 0, history_1s: int = 3_600,
                 history_1m: int = 390, print_log: int = 1 << 20, log_size: int = 1 << 16) -> None:
        self.books = books
        self.time_offset = time_offset
        self.builder = BarBuilder(history_1s=history_1s, history_1m=history_1m, print_log=print_log)
        self.log = BarLog(log_size)
        self._trades = books.trades_total
        self._breaks = books.breaks_total
        # prints (or breaks) that left the book's ring before this feed read them: missing from the bars
        self.feed_counters: dict[str, int] = {"prints_lost": 0, "breaks_lost": 0, "pumps": 0, "bars_emitted": 0}

    # ------------------------------------------------------------------ writing
    def pump(self) -> int:
        """Take the prints and breaks the books recorded since the last pump; returns the bars emitted."""
        books = self.books
        if books.trades_total == self._trades and books.breaks_total == self._breaks:
            return 0
        prints, self._trades, lost = books.trades_since(self._trades)
        if books.breaks_total != self._breaks:
            breaks, self._breaks, lost_b = books.breaks_since(self._breaks)
        else:  # almost every packet: no break, no copy
            breaks, lost_b = _NO_BREAKS, 0
        c = self.feed_counters
        c["pumps"] += 1
        if lost or lost_b:
            c["prints_lost"] += lost
            c["breaks_lost"] += lost_b
        b = self.builder
        off = self.time_offset
        n = int(prints.locate.shape[0])
        if n <= SMALL_PUMP:
            out: list[Bar] = []
            for row in zip(prints.locate.tolist(), prints.exchange_time.tolist(), prints.price.tolist(),
                           prints.size.tolist(), prints.match_number.tolist(), strict=True):
                out += b.add_print(row[0], row[1] + off, row[2], row[3], row[4])
            for loc, t, m in zip(breaks.locate.tolist(), breaks.exchange_time.tolist(),
                                 breaks.match_number.tolist(), strict=True):
                out += b.add_break(loc, t + off, m)
        else:
            out = b.apply(from_prints(prints, off), breaks_from_ring(breaks, off)).rows()
        return self._emit(out)

    def feed_clock(self) -> int:
        """The feed's clock on the bars' time line: the latest exchange time of any book row, plus the offset."""
        books = self.books
        high = books.high_locate
        if high <= 0:
            return self.builder.now
        return int(books.exchange_time[: high + 1].max()) + self.time_offset

    def tick(self) -> int:
        """Pump, then close every bar the feed's clock has passed (quiet symbols' bars); the timer's call."""
        n = self.pump()
        return n + self._emit(self.builder.close_until(self.feed_clock()))

    def close_until(self, now_ns: int) -> int:
        """Pump, then close every bar that ends by ``now_ns`` (on the bars' time line)."""
        n = self.pump()
        return n + self._emit(self.builder.close_until(now_ns))

    def _emit(self, bars: list[Bar]) -> int:
        self.log.extend(bars)
        self.feed_counters["bars_emitted"] += len(bars)
        return len(bars)

    # ------------------------------------------------------------------ reading (BarSource)
    @property
    def bars_total(self) -> int:
        return self.log.total

    def bars_since(self, cursor: int) -> tuple[list[Bar], int, int]:
        return self.log.since(cursor)

    def history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        return self.builder.history(locate, interval_ns, limit)

    async def fetch_history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        return self.builder.history(locate, interval_ns, limit)

    @property
    def bars_kept(self) -> int:
        return self.builder.bars_kept

    @property
    def counters(self) -> dict[str, int]:
        """The builder's counters (``normalize.bars.COUNTER_NAMES``) and this feed's."""
        return {**self.builder.counters, **self.feed_counters}
