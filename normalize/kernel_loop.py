"""The book kernel's compiled loop (numba): one batch of decoded columns applied with ``Books``' semantics.

Used by ``normalize.kernel.KernelBooks``, which owns the arrays and grows the tables; this module holds only
the ``njit`` functions and the layout of their state.

- ``_apply`` runs one loop over a whole batch of decoded columns, with exactly ``Books``' semantics (see
  ``normalize/book.py``'s docstring: counters, over-executions, printable flag, zero-share crosses,
  one ``seq`` step per message that changes a published field, one ``depth_seq`` step per message that
  changes a level, trade ring). The sequential book logic is a chain of dependent lookups per message,
  which numpy cannot vectorise; a typed loop compiled once (``cache=True``: the first process compiles in a
  few seconds and caches to ``__pycache__``; later ones load in about 0.4 s) runs it at ~350 ns a message on
  the simulator's stream (10,000 symbols, ~95,000 live orders; ~200 ns with 200 symbols). That cost is
  memory latency, not instructions (a loop over only broken-trade messages runs at 3 ns a message): each
  message touches an order slot, a level and its hash slot, and about five per-locate arrays, mostly cache
  misses.
- Orders: an open-addressing hash table (linear probing, backward-shift deletion, so no tombstones pile
  up on the add/delete churn of a trading day) keyed by order reference: ref, level index, shares left.
  The side, price and locate of an order are its level's.
- Price levels: a pool of levels (side key ``locate << 1 | side``, price, shares, prev/next), a second hash
  table (side key, price) -> level, and per side key a doubly linked list sorted best first. The best
  level is the list's head, so when it empties the next best is its successor, found without scanning
  any order. A new level is linked in by walking from the best level: cost is the number of better
  levels, a handful near the inside where nearly all adds land.
- Trading status: the loop applies a trading action's (H) part of the quote (state, reason, halted, seq) in
  order and notes the index of every status message (H S Y J K V W) in ``noted``; ``KernelBooks`` applies the
  rest in Python after the run, in order (they touch no field the loop reads or writes). An operational halt
  (h) changes ``halted``, so the loop stops there (returns its index) and Python applies it in its place.
  Stopping costs a re-entry (~20 us: numba checks every argument), too much for the opening's trading action
  per symbol, which is why H is not handled that way.
- Both tables grow (doubling) when half full: the kernel stops before an insert that could overflow
  (``_apply`` returns the index it stopped at), Python grows the arrays, and the loop resumes there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numba
import numpy as np
import numpy.typing as npt

from .book import COUNTER_NAMES, MAX_CROSS_SHARES, MAX_LOCATES
from .trades import AGGRESSOR_BUY, AGGRESSOR_SELL, CROSS_SHIFT, PRINTABLE

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

# meta: scalar state shared between Python and the kernel
# M_T0: added to every ITCH stamp stored (the session's Eastern midnight in epoch ns; ``Books.set_session_date``)
M_ORDERS, M_LEVELS, M_FREE, M_TRADES, M_HIGH, M_T0, M_NOTED = 0, 1, 2, 3, 4, 5, 6
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# a print's flags (``normalize.trades``), as globals numba freezes into the compiled loop
F_PRINTABLE, F_BUY, F_SELL, F_CROSS_SHIFT = PRINTABLE, AGGRESSOR_BUY, AGGRESSOR_SELL, CROSS_SHIFT


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
           round_lot: I64, halted: BOOL, known: BOOL, mine: BOOL, names: I64, tseq: I64,
           # trading status the loop keeps in order (the quote's part of H), and the status messages it noted
           t_state: I64, t_reason: I64, op_halt: BOOL, noted: I64,
           # trade ring columns
           t_loc: I64, t_price: I64, t_size: I64, t_time: I64, t_match: I64, t_seq: I64, t_tseq: I64,
           t_flags: I64,
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
    t0 = meta[M_T0]
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
                et[loc] = ts[i] + t0
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
                et[key >> 1] = ts[i] + t0
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
                # the resting order's side is known: the aggressor took the other one (ask rested: a buy)
                _print(lc, lvl_price if t == 69 else price[i], sh, ts[i] + t0, match[i],
                       F_PRINTABLE | (F_BUY if key & 1 else F_SELL), lp, ls, vol, seq, et, tseq,
                       t_loc, t_price, t_size, t_time, t_match, t_seq, t_tseq, t_flags, meta, cap)
            elif moved:
                seq[lc] += 1
                et[lc] = ts[i] + t0
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
            et[lc] = ts[i] + t0
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
                if sh == 0:
                    continue  # a cross that matched nothing: not a print
                if sh < 0 or sh > MAX_CROSS_SHARES:  # 8 bytes on the wire (negative: >= 2**63 as int64)
                    counters[C_BAD_SHARES] += 1
                    continue
                if p <= 0:
                    counters[C_BAD_PRICE] += 1
                    continue
            if loc <= 0 or loc >= MAX_LOCATES:
                counters[C_UNKNOWN_LOCATE] += 1
                continue
            if not known[loc]:
                counters[C_UNKNOWN_LOCATE] += 1
            # P: its Buy/Sell Indicator is always 'B' (ITCH 5.0): no aggressor; Q: the cross type, no aggressor
            _print(loc, p, sh, ts[i] + t0, match[i],
                   F_PRINTABLE if t == 80 else F_PRINTABLE | (_cross_code(flag[i]) << F_CROSS_SHIFT),
                   lp, ls, vol, seq, et, tseq, t_loc, t_price, t_size, t_time, t_match, t_seq, t_tseq, t_flags,
                   meta, cap)
        elif t == 72:  # H: trading action; its quote part here (normalize.status._trading_action's), the rest noted
            st = flag[i]
            if st != 84 and st != 72 and st != 80 and st != 81:
                counters[C_BAD_STATE] += 1
                continue
            if loc <= 0 or loc >= MAX_LOCATES:
                counters[C_UNKNOWN_LOCATE] += 1
                continue
            if not known[loc]:
                counters[C_UNKNOWN_LOCATE] += 1
            r = shares[i]  # the reason's 4 bytes; ITCH pads with spaces, which the decoded text drops
            while r != 0 and (r & 0xFF) == 32:
                r >>= 8
            changed = t_state[loc] != st or t_reason[loc] != r
            t_state[loc] = st
            t_reason[loc] = r
            h = st != 84 or op_halt[loc]
            if halted[loc] != h:
                halted[loc] = h
                seq[loc] += 1
                et[loc] = ts[i] + t0
            elif changed:
                seq[loc] += 1
                et[loc] = ts[i] + t0
            noted[meta[M_NOTED]] = i << 1 | 1
            meta[M_NOTED] += 1
        elif t == 83 or t == 89 or t == 74 or t == 75 or t == 86 or t == 87:
            # S Y J K V W: status only (no published book field): noted for Python, applied after the run in order,
            # with whether the locate had its directory entry here (Python counts ``unknown_locate`` as of then)
            k = 1 if 0 < loc < MAX_LOCATES and known[loc] else 0
            noted[meta[M_NOTED]] = i << 1 | k
            meta[M_NOTED] += 1
        elif t == 104:
            # h: an operational halt changes ``halted``: Python applies it in its place, then the loop resumes
            return i
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
            et[loc] = ts[i] + t0
            if loc > meta[M_HIGH]:
                meta[M_HIGH] = loc
        elif t == 66:  # B
            counters[C_BROKEN] += 1
    return n


@numba.njit(inline="always", cache=True)
def _print(loc: int, p: int, sh: int, time: int, match_no: int, flags: int, lp: I64, ls: I64, vol: I64, seq: I64,
           et: I64, tseq: I64, t_loc: I64, t_price: I64, t_size: I64, t_time: I64, t_match: I64, t_seq: I64,
           t_tseq: I64, t_flags: I64, meta: I64, cap: int) -> None:  # pragma: no cover
    """A printable execution: the symbol's last sale, volume and versions, and one entry in the trade ring (the
    same for an execution of a resting order and for a trade or cross print)."""
    lp[loc] = p
    ls[loc] = sh
    vol[loc] += sh
    s = seq[loc] + 1
    seq[loc] = s
    et[loc] = time
    j = meta[M_TRADES] % cap
    t_loc[j] = loc
    t_price[j] = p
    t_size[j] = sh
    t_time[j] = time
    t_match[j] = match_no
    t_seq[j] = s
    ts_ = tseq[loc] + 1
    tseq[loc] = ts_
    t_tseq[j] = ts_
    t_flags[j] = flags
    meta[M_TRADES] += 1


@numba.njit(inline="always", cache=True)
def _cross_code(c: int) -> int:  # pragma: no cover
    """ITCH Cross Type byte -> its code in a print's flags (``normalize.trades.CROSS_CODES``)."""
    if c == 79:  # O
        return 1
    if c == 67:  # C
        return 2
    if c == 72:  # H
        return 3
    if c == 73:  # I
        return 4
    return 0


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


@numba.njit(cache=True)
def _top_levels(locates: I64, head: I64, lv_price: I64, lv_next: I64, lv_size: I64,
                depth: I64) -> None:  # pragma: no cover
    """``depth[loc, side, level] = (price, size)``, best first, zero after the last level, for each locate
    (a shared-memory writer publishes the depth of what a block changed: a Python walk cost it more than the
    kernel itself)."""
    levels = depth.shape[2]
    for i in range(locates.shape[0]):
        loc = locates[i]
        for side in range(2):
            cur = head[loc << 1 | side]
            k = 0
            while cur != -1 and k < levels:
                depth[loc, side, k, 0] = lv_price[cur]
                depth[loc, side, k, 1] = lv_size[cur]
                cur = lv_next[cur]
                k += 1
            while k < levels:
                depth[loc, side, k, 0] = 0
                depth[loc, side, k, 1] = 0
                k += 1
