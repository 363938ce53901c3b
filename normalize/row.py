"""The published book row, declared once: one numpy array per field, indexed by stock locate.

Everything that holds books for readers is built from this declaration: ``Books`` allocates it, the
shared-memory block lays it out (``normalize.replicas.shm``), a ``BookView`` and a ``RedisBooks`` keep their
own copies, and ``BookSource`` (what the edges read) extends it. A field added here appears in all of them;
nothing else lists the fields.

``BookRow`` is a Protocol so that ``BookSource`` can extend it (a Protocol may only extend Protocols); the
concrete holders subclass it explicitly, which gives them the annotated attributes for mypy, and bind the
arrays with ``bind_row``.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

# price levels a side published beside the row (shared memory, depth frames); the in-process books keep all
DEPTH_LEVELS = 10


# The class-level value of every field: a Protocol attribute with no value would be abstract, for mypy, in the
# classes that subclass it explicitly (they bind their arrays in ``bind_row``, which mypy cannot follow).
UNBOUND: Any = None


class BookRow(Protocol):
    """Top of book per locate: prices (4 implied decimals) and sizes, last print, versions, flags."""

    bid_price: I64 = UNBOUND
    bid_size: I64 = UNBOUND
    ask_price: I64 = UNBOUND
    ask_size: I64 = UNBOUND
    last_price: I64 = UNBOUND
    last_size: I64 = UNBOUND
    volume: I64 = UNBOUND  # printed volume (see normalize.book on broken trades)
    exchange_time: I64 = UNBOUND  # ITCH ns since midnight, of the last event that changed the row
    seq: I64 = UNBOUND  # +1 per message that changes any published field
    depth_seq: I64 = UNBOUND  # +1 per message that changes any price level
    round_lot: I64 = UNBOUND
    halted: BOOL = UNBOUND
    stale: BOOL = UNBOUND
    known: BOOL = UNBOUND  # a stock directory entry arrived
    # trading status (``normalize.status`` applies and reads them): codes as code points, 0 before any event
    trading_state: I64 = UNBOUND  # 'T' | 'H' | 'P' | 'Q'
    trading_reason: I64 = UNBOUND  # up to 4 ASCII bytes, big-endian
    reg_sho: I64 = UNBOUND  # '0' | '1' | '2'
    luld_reference: I64 = UNBOUND  # LULD auction collars while paused (4 implied decimals)
    luld_upper: I64 = UNBOUND
    luld_lower: I64 = UNBOUND
    luld_extensions: I64 = UNBOUND
    ipo_release: I64 = UNBOUND  # the IPO quotation release time (as exchange_time), 0 when none
    ipo_qualifier: I64 = UNBOUND  # 'A' | 'C'
    ipo_price: I64 = UNBOUND
    operational_halt: BOOL = UNBOUND  # an operational halt on this feed's market
    status_time: I64 = UNBOUND  # the exchange time of the latest status event (as exchange_time)
    status_seq: I64 = UNBOUND  # +1 per status event of the symbol (the status channel's version)


class RowField(NamedTuple):
    name: str
    dtype: np.dtype[np.generic]


def _fields() -> tuple[RowField, ...]:
    dtypes = {I64: np.dtype(np.int64), BOOL: np.dtype(np.bool_)}
    hints = typing.get_type_hints(BookRow)
    return tuple(RowField(name, dtypes[hint]) for name, hint in hints.items())


ROW_FIELDS: tuple[RowField, ...] = _fields()
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in ROW_FIELDS)


def new_row(n: int) -> dict[str, npt.NDArray[np.generic]]:
    """Fresh zeroed arrays for ``n`` locates, by field name."""
    return {f.name: np.zeros(n, f.dtype) for f in ROW_FIELDS}


def bind_row(holder: BookRow, arrays: Mapping[str, npt.NDArray[np.generic]]) -> None:
    """Make ``holder``'s row attributes these arrays (the same memory, not copies)."""
    for f in ROW_FIELDS:
        arr = arrays[f.name]
        if arr.dtype != f.dtype:
            raise TypeError(f"{f.name}: expected {f.dtype}, got {arr.dtype}")
        setattr(holder, f.name, arr)
