"""The book kernel (pure): ``ingest.batch.Columns`` in, the same books as ``normalize.Books`` out.

``KernelBooks`` IS a ``Books`` (a subclass): every published array (top of book, last, volume, exchange
time, seq, depth_seq, halted, stale, known, round lot), the counters, names, the trade ring, ``trades_since``
and ``set_stale_all`` are ``Books``' own, so readers (fan-out, snapshots) need no change and no copy. What
differs is where order-level state lives and who applies messages:

- ``apply_columns`` runs one numba-compiled loop over a whole batch of decoded columns, with exactly
  ``Books``' semantics (see ``normalize/book.py``'s docstring: counters, over-executions, printable flag,
  zero-share crosses, halts, one ``seq`` step per message that changes a published field, one
  ``depth_seq`` step per message that changes a level, trade ring). The sequential book logic is a chain
  of dependent lookups per message, which numpy cannot vectorise; a typed loop compiled once
  (``cache=True``: the first process compiles in a few seconds and caches to ``__pycache__``; later ones
  load in about 0.4 s, see ``warm_up``) runs it at ~350 ns a message on the simulator's stream (10,000
  symbols, ~95,000 live orders; ~200 ns with 200 symbols). That cost is memory latency, not
  instructions (a loop over only broken-trade messages runs at 3 ns a message): each message touches an
  order slot, a level and its hash slot, and about five per-locate arrays, mostly cache misses.
- Orders: an open-addressing hash table (linear probing, backward-shift deletion, so no tombstones pile
  up on the add/delete churn of a trading day) keyed by order reference: ref, level index, shares left.
  The side, price and locate of an order are its level's.
- Price levels: a pool of levels (side key ``locate << 1 | side``, price, shares, prev/next), a second hash
  table (side key, price) -> level, and per side key a doubly linked list sorted best first. The best
  level is the list's head, so when it empties the next best is its successor, found without scanning
  any order. A new level is linked in by walking from the best level: cost is the number of better
  levels, a handful near the inside where nearly all adds land.
- Both tables grow (doubling) when half full: the kernel stops before an insert that could overflow,
  Python grows the arrays, and the loop resumes at the same message.

Stock directory (R) messages update the numeric state inside the kernel (known, seq, round lot, the
name as 8 bytes, so a repeated directory entry is recognised); the ticker strings (``symbol_of``,
``locate_of``) are set in Python after the batch, in message order, from the R messages alone.

Not supported: ``shared=`` (the shared-memory writer publishes depth from ``Books.levels`` per packet; a
kernel batch would do that once per batch: not built yet). ``apply``/``apply_batch`` take NamedTuples, as
the feed handler's sink, by encoding them to ITCH bytes (correct, not fast: the fast path is bytes ->
``decode_buffer`` -> ``apply_columns``); a message that cannot be encoded (a locate outside 0..65535,
a field out of range) is counted as ``unknown_message`` and changes nothing.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Sequence
from typing import cast

import numba
import numpy as np
import numpy.typing as npt

from ingest.batch import Columns, decode_buffer
from ingest.itch import decode as itch_decode
from ingest.itch import encode as itch_encode
from ingest.messages import (
    AddOrder,
    BrokenTrade,
    CrossTrade,
    Message,
    OrderCancel,
    OrderDelete,
    OrderExecuted,
    OrderExecutedWithPrice,
    OrderReplace,
    StockDirectory,
    SystemEvent,
    Trade,
    TradingAction,
)
from vocab.framing import frame, frame_all

from .book import COUNTER_NAMES, MAX_LOCATES, Books

__all__ = ["KernelBooks", "warm_up"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
BOOL = npt.NDArray[np.bool_]

# counter indices (the kernel counts into an int64 array; names as in Books.counters)
_C = {name: i for i, name in enumerate(COUNTER_NAMES)}
C_UNKNOWN_ORDER = _C["unknown_order"]
C_DUPLICATE = _C["duplicate_order_ref"]
C_OVER = _C["over_execution"]
C_UNKNOWN_LOCATE = _C["unknown_locate"]
C_BAD_SIDE = _C["bad_side"]
C_BAD_SHARES = _C["bad_shares"]
C_BAD_PRICE = _C["bad_price"]
C_BAD_STATE = _C["bad_trading_state"]
C_BROKEN = _C["broken_trades"]
C_SYSTEM = _C["system_events"]

# meta: scalar state shared between Python and the kernel
M_ORDERS, M_LEVELS, M_FREE, M_TRADES, M_HIGH = 0, 1, 2, 3, 4
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(inline="always", cache=True)
def _home(key: int, mask: int) -> int:  # pragma: no cover
    return int((np.uint64(key) * _GOLDEN) >> np.uint64(40)) & mask


@numba.njit(inline="always", cache=True)
def _find(keys: I64, vals: I64, key: int) -> int:  # pragma: no cover
    """Slot holding ``key``, or -1."""
    mask = keys.shape[0] - 1
    i = _home(key, mask)
    while vals[i] != -1:
        if keys[i] == key:
            return i
        i = (i + 1) & mask
    return -1


@numba.njit(inline="always", cache=True)
def _slot_for(keys: I64, vals: I64, key: int) -> int:  # pragma: no cover
    """Slot holding ``key`` or the empty slot where it goes."""
    mask = keys.shape[0] - 1
    i = _home(key, mask)
    while vals[i] != -1 and keys[i] != key:
        i = (i + 1) & mask
    return i


@numba.njit(inline="always", cache=True)
def _erase(keys: I64, vals: I64, extra: I64, slot: int) -> None:  # pragma: no cover
    """Empty ``slot`` by backward-shift deletion (``extra``: a column moved along with keys and vals)."""
    mask = keys.shape[0] - 1
    i = slot
    j = slot
    while True:
        j = (j + 1) & mask
        if vals[j] == -1:
            break
        k = _home(keys[j], mask)
        # leave j where it is if its home lies cyclically in (i, j]
        if (i <= j and i < k <= j) or (i > j and (k > i or k <= j)):
            continue
        keys[i] = keys[j]
        vals[i] = vals[j]
        extra[i] = extra[j]
        i = j
    vals[i] = -1


@numba.njit(cache=True)
def _rehash(keys: I64, vals: I64, extra: I64, nkeys: I64, nvals: I64, nextra: I64) -> None:  # pragma: no cover
    for s in range(keys.shape[0]):
        if vals[s] != -1:
            d = _slot_for(nkeys, nvals, keys[s])
            nkeys[d] = keys[s]
            nvals[d] = vals[s]
            nextra[d] = extra[s]


@numba.njit(inline="always", cache=True)
def _publish(key: int, head: I64, lv_price: I64, lv_size: I64, bp: I64, bs: I64, ap: I64,
             asz: I64) -> None:  # pragma: no cover
    loc = key >> 1
    h = head[key]
    p = 0
    s = 0
    if h != -1:
        p = lv_price[h]
        s = lv_size[h]
    if key & 1:
        ap[loc] = p
        asz[loc] = s
    else:
        bp[loc] = p
        bs[loc] = s


@numba.njit(cache=True)
def _apply(kind: U8, locate: I64, ts: I64, ref: I64, new_ref: I64, shares: I64, price: I64, match: I64,
           flag: U8, start: int,
           # published (Books' arrays)
           bp: I64, bs: I64, ap: I64, asz: I64, lp: I64, ls: I64, vol: I64, et: I64, seq: I64, dseq: I64,
           round_lot: I64, halted: BOOL, known: BOOL, mine: BOOL, names: I64,
           # trade ring columns
           t_loc: I64, t_price: I64, t_size: I64, t_time: I64, t_match: I64, t_seq: I64,
           # orders: ref -> level index, shares
           o_ref: I64, o_lvl: I64, o_shares: I64,
           # levels: (side key, price) -> level; pool columns; head per side key
           h_key: I64, h_lvl: I64, h_unused: I64,
           lv_key: I64, lv_price: I64, lv_size: I64, lv_prev: I64, lv_next: I64, head: I64,
           counters: I64, meta: I64) -> int:  # pragma: no cover
    """Apply messages from ``start`` on; returns the index it stopped at (== len: done; less: grow first)."""
    n = int(kind.shape[0])
    o_limit = o_ref.shape[0] >> 1
    lv_limit = lv_key.shape[0]
    cap = t_loc.shape[0]
    for i in range(start, n):
        t = kind[i]
        loc = locate[i]
        if t == 65 or t == 70:  # A, F: add order
            if meta[M_ORDERS] >= o_limit or meta[M_LEVELS] >= lv_limit:
                return i
            side_code = flag[i]
            if side_code == 66:
                side = 0
            elif side_code == 83:
                side = 1
            else:
                counters[C_BAD_SIDE] += 1
                continue
            sh = shares[i]
            p = price[i]
            if sh <= 0:
                counters[C_BAD_SHARES] += 1
                continue
            if p <= 0:
                counters[C_BAD_PRICE] += 1
                continue
            if loc <= 0 or loc >= MAX_LOCATES:
                counters[C_UNKNOWN_LOCATE] += 1
                continue
            r = ref[i]
            slot = _slot_for(o_ref, o_lvl, r)
            if o_lvl[slot] != -1:
                counters[C_DUPLICATE] += 1
                continue
            if not known[loc]:
                counters[C_UNKNOWN_LOCATE] += 1
            key = (loc << 1) | side
            lvl = _level(key, p, h_key, h_lvl, h_unused, lv_key, lv_price, lv_size, lv_prev, lv_next, head,
                         meta)
            lv_size[lvl] += sh
            o_ref[slot] = r
            o_lvl[slot] = lvl
            o_shares[slot] = sh
            meta[M_ORDERS] += 1
            dseq[loc] += 1
            if head[key] == lvl:
                if side:
                    ap[loc] = p
                    asz[loc] = lv_size[lvl]
                else:
                    bp[loc] = p
                    bs[loc] = lv_size[lvl]
                seq[loc] += 1
                et[loc] = ts[i]
        elif t == 68:  # D: delete
            slot = _find(o_ref, o_lvl, ref[i])
            if slot == -1:
                counters[C_UNKNOWN_ORDER] += 1
                continue
            lvl = o_lvl[slot]
            sh = o_shares[slot]
            _erase(o_ref, o_lvl, o_shares, slot)
            meta[M_ORDERS] -= 1
            key = lv_key[lvl]
            if _take_level(lvl, sh, h_key, h_lvl, h_unused, lv_key, lv_price, lv_size, lv_prev, lv_next, head,
                           dseq, meta):
                _publish(key, head, lv_price, lv_size, bp, bs, ap, asz)
                seq[key >> 1] += 1
                et[key >> 1] = ts[i]
        elif t == 88 or t == 69 or t == 67:  # X cancel, E executed, C executed with price
            printable = flag[i] == 89
            if t == 67 and price[i] <= 0 and printable:
                counters[C_BAD_PRICE] += 1
                continue
            slot = _find(o_ref, o_lvl, ref[i])
            if slot == -1:
                counters[C_UNKNOWN_ORDER] += 1
                continue
            sh = shares[i]
            if sh <= 0:
                counters[C_BAD_SHARES] += 1
                continue
            lvl = o_lvl[slot]
            left = o_shares[slot]
            if sh < left:
                o_shares[slot] = left - sh
                take = sh
            else:
                if sh > left:
                    counters[C_OVER] += 1
                take = left
                _erase(o_ref, o_lvl, o_shares, slot)
                meta[M_ORDERS] -= 1
            key = lv_key[lvl]
            lvl_price = lv_price[lvl]
            lc = key >> 1
            moved = _take_level(lvl, take, h_key, h_lvl, h_unused, lv_key, lv_price, lv_size, lv_prev, lv_next,
                                head, dseq, meta)
            if moved:
                _publish(key, head, lv_price, lv_size, bp, bs, ap, asz)
            if t == 69 or (t == 67 and printable):
                pp = lvl_price if t == 69 else price[i]
                lp[lc] = pp
                ls[lc] = sh
                vol[lc] += sh
                s = seq[lc] + 1
                seq[lc] = s
                et[lc] = ts[i]
                j = meta[M_TRADES] % cap
                t_loc[j] = lc
                t_price[j] = pp
                t_size[j] = sh
                t_time[j] = ts[i]
                t_match[j] = match[i]
                t_seq[j] = s
                meta[M_TRADES] += 1
            elif moved:
                seq[lc] += 1
                et[lc] = ts[i]
        elif t == 85:  # U: replace
            if meta[M_LEVELS] >= lv_limit:
                return i
            slot = _find(o_ref, o_lvl, ref[i])
            if slot == -1:
                counters[C_UNKNOWN_ORDER] += 1
                continue
            nr = new_ref[i]
            if _find(o_ref, o_lvl, nr) != -1:
                counters[C_DUPLICATE] += 1
                continue
            sh = shares[i]
            p = price[i]
            if sh <= 0:
                counters[C_BAD_SHARES] += 1
                continue
            if p <= 0:
                counters[C_BAD_PRICE] += 1
                continue
            lvl = o_lvl[slot]
            left = o_shares[slot]
            _erase(o_ref, o_lvl, o_shares, slot)
            key = lv_key[lvl]
            _take_level(lvl, left, h_key, h_lvl, h_unused, lv_key, lv_price, lv_size, lv_prev, lv_next, head,
                        dseq, meta)
            nl = _level(key, p, h_key, h_lvl, h_unused, lv_key, lv_price, lv_size, lv_prev, lv_next, head, meta)
            lv_size[nl] += sh
            slot = _slot_for(o_ref, o_lvl, nr)
            o_ref[slot] = nr
            o_lvl[slot] = nl
            o_shares[slot] = sh
            lc = key >> 1
            best = head[key]
            bpx = lv_price[best]
            bsz = lv_size[best]
            if key & 1:
                if ap[lc] == bpx and asz[lc] == bsz:
                    continue
                ap[lc] = bpx
                asz[lc] = bsz
            else:
                if bp[lc] == bpx and bs[lc] == bsz:
                    continue
                bp[lc] = bpx
                bs[lc] = bsz
            seq[lc] += 1
            et[lc] = ts[i]
        elif t == 80 or t == 81:  # P trade, Q cross
            sh = shares[i]
            p = price[i]
            if t == 80:
                if sh <= 0:
                    counters[C_BAD_SHARES] += 1
                    continue
                if p <= 0:
                    counters[C_BAD_PRICE] += 1
                    continue
            else:
                if sh <= 0:
                    continue  # a cross that matched nothing: not a print
                if p <= 0:
                    counters[C_BAD_PRICE] += 1
                    continue
            if loc <= 0 or loc >= MAX_LOCATES:
                counters[C_UNKNOWN_LOCATE] += 1
                continue
            if not known[loc]:
                counters[C_UNKNOWN_LOCATE] += 1
            lp[loc] = p
            ls[loc] = sh
            vol[loc] += sh
            s = seq[loc] + 1
            seq[loc] = s
            et[loc] = ts[i]
            j = meta[M_TRADES] % cap
            t_loc[j] = loc
            t_price[j] = p
            t_size[j] = sh
            t_time[j] = ts[i]
            t_match[j] = match[i]
            t_seq[j] = s
            meta[M_TRADES] += 1
        elif t == 72:  # H: trading action
            st = flag[i]
            if st == 84:
                h = False
            elif st == 72 or st == 80 or st == 81:
                h = True
            else:
                counters[C_BAD_STATE] += 1
                continue
            if loc <= 0 or loc >= MAX_LOCATES:
                counters[C_UNKNOWN_LOCATE] += 1
                continue
            if not known[loc]:
                counters[C_UNKNOWN_LOCATE] += 1
            if halted[loc] != h:
                halted[loc] = h
                seq[loc] += 1
                et[loc] = ts[i]
        elif t == 82:  # R: stock directory (numeric part; names are set in Python)
            if loc <= 0 or loc >= MAX_LOCATES:
                counters[C_UNKNOWN_LOCATE] += 1
                continue
            round_lot[loc] = shares[i]
            if known[loc] and names[loc] == new_ref[i]:
                continue
            names[loc] = new_ref[i]
            mine[loc] = True
            known[loc] = True
            seq[loc] += 1
            et[loc] = ts[i]
            if loc > meta[M_HIGH]:
                meta[M_HIGH] = loc
        elif t == 66:  # B
            counters[C_BROKEN] += 1
        elif t == 83:  # S
            counters[C_SYSTEM] += 1
    return n


@numba.njit(inline="always", cache=True)
def _better(side: int, a: int, b: int) -> bool:  # pragma: no cover
    return a > b if side == 0 else a < b


@numba.njit(inline="always", cache=True)
def _level(key: int, p: int, h_key: I64, h_lvl: I64, h_unused: I64, lv_key: I64, lv_price: I64, lv_size: I64,
           lv_prev: I64, lv_next: I64, head: I64, meta: I64) -> int:  # pragma: no cover
    """The level at price ``p`` of side key ``key``, created (size 0, linked in order) if absent."""
    hk = (key << 32) | p
    slot = _slot_for(h_key, h_lvl, hk)
    if h_lvl[slot] != -1:
        return int(h_lvl[slot])
    lvl = meta[M_FREE]
    meta[M_FREE] = lv_next[lvl]
    meta[M_LEVELS] += 1
    h_key[slot] = hk
    h_lvl[slot] = lvl
    lv_key[lvl] = key
    lv_price[lvl] = p
    lv_size[lvl] = 0
    side = key & 1
    prev = -1
    cur = head[key]
    while cur != -1 and _better(side, lv_price[cur], p):
        prev = cur
        cur = lv_next[cur]
    lv_prev[lvl] = prev
    lv_next[lvl] = cur
    if cur != -1:
        lv_prev[cur] = lvl
    if prev == -1:
        head[key] = lvl
    else:
        lv_next[prev] = lvl
    return int(lvl)


@numba.njit(inline="always", cache=True)
def _take_level(lvl: int, sh: int, h_key: I64, h_lvl: I64, h_unused: I64, lv_key: I64, lv_price: I64,
                lv_size: I64, lv_prev: I64, lv_next: I64, head: I64, dseq: I64,
                meta: I64) -> bool:  # pragma: no cover
    """Take shares off a level (removing it when empty); True if it was the best level of its side."""
    key = lv_key[lvl]
    dseq[key >> 1] += 1
    at_top = head[key] == lvl
    left = lv_size[lvl] - sh
    if left > 0:
        lv_size[lvl] = left
        return bool(at_top)
    prev = lv_prev[lvl]
    nxt = lv_next[lvl]
    if prev == -1:
        head[key] = nxt
    else:
        lv_next[prev] = nxt
    if nxt != -1:
        lv_prev[nxt] = prev
    slot = _find(h_key, h_lvl, (key << 32) | lv_price[lvl])
    _erase(h_key, h_lvl, h_unused, slot)
    lv_next[lvl] = meta[M_FREE]
    meta[M_FREE] = lvl
    meta[M_LEVELS] -= 1
    return bool(at_top)


# numba's Dispatcher is typed for a fixed arity; the kernel's boundary is the signature of ``_apply``
_run = cast(Callable[..., int], _apply)


def _empty_table(n: int) -> tuple[I64, I64, I64]:
    return np.zeros(n, np.int64), np.full(n, -1, np.int64), np.zeros(n, np.int64)


class KernelBooks(Books):
    """A ``Books`` whose order-level state is numpy tables updated by a compiled kernel, batch at a time."""

    def __init__(self, *, trade_capacity: int = 65_536, order_capacity: int = 1 << 16,
                 level_capacity: int = 1 << 14) -> None:
        super().__init__(trade_capacity=trade_capacity)
        # messages ``apply_bytes`` skipped before the books (as FeedSession counts them)
        self.frame_counters = {"unknown_types": 0, "bad_lengths": 0}
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
    def apply_columns(self, cols: Columns, buf: npt.NDArray[np.uint8] | None = None) -> None:
        """Apply a decoded batch in order. ``buf``: the buffer ``cols`` came from (``decode_buffer``), needed
        only if the batch holds stock directory (R) or system event (S) messages, to set names."""
        n = cols.messages
        meta = self._meta
        meta[M_TRADES] = self._trades.total
        meta[M_HIGH] = self.high_locate
        ring = self._trades._cols
        self._counter_arr[:] = 0
        i = 0
        while True:
            i = _run(cols.kind, cols.locate, cols.timestamp, cols.ref, cols.new_ref, cols.shares, cols.price,
                       cols.match, cols.flag, i,
                       self.bid_price, self.bid_size, self.ask_price, self.ask_size, self.last_price,
                       self.last_size, self.volume, self.exchange_time, self.seq, self.depth_seq, self.round_lot,
                       self.halted, self.known, self._mine, self._names, *ring,
                       self._o_ref, self._o_lvl, self._o_shares,
                       self._h_key, self._h_lvl, self._h_unused, self._lv_key, self._lv_price, self._lv_size,
                       self._lv_prev, self._lv_next, self._head, self._counter_arr, meta)
            if i >= n:
                break
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
        if buf is not None:
            self._names_after(cols, buf)

    def _names_after(self, cols: Columns, buf: npt.NDArray[np.uint8]) -> None:
        kind = cols.kind
        events = np.flatnonzero(kind == ord("S"))
        if events.size:
            self.system_event = chr(int(cols.flag[events[-1]]))
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
        buf, cols, counts = decode_buffer(data)
        self.frame_counters["unknown_types"] += counts.unknown_types
        self.frame_counters["bad_lengths"] += counts.bad_lengths
        self.apply_columns(cols, buf)
        return counts.consumed

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
    books.apply_bytes(frame_all(itch_encode(m) for m in _warm_up_messages()))
    return time.perf_counter() - t


def _warm_up_messages() -> list[Message]:
    out: list[Message] = [SystemEvent(0, 0, 1, "Q")]
    for loc in (1, 2):
        out.append(StockDirectory(loc, 0, 1, f"WARM{loc}", "Q", "N", 100, "N", "C", "Z", "P", "N", "N", "1", "N", 0,
                                  "N"))
        out.append(TradingAction(loc, 0, 1, f"WARM{loc}", "T", " ", "    "))
    for ref in range(1, 41):
        loc, side = 1 + ref % 2, "B" if ref % 4 < 2 else "S"
        price = 1_000_000 + (-ref if side == "B" else ref) * 100
        out.append(AddOrder(loc, 0, 2, ref, side, 100, f"WARM{loc}", price, "MPID" if ref % 5 == 0 else None))
    out += [OrderExecuted(1, 0, 3, 2, 10, 1), OrderExecutedWithPrice(2, 0, 3, 1, 10, 2, "Y", 999_900),
            OrderCancel(1, 0, 3, 4, 10), OrderReplace(2, 0, 3, 3, 41, 50, 1_000_500), OrderDelete(1, 0, 3, 6),
            Trade(1, 0, 4, 0, "B", 100, "WARM1", 1_000_000, 3), CrossTrade(2, 0, 4, 500, "WARM2", 1_000_000, 4, "O"),
            BrokenTrade(1, 0, 5, 3), TradingAction(1, 0, 6, "WARM1", "H", " ", "    ")]
    return out
