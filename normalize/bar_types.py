"""Bars as values (pure): the intervals, a bar and its states, the builder's input columns and output blocks.

A ``Bar`` is one (locate, interval, start) with its OHLCV fields, a ``state`` (``update`` while its interval
is open, ``final`` when it closes, ``revised`` when a closed bar changes later) and a ``version`` (0 for
update and final; each revision one higher). Prices are ITCH ``Price (4)`` integers and ``notional`` the exact
integer sum of price x shares, so ``Bar.vwap`` is exact. Intervals are 1 s and 1 m of int64 ns, on any clock
whose second and minute boundaries are the epoch's; ``interval_index`` turns one into the builder's row
(0 or 1) and refuses any other width.

What a builder emits (``Emitted``) is a ``Bar`` or a block of them as columns (``OpenBars``: state update,
``FinalBars``: state final, version 0), so the common case (a second's end closing every busy symbol's bar)
costs no Python object per bar; ``rows_of``/``count_of`` read either form. ``BarBatch`` is what one batch
emitted. Its input is ``Executions`` and ``Breaks`` (int64 columns in feed order), made from the book's rings
(``from_prints``, ``breaks_from_ring``) or a decoded batch (``breaks_from_columns``).

The limits a print must respect (``MAX_PRICE``, ``MAX_SIZE``, a bar's notional below ``MAX_NOTIONAL``) are
declared here once for both of the builder's paths. No state, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from functools import partial
from itertools import repeat
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ingest.batch import Columns

from .trades import TradePrints

__all__ = ["BOOL", "FINAL", "I64", "INTERVALS", "MAX_LOCATES", "MAX_NOTIONAL", "MAX_PRICE", "MAX_SIZE", "MINUTE",
           "NO_BAR", "REVISED", "SECOND", "UPDATE", "Bar", "BarBatch", "Breaks", "Emitted", "Executions",
           "FinalBars", "OpenBars", "breaks_from_columns", "breaks_from_ring", "count_of", "from_prints",
           "interval_index", "new_bar", "rows_of"]

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

MAX_LOCATES = 65_536
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
INTERVALS = (SECOND, MINUTE)
UPDATE, FINAL, REVISED = "update", "final", "revised"
NO_BAR = np.iinfo(np.int64).min  # a start meaning: no bar yet
MAX_NOTIONAL = 1 << 62
MAX_PRICE = 1 << 32  # ITCH Price (4) is four bytes
MAX_SIZE = 1 << 30  # per print; with MAX_PRICE the product stays below 2**62


def interval_index(interval_ns: int) -> int:
    """The builder's row for an interval: 0 for 1 s, 1 for 1 m; any other width is a ``ValueError``."""
    if interval_ns not in INTERVALS:
        raise ValueError(f"bar interval must be one of {INTERVALS} ns, not {interval_ns}")
    return INTERVALS.index(interval_ns)


class Bar(NamedTuple):
    locate: int
    interval_ns: int
    start_ns: int  # the interval is [start_ns, start_ns + interval_ns)
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int
    notional: int  # sum of price x shares (price in ITCH Price (4) units)
    version: int
    state: str

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.interval_ns

    @property
    def vwap(self) -> Fraction | None:
        """The exact volume-weighted average price in Price (4) units (None for a bar without volume)."""
        return Fraction(self.notional, self.volume) if self.volume else None

    def vwap_price(self, decimals: int = 4) -> int | None:
        """VWAP rounded half-even to ``decimals`` decimal places of a dollar, as an integer (4: Price (4))."""
        v = self.vwap
        return None if v is None else round(v * Fraction(10) ** (decimals - 4))


class Executions(NamedTuple):
    """Printable executions in feed order (builder input): one int64 column each."""

    locate: I64
    time: I64
    price: I64
    size: I64
    match: I64


class Breaks(NamedTuple):
    """Broken trades in feed order: the break's locate, time and the match number it voids."""

    locate: I64
    time: I64
    match: I64


class OpenBars(NamedTuple):
    """Open bars as columns (state ``update``, version 0), one row per (interval, locate)."""

    interval_ns: I64
    locate: I64
    start_ns: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    trades: I64
    notional: I64

    @property
    def state(self) -> str:
        return UPDATE

    @property
    def size(self) -> int:
        """Bars (rows) in the block."""
        return int(self.locate.shape[0])

    def rows(self, which: I64 | slice | None = None) -> list[Bar]:
        """As ``Bar``s (all, or the rows ``which`` picks), built with ``tuple.__new__`` (no constructor frame
        per row: most blocks are never turned into rows at all, see ``normalize.bar_feed.BarLog``)."""
        w, loc, *rest = (col.tolist() if which is None else col[which].tolist() for col in self)
        n = len(loc)
        return list(map(new_bar, zip(loc, w, *rest, repeat(0, n), repeat(self.state, n), strict=True)))


class FinalBars(OpenBars):
    """Bars that closed untouched by a break or a late print, as columns: state ``final``, version 0."""

    __slots__ = ()

    @property
    def state(self) -> str:
        return FINAL


Emitted = Bar | OpenBars  # one bar, or a block of them as columns (``OpenBars``, ``FinalBars``)


def rows_of(parts: Iterable[Emitted]) -> list[Bar]:
    """Emitted parts as ``Bar``s, in order."""
    out: list[Bar] = []
    for part in parts:
        if isinstance(part, Bar):
            out.append(part)
        else:
            out += part.rows()
    return out


def count_of(parts: Sequence[Emitted]) -> int:
    n = len(parts)
    for part in parts:
        if type(part) is not Bar:
            n += part.size - 1  # type: ignore[union-attr]  # a block (OpenBars or FinalBars)
    return n


class BarBatch(NamedTuple):
    """What one ``apply`` emitted: send ``closed`` (final and revised bars, in order; blocks of finals as
    columns) then ``open`` (the open bars the batch touched, as they stand after it; each is newer than any
    closed bar of its symbol and interval, and none of them closed within the batch)."""

    closed: list[Emitted]
    open: OpenBars

    def rows(self) -> list[Bar]:
        return rows_of(self.closed) + self.open.rows()

    @property
    def size(self) -> int:
        """Bars in the batch."""
        return count_of(self.closed) + self.open.size


def from_prints(prints: TradePrints, time_offset: int = 0) -> Executions:
    """The book's trade prints (``Books.trades_since``) as builder input; ``time_offset`` is added to every
    time (e.g. ``vocab.clock.eastern_midnight_ns(session date)`` to turn ITCH stamps into epoch ns)."""
    t = prints.exchange_time + time_offset if time_offset else prints.exchange_time
    return Executions(prints.locate, t, prints.price, prints.size, prints.match_number)


def breaks_from_ring(breaks: TradePrints, time_offset: int = 0) -> Breaks:
    """The book's broken-trade ring (``Books.breaks_since``) as builder input."""
    t = breaks.exchange_time + time_offset if time_offset else breaks.exchange_time
    return Breaks(breaks.locate, t, breaks.match_number)


def breaks_from_columns(cols: Columns, time_offset: int = 0) -> Breaks:
    """The broken-trade ('B') messages of a decoded batch (``ingest.batch``), in order."""
    idx = np.flatnonzero(cols.kind == ord("B"))
    return Breaks(cols.locate[idx], cols.timestamp[idx] + time_offset, cols.match[idx])


# a Bar from one row of fields, without a constructor frame per bar (the hot paths build many)
new_bar: Callable[[Iterable[object]], Bar] = partial(tuple.__new__, Bar)
