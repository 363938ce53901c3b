"""The trade-print ring: a bounded history of prints in numpy columns, read by cursor.

Writers never wait for readers: the ring keeps the last ``capacity`` prints and a monotonically increasing
``total``. A reader keeps its own cursor (a past ``total``); if it falls more than ``capacity`` behind, the
oldest prints it had not read are gone, and ``since`` says how many (``lost``) instead of blocking anyone.

Each print carries its context: the symbol's ``trade_seq`` (1, 2, 3, ... per symbol and session, see
``normalize.book``) and ``flags`` packing the aggressor side, the cross type and the printable flag (``flags_of``;
read back with ``aggressor_name``, ``cross_name``, ``is_printable``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from tickfan_proto import stream_pb2 as pb

I64 = npt.NDArray[np.int64]

# flags: bits 0-1 the aggressor, bits 2-4 the cross type, bit 5 printable
AGGRESSOR_NONE, AGGRESSOR_BUY, AGGRESSOR_SELL = 0, 1, 2
CROSS_SHIFT = 2
PRINTABLE = 1 << 5
# ITCH 5.0 Cross Type of a 'Q' message -> its code in ``flags`` (>> CROSS_SHIFT) and its protocol name
CROSS_CODES = {"O": 1, "C": 2, "H": 3, "I": 4}
CROSS_NAMES = ("", "open", "close", "halt", "extended")
AGGRESSOR_NAMES = ("", "buy", "sell")


def flags_of(aggressor: int = AGGRESSOR_NONE, cross: str = "", printable: bool = True) -> int:
    """Pack a print's context (``cross``: ITCH's Cross Type byte, "" for a continuous-market print)."""
    return aggressor | CROSS_CODES.get(cross, 0) << CROSS_SHIFT | (PRINTABLE if printable else 0)


def flags_from_names(aggressor: str, cross: str, printable: bool) -> int:
    """The inverse of the names (a print that came over the wire, e.g. from Redis)."""
    code = CROSS_NAMES.index(cross) if cross in CROSS_NAMES else 0
    agg = AGGRESSOR_NAMES.index(aggressor) if aggressor in AGGRESSOR_NAMES else 0
    return agg | code << CROSS_SHIFT | (PRINTABLE if printable else 0)


def aggressor_name(flags: int) -> str:
    return AGGRESSOR_NAMES[flags & 3] if flags & 3 < 3 else ""


def cross_name(flags: int) -> str:
    code = flags >> CROSS_SHIFT & 7
    return CROSS_NAMES[code] if code < len(CROSS_NAMES) else ""


def is_printable(flags: int) -> bool:
    return bool(flags & PRINTABLE)


class TradePrints(NamedTuple):
    """Prints in the order they happened; each column is a fresh int64 array (safe to keep)."""

    locate: I64
    price: I64
    size: I64
    exchange_time: I64
    match_number: I64
    seq: I64  # the symbol's version that carried this print
    trade_seq: I64  # the symbol's print number in this session: 1, 2, 3, ...
    flags: I64  # aggressor, cross type, printable (``flags_of``)


def trade_pb(symbol: str, prints: TradePrints, i: int) -> pb.Trade:
    """Print ``i`` of ``prints`` as the protocol's Trade, with its context (trade_seq, aggressor, cross)."""
    flags = int(prints.flags[i])
    return pb.Trade(symbol=symbol, seq=int(prints.seq[i]), price=int(prints.price[i]), size=int(prints.size[i]),
                    exchange_time_ns=int(prints.exchange_time[i]), match_number=int(prints.match_number[i]),
                    trade_seq=int(prints.trade_seq[i]), aggressor=aggressor_name(flags),
                    printable=is_printable(flags), cross=cross_name(flags))


def no_prints() -> TradePrints:
    """An empty batch of prints (a source whose prints do not reach this process)."""
    empty = np.zeros(0, np.int64)
    return TradePrints(*(empty for _ in TradePrints._fields))


class TradeRing:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"trade ring capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.total = 0
        self._cols: tuple[I64, ...] = tuple(np.zeros(capacity, np.int64) for _ in TradePrints._fields)
        # ``ndarray.data`` is a memoryview of the column: it writes one int about twice as fast as numpy's
        # own __setitem__
        (self._locate, self._price, self._size, self._time, self._match, self._seq, self._tseq,
         self._flags) = (c.data for c in self._cols)

    def record(self, locate: int, price: int, size: int, exchange_time: int, match_number: int, seq: int,
               trade_seq: int = 0, flags: int = PRINTABLE) -> None:
        i = self.total % self.capacity
        self._locate[i] = locate
        self._price[i] = price
        self._size[i] = size
        self._time[i] = exchange_time
        self._match[i] = match_number
        self._seq[i] = seq
        self._tseq[i] = trade_seq
        self._flags[i] = flags
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
