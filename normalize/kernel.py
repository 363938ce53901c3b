"""The book kernel (pure): ``ingest.batch.Columns`` in, the same books as ``normalize.Books`` out.

``KernelBooks`` IS a ``Books`` (a subclass): every published array (the row of ``normalize.row``), the
counters, names, the trade ring, ``trades_since`` and ``set_stale_all`` are ``Books``' own, so readers
(fan-out, snapshots) need no change and no copy. What differs is where order-level state lives and who
applies messages: ``apply_columns`` runs the compiled loop of ``normalize.kernel_loop`` (its docstring has
the tables and the costs) over a whole batch of decoded columns, and grows the tables when it stops.

Stock directory (R) messages update the numeric state inside the kernel (known, seq, round lot, the
name as 8 bytes, so a repeated directory entry is recognised); the ticker strings (``symbol_of``,
``locate_of``) are set in Python after the batch, in message order, from the R messages alone.

Trading status messages (S H Y J K V W h, ``ingest.messages.STATUS_TYPES``) take a side path: the kernel
applies a trading action's part of the quote (as ``normalize.status`` does) and notes every status message;
after the run Python decodes the noted ones and applies the rest of each, in order
(``normalize.status.apply_status_after_kernel``). An operational halt stops the kernel and is applied whole in
its place. Status messages are a few a second in a day of millions of messages (and one per symbol at the
opening), so the side path costs nothing measurable (benchmarks/RESULTS.md) and keeps one definition.

With a ``partition`` (``ingest.partition.PartitionFilter``), ``apply_bytes`` applies only that partition's
messages (filtered after framing, before the field decode; the others are counted in
``frame_counters["other_partition"]``), as the plain engine's feed session filters decoded ones.
``apply``/``apply_batch`` take NamedTuples, as the feed handler's sink, by encoding them to ITCH bytes
(correct, not fast: the fast path is bytes -> ``decode_buffer`` -> ``apply_columns``); a message that
cannot be encoded (a locate outside 0..65535, a field out of range) is counted as ``unknown_message`` and
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import struct
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ingest.batch import Columns, decode_buffer
from ingest.itch import LENGTHS
from ingest.itch import decode as itch_decode
from ingest.itch import encode as itch_encode
from ingest.messages import Message, StockDirectory, TradingAction
from ingest.partition import PartitionFilter
from ingest.sample import every_kind
from vocab.framing import frame, frame_all

from .book import COUNTER_NAMES, MAX_LOCATES, Books
from .kernel_loop import (
    M_FREE,
    M_HIGH,
    M_LEVELS,
    M_NOTED,
    M_ORDERS,
    M_T0,
    M_TRADES,
    _empty_table,
    _find,
    _rehash,
    _run,
    _top_levels,
)
from .status import apply_status_after_kernel, unpack_reason

__all__ = ["KernelBooks", "warm_up"]

I64 = npt.NDArray[np.int64]
_OPERATIONAL_HALT = ord("h")
_TRADING_ACTION = ord("H")


class KernelBooks(Books):
    """A ``Books`` whose order-level state is numpy tables updated by a compiled kernel, batch at a time."""

    def __init__(self, *, trade_capacity: int = 65_536, order_capacity: int = 1 << 16,
                 level_capacity: int = 1 << 14, session_date: dt.date | None = None,
                 arrays: Mapping[str, npt.NDArray[np.generic]] | None = None, market: I64 | None = None,
                 partition: PartitionFilter | None = None) -> None:
        """``arrays``/``market``: publish into these (``Books``' meaning: a shared-memory block's rows).
        ``partition``: ``apply_bytes`` applies only its symbols' messages (and the market's)."""
        super().__init__(trade_capacity=trade_capacity, session_date=session_date, arrays=arrays, market=market)
        # messages ``apply_bytes`` skipped before the books (as FeedSession counts them)
        self.frame_counters = {"unknown_types": 0, "bad_lengths": 0}
        self.partition = partition
        if partition is not None:
            self.frame_counters["other_partition"] = 0
        self._counter_arr = np.zeros(len(COUNTER_NAMES), np.int64)
        self._names = np.zeros(MAX_LOCATES, np.int64)
        self._meta = np.zeros(8, np.int64)
        self._order_capacity = order_capacity
        self._level_capacity = level_capacity
        self._reset_tables()

    def _reset_tables(self) -> None:
        oc = 1 << max(4, (self._order_capacity - 1).bit_length())
        self._o_ref, self._o_lvl, self._o_shares = _empty_table(oc)
        lc = 1 << max(4, (self._level_capacity - 1).bit_length())
        self._h_key, self._h_lvl, self._h_unused = _empty_table(2 * lc)
        self._lv_key = np.zeros(lc, np.int64)
        self._lv_price = np.zeros(lc, np.int64)
        self._lv_size = np.zeros(lc, np.int64)
        self._lv_prev = np.full(lc, -1, np.int64)
        self._lv_next = np.arange(1, lc + 1, dtype=np.int64)  # the free list
        self._head = np.full(2 * MAX_LOCATES, -1, np.int64)
        self._meta[[M_ORDERS, M_LEVELS, M_FREE]] = 0

    @property
    def mine(self) -> npt.NDArray[np.bool_]:
        """The locates whose directory entries these books applied (a shared-memory writer claims them)."""
        return self._mine

    @property
    def packed_names(self) -> I64:
        """Each locate's ticker as the kernel stores it (8 bytes in an int64): moves when a name is set."""
        return self._names

    # ------------------------------------------------------------------ growth
    def _grow_orders(self) -> None:
        keys, vals, extra = _empty_table(2 * self._o_ref.shape[0])
        _rehash(self._o_ref, self._o_lvl, self._o_shares, keys, vals, extra)
        self._o_ref, self._o_lvl, self._o_shares = keys, vals, extra

    def _grow_levels(self) -> None:
        old = self._lv_key.shape[0]
        keys, vals, extra = _empty_table(2 * self._h_key.shape[0])
        _rehash(self._h_key, self._h_lvl, self._h_unused, keys, vals, extra)
        self._h_key, self._h_lvl, self._h_unused = keys, vals, extra

        def wider(a: I64, fill: int) -> I64:
            return np.concatenate((a, np.full(old, fill, np.int64)))

        self._lv_key, self._lv_price, self._lv_size = (wider(a, 0) for a in
                                                       (self._lv_key, self._lv_price, self._lv_size))
        self._lv_prev = wider(self._lv_prev, -1)
        # the pool is full when this runs (every old level is live), so the new half is the whole free list
        self._lv_next = np.concatenate((self._lv_next, np.arange(old + 1, 2 * old + 1, dtype=np.int64)))
        self._meta[M_FREE] = old

    # ------------------------------------------------------------------ the fast path
    def apply_columns(self, cols: Columns, buf: npt.NDArray[np.uint8]) -> None:
        """Apply a decoded batch in order. ``buf``: the buffer ``cols`` came from (``decode_buffer``): stock
        directory (R) and trading status messages are decoded from it in Python."""
        n = cols.messages
        meta = self._meta
        meta[M_TRADES] = self._trades.total
        meta[M_HIGH] = self.high_locate
        meta[M_T0] = self._t0  # the kernel adds it to each stamp it stores: epoch ns, as Books stores them
        ring = self._trades._cols
        self._counter_arr[:] = 0
        noted = np.empty(n, np.int64)
        meta[M_NOTED] = 0
        i = 0
        while True:
            i = _run(cols.kind, cols.locate, cols.timestamp, cols.ref, cols.new_ref, cols.shares, cols.price,
                       cols.match, cols.flag, i,
                       self.bid_price, self.bid_size, self.ask_price, self.ask_size, self.last_price,
                       self.last_size, self.volume, self.exchange_time, self.seq, self.depth_seq, self.round_lot,
                       self.halted, self.known, self._mine, self._names, self.trade_seq,
                       self.trading_state, self.trading_reason, self.operational_halt, noted, *ring,
                       self._o_ref, self._o_lvl, self._o_shares,
                       self._h_key, self._h_lvl, self._h_unused, self._lv_key, self._lv_price, self._lv_size,
                       self._lv_prev, self._lv_next, self._head, self._counter_arr, meta)
            self._noted(noted, cols, buf)
            if i >= n:
                break
            if int(cols.kind[i]) == _OPERATIONAL_HALT:
                self._status(self._decode_at(buf, int(cols.offset[i])))
                i += 1
                continue
            if meta[M_ORDERS] >= self._o_ref.shape[0] >> 1:
                self._grow_orders()
            if meta[M_LEVELS] >= self._lv_key.shape[0]:
                self._grow_levels()
        self._trades.total = int(meta[M_TRADES])
        self.high_locate = int(meta[M_HIGH])
        counters = self.counters
        for k, v in zip(COUNTER_NAMES, self._counter_arr.tolist(), strict=True):
            if v:
                counters[k] += v
        counters["messages"] += n
        breaks = np.flatnonzero(cols.kind == ord("B"))
        if breaks.size:  # rare: kept as Books._broken keeps them, outside the compiled loop
            record, t0 = self._breaks.record, self._t0
            for loc, ts, match in zip(cols.locate[breaks].tolist(), cols.timestamp[breaks].tolist(),
                                      cols.match[breaks].tolist(), strict=True):
                record(loc, 0, 0, ts + t0, match, 0)
        self._names_after(cols, buf)

    @staticmethod
    def _decode_at(buf: npt.NDArray[np.uint8], offset: int) -> Message:
        """The message at ``offset`` (framing already checked its type and length)."""
        return itch_decode(buf.data, offset, LENGTHS[int(buf[offset])])

    def _noted(self, noted: I64, cols: Columns, buf: npt.NDArray[np.uint8]) -> None:
        """Apply what the kernel left of the status messages it noted, in order, and clear the notes."""
        count = int(self._meta[M_NOTED])
        if not count:
            return
        notes = noted[:count]
        rows = notes >> 1
        self._meta[M_NOTED] = 0
        known = self.known
        for row, off, kind, was_known in zip(rows.tolist(), cols.offset[rows].tolist(), cols.kind[rows].tolist(),
                                             (notes & 1).tolist(), strict=True):
            if kind == _TRADING_ACTION:
                # the opening has one per symbol: built from the columns, not decoded again (the stock is unused)
                m: Message = TradingAction(int(cols.locate[row]), 0, int(cols.timestamp[row]), "",
                                           chr(int(cols.flag[row])), " ", unpack_reason(int(cols.shares[row])))
            else:
                m = self._decode_at(buf, off)
            loc = m.locate
            if was_known or not 0 < loc < MAX_LOCATES or not known[loc]:
                self._status(m, apply_status_after_kernel)
                continue
            # its directory entry came later in the batch: applied as the stream had it then (counted unknown)
            known[loc] = False
            try:
                self._status(m, apply_status_after_kernel)
            finally:
                known[loc] = True

    def _names_after(self, cols: Columns, buf: npt.NDArray[np.uint8]) -> None:
        kind = cols.kind
        data = buf.data
        for j in np.flatnonzero(kind == ord("R")).tolist():
            off = int(cols.offset[j])
            m = itch_decode(data, off, 39)
            assert isinstance(m, StockDirectory)
            if not 0 < m.locate < MAX_LOCATES:
                continue
            old = self.symbol_of[m.locate]
            if old == m.stock:
                continue
            if old is not None and self.locate_of.get(old) == m.locate:
                del self.locate_of[old]
            self.symbol_of[m.locate] = m.stock
            self.locate_of[m.stock] = m.locate

    def apply_bytes(self, data: bytes | bytearray | memoryview) -> int:
        """Frame, decode and apply a buffer of length-prefixed ITCH messages; returns the bytes consumed (a
        partial message at the end is left for the caller to prepend to the next buffer)."""
        buf, cols, counts = decode_buffer(data, self._keep if self.partition is not None else None)
        self.frame_counters["unknown_types"] += counts.unknown_types
        self.frame_counters["bad_lengths"] += counts.bad_lengths
        self.apply_columns(cols, buf)
        return counts.consumed

    def _keep(self, buf: npt.NDArray[np.uint8], offsets: I64) -> I64:
        assert self.partition is not None
        kept, other = self.partition.keep_offsets(buf, offsets)
        self.frame_counters["other_partition"] += other
        return kept

    # ------------------------------------------------------------------ the Books interface
    def apply(self, msg: Message) -> None:
        self.apply_batch([msg])

    def apply_batch(self, msgs: Sequence[Message]) -> None:
        parts: list[bytes] = []
        for m in msgs:
            try:
                raw = itch_encode(m)
            except (struct.error, TypeError, ValueError, AttributeError, OverflowError):
                self.counters["unknown_message"] += 1
                self.counters["messages"] += 1
                continue
            parts.append(frame(raw))
        if parts:
            self.apply_bytes(b"".join(parts))

    def rebuild(self, snapshot: Iterable[Message]) -> None:
        mine = self._mine
        for arr in (self.bid_price, self.bid_size, self.ask_price, self.ask_size):
            arr[mine] = 0
        self._reset_tables()
        self.apply_batch(list(snapshot))
        mine = self._mine
        self.stale[mine] = False
        self.seq[mine] += 1
        self.depth_seq[mine] += 1

    def levels(self, locate: int, side: int, n: int) -> list[tuple[int, int]]:
        if side not in (0, 1) or n <= 0 or not 0 <= locate < MAX_LOCATES:
            return []
        out: list[tuple[int, int]] = []
        cur = int(self._head[locate << 1 | side])
        while cur != -1 and len(out) < n:
            out.append((int(self._lv_price[cur]), int(self._lv_size[cur])))
            cur = int(self._lv_next[cur])
        return out

    def write_depth(self, locates: I64, depth: I64) -> None:
        """``levels`` of every locate in ``locates``, both sides, into ``depth[locate, side, level] = (price,
        size)`` (as many levels as its third axis holds, zero-filled), in one compiled call."""
        _top_levels(locates, self._head, self._lv_price, self._lv_next, self._lv_size, depth)

    def order(self, order_ref: int) -> tuple[int, int, int, int] | None:
        key = order_ref - (1 << 64) if order_ref >= 1 << 63 else order_ref  # stored as int64
        slot = int(_find(self._o_ref, self._o_lvl, key))
        if slot == -1:
            return None
        lvl = int(self._o_lvl[slot])
        k = int(self._lv_key[lvl])
        return k >> 1, k & 1, int(self._lv_price[lvl]), int(self._o_shares[slot])

    def live_orders(self) -> dict[int, tuple[int, int, int, int]]:
        live = np.flatnonzero(self._o_lvl != -1)
        lvl = self._o_lvl[live]
        keys = self._lv_key[lvl]
        out = {}
        for ref, k, p, s in zip(self._o_ref[live].tolist(), keys.tolist(), self._lv_price[lvl].tolist(),
                                self._o_shares[live].tolist(), strict=True):
            out[ref & 0xFFFFFFFFFFFFFFFF] = (k >> 1, k & 1, p, s)
        return out

    @property
    def order_count(self) -> int:
        return int(self._meta[M_ORDERS])


def warm_up() -> float:
    """Compile (or load from the cache) every kernel on a tiny batch; returns the seconds it took.

    The batch touches every message kind and outgrows the tiny tables, so growth paths compile too."""
    t = time.perf_counter()
    books = KernelBooks(trade_capacity=4, order_capacity=16, level_capacity=16)
    books.apply_bytes(frame_all(itch_encode(m) for m in every_kind()))
    books.write_depth(np.arange(1, 3, dtype=np.int64), np.zeros((3, 2, 10, 2), np.int64))
    return time.perf_counter() - t
