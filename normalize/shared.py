"""Published books in shared memory: ingest workers write them, fan-out and snapshot processes read them.

Layout (one ``multiprocessing.shared_memory`` block, numpy views by name): the published per-locate arrays
of ``Books`` (tops, last, volume, exchange time, ``seq``, ``depth_seq``, flags), the tickers (8 bytes per
locate), the best ``DEPTH_LEVELS`` levels a side (``depth[locate, side, level] = (price, size)``), which
writer owns each locate, and one generation counter per writer.

Consistency without locks: a writer makes its generation odd before applying a packet and even after.
A reader (``BookView.sync``) copies the rows that changed into its own arrays, then checks each owning
writer's generation again; rows of a writer that was mid-packet, or moved on, are copied again, and if that
writer stays busy they are left for the next sync (their versions stay unpublished, so nothing is lost and
no torn quote is ever handed on). Readers never block writers.
"""

from __future__ import annotations

import contextlib
from multiprocessing import resource_tracker, shared_memory
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .book import MAX_LOCATES
from .trades import TradePrints

DEPTH_LEVELS = 10
_CREATED_HERE: set[str] = set()  # blocks this process created (and so unlinks)
MAX_WRITERS = 64
I64_FIELDS = ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume",
              "exchange_time", "seq", "depth_seq", "round_lot")
BOOL_FIELDS = ("halted", "stale", "known")


class _Field(NamedTuple):
    name: str
    dtype: np.dtype[np.generic]
    shape: tuple[int, ...]


def _layout(n: int) -> list[_Field]:
    out = [_Field(f, np.dtype(np.int64), (n,)) for f in I64_FIELDS]
    out += [_Field("depth", np.dtype(np.int64), (n, 2, DEPTH_LEVELS, 2)),
            _Field("generation", np.dtype(np.int64), (MAX_WRITERS,)),
            _Field("names", np.dtype("S8"), (n,)),
            _Field("owner", np.dtype(np.int16), (n,))]
    out += [_Field(f, np.dtype(np.bool_), (n,)) for f in BOOL_FIELDS]
    return out


class SharedBookState:
    """The shared block and named numpy views into it."""

    def __init__(self, shm: shared_memory.SharedMemory, n: int, owner: bool) -> None:
        self.shm = shm
        self.name = shm.name
        self.size = n
        self._owner = owner
        self.arrays: dict[str, npt.NDArray[np.generic]] = {}
        offset = 0
        for f in _layout(n):
            count = int(np.prod(f.shape))
            arr: npt.NDArray[np.generic] = np.ndarray(f.shape, dtype=f.dtype, buffer=shm.buf, offset=offset)
            self.arrays[f.name] = arr
            offset += count * f.dtype.itemsize
            offset = (offset + 63) // 64 * 64  # keep every array cache-line aligned

    @staticmethod
    def nbytes(n: int) -> int:
        return sum((int(np.prod(f.shape)) * f.dtype.itemsize + 63) // 64 * 64 for f in _layout(n))

    @classmethod
    def create(cls, name: str | None = None, n: int = MAX_LOCATES) -> SharedBookState:
        shm = shared_memory.SharedMemory(name=name, create=True, size=cls.nbytes(n))
        _CREATED_HERE.add(shm.name)
        state = cls(shm, n, owner=True)
        for arr in state.arrays.values():
            arr[...] = 0
        state.arrays["owner"][:] = -1
        return state

    @classmethod
    def attach(cls, name: str, n: int = MAX_LOCATES) -> SharedBookState:
        shm = shared_memory.SharedMemory(name=name, create=False)
        if name not in _CREATED_HERE:
            # Python < 3.13 registers attached segments with the resource tracker, which would unlink the
            # block when this process exits although its creator still serves it: only the creator owns it.
            with contextlib.suppress(Exception):
                resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
        return cls(shm, n, owner=False)

    def close(self) -> None:
        """Unlink the block (creator only), then unmap it once no view into it is left."""
        if self._owner:
            with contextlib.suppress(FileNotFoundError):
                self.shm.unlink()
            self._owner = False
        self.arrays.clear()
        with contextlib.suppress(BufferError):  # numpy views still alive: the mapping goes with the process
            self.shm.close()


class BookView:
    """What fan-out and snapshots read, synced from shared memory: the read side of ``Books``.

    Its arrays are this process's own copies, refreshed by ``sync`` (call it before each flush), so the
    fan-out's version diffing and encoding work exactly as over an in-process ``Books``.
    """

    def __init__(self, state: SharedBookState) -> None:
        self.state = state
        n = state.size
        a = state.arrays
        for f in I64_FIELDS:
            setattr(self, f, np.zeros(n, np.int64))
        for f in BOOL_FIELDS:
            setattr(self, f, np.zeros(n, np.bool_))
        self.bid_price: npt.NDArray[np.int64]
        self.bid_size: npt.NDArray[np.int64]
        self.ask_price: npt.NDArray[np.int64]
        self.ask_size: npt.NDArray[np.int64]
        self.last_price: npt.NDArray[np.int64]
        self.last_size: npt.NDArray[np.int64]
        self.volume: npt.NDArray[np.int64]
        self.exchange_time: npt.NDArray[np.int64]
        self.seq: npt.NDArray[np.int64]
        self.depth_seq: npt.NDArray[np.int64]
        self.round_lot: npt.NDArray[np.int64]
        self.halted: npt.NDArray[np.bool_]
        self.stale: npt.NDArray[np.bool_]
        self.known: npt.NDArray[np.bool_]
        self.depth: npt.NDArray[np.int64] = np.zeros((n, 2, DEPTH_LEVELS, 2), np.int64)
        self.symbol_of: list[str | None] = [None] * n
        self.locate_of: dict[str, int] = {}
        self.high_locate = 0
        self.counters: dict[str, int] = {"sync_retries": 0, "rows_deferred": 0}
        self._shared = a
        self._fields = [(getattr(self, f), a[f]) for f in (*I64_FIELDS, *BOOL_FIELDS)]

    def sync(self) -> int:
        """Copy every row whose version moved since the last sync; returns how many rows were copied."""
        a = self._shared
        gen: npt.NDArray[np.int64] = a["generation"]  # type: ignore[assignment]
        moved = np.flatnonzero((a["seq"] != self.seq) | (a["depth_seq"] != self.depth_seq))
        copied = 0
        for _ in range(4):
            if not len(moved):
                break
            before = gen.copy()
            owners = a["owner"][moved]
            scratch = [shared[moved] for _, shared in self._fields]
            depth = a["depth"][moved]
            names = a["names"][moved]
            after = gen.copy()
            # rows of a writer that was mid-packet, or moved on, during the copy may be torn: take them again
            busy = np.flatnonzero((before != after) | ((before & 1) == 1))
            torn = np.isin(owners, busy)
            clean = ~torn
            rows = moved[clean]
            for (local, _), values in zip(self._fields, scratch, strict=True):
                local[rows] = values[clean]
            self.depth[rows] = depth[clean]
            self._learn_names(rows, names[clean])
            copied += len(rows)
            moved = moved[torn]
            if len(moved):
                self.counters["sync_retries"] += 1
        # rows still busy keep their previous version: the next sync takes them whole
        self.counters["rows_deferred"] += len(moved)
        return copied

    def _learn_names(self, rows: npt.NDArray[np.int64], names: npt.NDArray[Any]) -> None:
        symbol_of = self.symbol_of
        for r, raw in zip(rows.tolist(), names.tolist(), strict=True):
            if raw and symbol_of[r] is None:
                name = raw.decode("ascii").rstrip(" ")
                symbol_of[r] = name
                self.locate_of[name] = r
                if r > self.high_locate:
                    self.high_locate = r

    # ------------------------------------------------------------------ the Books read API
    def levels(self, locate: int, side: int, n: int) -> list[tuple[int, int]]:
        rows = self.depth[locate, side, :n]
        return [(int(p), int(s)) for p, s in rows.tolist() if s > 0]

    @property
    def trades_total(self) -> int:
        return 0

    def trades_since(self, cursor: int) -> tuple[TradePrints, int, int]:
        """Trade prints do not cross processes yet: the trades channel is empty on a shared-memory reader."""
        empty = np.zeros(0, np.int64)
        return TradePrints(empty, empty, empty, empty, empty, empty), cursor, 0
