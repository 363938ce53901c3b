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
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from .bar_types import BOOL, I64, SECOND, UPDATE, Bar, Emitted, breaks_from_ring, count_of, from_prints
from .bars import BarBuilder
from .trades import TradePrints, no_prints

__all__ = ["BarFeed", "BarLog", "BarSource", "PrintSource"]

_NO_BREAKS = no_prints()
_NONE: I64 = np.zeros(0, np.int64)
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

    def bars_since_watched(self, cursor: int, watched: BOOL, *, newest_updates: bool = False
                           ) -> tuple[list[tuple[int, Bar]], int, int]:
        """``bars_since``, only the watched (interval, locate)s, with log positions (``BarLog.since_watched``)."""
        ...

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


class _Chunk(NamedTuple):
    start: int  # log position of its first bar
    parts: list[Emitted]  # bars, and blocks of them as columns, turned into ``Bar``s only when read
    size: int


class BarLog:
    """Emitted bars in order, the last ``capacity`` of them, read by cursor (writers never wait).

    A pump's open bars, and the finals of a second's end, are kept as the builder's columns (``OpenBars``,
    ``FinalBars``): most of them are for symbols nobody watches, so they become ``Bar`` rows only when a
    reader takes them (``since``), or only the watched ones (``since_watched``: the fan-out)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"bar log capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.total = 0
        self._chunks: deque[_Chunk] = deque()
        self._kept = 0

    def extend(self, parts: Sequence[Emitted], size: int | None = None) -> None:
        """Append a pump's emissions (``size``: their bar count, if the caller has it)."""
        if size is None:
            size = count_of(parts)
        if not size:
            return
        self._chunks.append(_Chunk(self.total, list(parts), size))
        self.total += size
        self._kept += size
        while self._kept - self._chunks[0].size >= self.capacity:
            self._kept -= self._chunks.popleft().size

    def _parts(self, cursor: int) -> tuple[list[tuple[int, Emitted, int]], int, int]:
        """The parts holding positions from ``cursor`` on: (position of the part's first bar, part, bars of it
        to skip); (parts, new cursor, lost). A cursor from the future reads nothing and is reset to ``total``."""
        total = self.total
        cursor = max(0, min(cursor, total))
        if cursor == total:
            return [], total, 0
        first = self._chunks[0].start if self._chunks else total
        lost = max(0, first - cursor)
        cursor += lost
        picked: list[_Chunk] = []
        for chunk in reversed(self._chunks):
            if chunk.start + chunk.size <= cursor:
                break
            picked.append(chunk)
        out: list[tuple[int, Emitted, int]] = []
        for chunk in reversed(picked):
            pos = chunk.start
            for part in chunk.parts:
                n = 1 if isinstance(part, Bar) else part.size
                if pos + n > cursor:
                    out.append((pos, part, max(0, cursor - pos)))
                pos += n
        return out, total, lost

    def since(self, cursor: int) -> tuple[list[Bar], int, int]:
        """Bars emitted at or after ``cursor``: (bars, new cursor, bars lost to the bound)."""
        parts, total, lost = self._parts(cursor)
        out: list[Bar] = []
        for _, part, skip in parts:
            if isinstance(part, Bar):
                out.append(part)
            else:
                out += part.rows(slice(skip, None) if skip else None)
        return out, total, lost

    def since_watched(self, cursor: int, watched: BOOL, *, newest_updates: bool = False
                      ) -> tuple[list[tuple[int, Bar]], int, int]:
        """``since``, only the bars whose (interval, locate) is watched (``watched[INTERVALS.index(interval),
        locate]``), each with its log position. ``newest_updates``: of the open-bar blocks' updates, only each
        (interval, locate)'s newest in the range (a reader that conflates loses nothing: an update followed by
        a newer one is never sent)."""
        parts, total, lost = self._parts(cursor)
        picks: list[I64] = []
        for _, part, skip in parts:
            if isinstance(part, Bar):
                picks.append(_NONE)
                continue
            hit = np.flatnonzero(watched[(part.interval_ns != SECOND).view(np.int8), part.locate])
            picks.append(hit[hit >= skip] if skip else hit)
        if newest_updates:
            self._newest_only(parts, picks)
        out: list[tuple[int, Bar]] = []
        w0, w1 = watched[0].data, watched[1].data
        for (pos, part, _), hit in zip(parts, picks, strict=True):
            if isinstance(part, Bar):
                if (w0 if part.interval_ns == SECOND else w1)[part.locate]:
                    out.append((pos, part))
            elif hit.size:
                out += zip((pos + hit).tolist(), part.rows(hit), strict=True)
        return out, total, lost

    @staticmethod
    def _newest_only(parts: list[tuple[int, Emitted, int]], picks: list[I64]) -> None:
        blocks = [i for i, (_, part, _) in enumerate(parts) if not isinstance(part, Bar) and part.state == UPDATE]
        if len(blocks) < 2:
            return
        keys = []
        for i in blocks:
            part = parts[i][1]
            assert not isinstance(part, Bar)
            hit = picks[i]
            keys.append(part.locate[hit] * 2 + (part.interval_ns[hit] != SECOND))
        key = np.concatenate(keys)[::-1]
        _, last = np.unique(key, return_index=True)  # first in reverse: the newest of each key
        keep = np.zeros(key.shape[0], np.bool_)
        keep[last] = True
        keep = keep[::-1]
        at = 0
        for i in blocks:
            n = int(picks[i].shape[0])
            picks[i] = picks[i][keep[at:at + n]]
            at += n


class LoggedBars:
    """The reads of a ``BarSource`` that come straight from its ``BarLog`` (``self.log``)."""

    log: BarLog

    @property
    def bars_total(self) -> int:
        return self.log.total

    def bars_since(self, cursor: int) -> tuple[list[Bar], int, int]:
        return self.log.since(cursor)

    def bars_since_watched(self, cursor: int, watched: BOOL, *, newest_updates: bool = False
                           ) -> tuple[list[tuple[int, Bar]], int, int]:
        return self.log.since_watched(cursor, watched, newest_updates=newest_updates)


class BarFeed(LoggedBars):
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
            out: list[Emitted] = []
            for row in zip(prints.locate.tolist(), prints.exchange_time.tolist(), prints.price.tolist(),
                           prints.size.tolist(), prints.match_number.tolist(), strict=True):
                out += b.add_print_parts(row[0], row[1] + off, row[2], row[3], row[4])
            for loc, t, m in zip(breaks.locate.tolist(), breaks.exchange_time.tolist(),
                                 breaks.match_number.tolist(), strict=True):
                out += b.add_break_parts(loc, t + off, m)
        else:
            batch = b.apply(from_prints(prints, off), breaks_from_ring(breaks, off))
            return self._emit([*batch.closed, batch.open])
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
        return n + self._emit(self.builder.close_until_columns(self.feed_clock()))

    def close_until(self, now_ns: int) -> int:
        """Pump, then close every bar that ends by ``now_ns`` (on the bars' time line)."""
        n = self.pump()
        return n + self._emit(self.builder.close_until_columns(now_ns))

    def _emit(self, parts: Sequence[Emitted]) -> int:
        n = count_of(parts)
        self.log.extend(parts, n)
        self.feed_counters["bars_emitted"] += n
        return n

    # ------------------------------------------------------------------ reading (BarSource)
    def history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        return self.builder.history(locate, interval_ns, limit)

    async def fetch_history(self, locate: int, interval_ns: int, limit: int) -> list[Bar]:
        return self.builder.history(locate, interval_ns, limit)

    @property
    def bars_kept(self) -> int:
        return self.builder.bars_kept

    @property
    def counters(self) -> dict[str, int]:
        """The builder's counters (``normalize.bar_messages.COUNTER_NAMES``) and this feed's."""
        return {**self.builder.counters, **self.feed_counters}
