"""Every changed symbol's ``Quote`` entry of a flush in one compiled call (pure): the encode-once step, batched.

``QuoteEncoder(books)(locates)`` gives, for each locate in order, the repeated-field entry
(``encode.entry(pb.Quote.SerializeToString())``: tag, length, message) that ``fanout.encode.build_quote`` and
protobuf would make, byte for byte, written by one ``numba`` loop straight from the book row's arrays into one
buffer: no ``QuoteView``, protobuf message or bytes object per symbol. Proto3 wire format, fields in number order,
each left out at its default (0, false, ""): what protobuf's serializer does (tests/fanout/test_quote_kernel.py
holds it to that on random books). A symbol whose text the kernel does not write (a ticker that is not ASCII or
longer than ``SYMBOL_WIDTH``, a state or reason code outside ASCII) is marked, and the caller builds that one
the usual way.

The tickers are copied once into a byte table (``SYMBOL_WIDTH`` a row) and again only for a locate whose
``symbol_of`` entry changed (a directory message): a flush compares the two lists in C.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from normalize.source import BookSource

SYMBOL_WIDTH = 16
ENTRY_MAX = 3 + (2 + SYMBOL_WIDTH) + 9 * 11 + 2 * 2 + 3 + 10  # tag+length, symbol, varints, bools, state, reason

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
BOOL = npt.NDArray[np.bool_]


@numba.njit(inline="always", cache=True)
def _varint(out: U8, p: int, v: np.uint64) -> int:
    while v > 0x7F:
        out[p] = np.uint8((v & 0x7F) | 0x80)
        v >>= np.uint64(7)
        p += 1
    out[p] = np.uint8(v)
    return p + 1


@numba.njit(inline="always", cache=True)
def _int_field(out: U8, p: int, tag: int, v: np.int64) -> int:
    if v == 0:
        return p
    out[p] = tag
    return _varint(out, p + 1, np.uint64(v))  # a negative int64 is its two's complement, 10 bytes, as protobuf


@numba.njit(cache=True, nogil=True)
def _encode(locs: I64, sym: U8, sym_len: I64, seq: I64, bid_price: I64, bid_size: I64, ask_price: I64,
            ask_size: I64, last_price: I64, last_size: I64, volume: I64, exchange_time: I64, halted: BOOL,
            stale: BOOL, state: I64, reason: I64, out: U8, ends: I64, bad: BOOL) -> int:
    """Each locate's entry, one after the other in ``out``; ``ends[i]``: where entry ``i`` ends. A locate the
    kernel cannot write gets ``bad[i]`` and an empty entry. Returns how many were bad."""
    body = np.empty(ENTRY_MAX, np.uint8)
    p = 0
    n_bad = 0
    for i in range(locs.shape[0]):
        x = locs[i]
        st = state[x]
        rs = reason[x]
        if sym_len[x] < 0 or st < 0 or st > 0x7F or rs < 0 or rs > 0xFFFFFFFF:
            bad[i] = True
            n_bad += 1
            ends[i] = p
            continue
        # the reason's 4 bytes, big-endian: leading zero bytes dropped, then trailing spaces (``unpack_reason``)
        r0 = 0
        while r0 < 4 and (rs >> (8 * (3 - r0))) & 0xFF == 0:
            r0 += 1
        r1 = 4
        while r1 > r0 and (rs >> (8 * (4 - r1))) & 0xFF == 0x20:
            r1 -= 1
        ascii_reason = True
        for k in range(r0, r1):
            if (rs >> (8 * (3 - k))) & 0xFF > 0x7F:
                ascii_reason = False
        if not ascii_reason:
            bad[i] = True
            n_bad += 1
            ends[i] = p
            continue
        b = 0
        n = sym_len[x]
        if n:
            body[0] = 0x0A
            body[1] = n
            for k in range(n):
                body[2 + k] = sym[x, k]
            b = 2 + n
        b = _int_field(body, b, 0x10, seq[x])
        b = _int_field(body, b, 0x18, bid_price[x])
        b = _int_field(body, b, 0x20, bid_size[x])
        b = _int_field(body, b, 0x28, ask_price[x])
        b = _int_field(body, b, 0x30, ask_size[x])
        b = _int_field(body, b, 0x38, last_price[x])
        b = _int_field(body, b, 0x40, last_size[x])
        b = _int_field(body, b, 0x48, volume[x])
        b = _int_field(body, b, 0x50, exchange_time[x])
        if halted[x]:
            body[b] = 0x58
            body[b + 1] = 1
            b += 2
        if stale[x]:
            body[b] = 0x60
            body[b + 1] = 1
            b += 2
        if st:
            body[b] = 0x6A
            body[b + 1] = 1
            body[b + 2] = st
            b += 3
        if r1 > r0:
            body[b] = 0x72
            body[b + 1] = r1 - r0
            b += 2
            for k in range(r0, r1):
                body[b] = (rs >> (8 * (3 - k))) & 0xFF
                b += 1
        out[p] = 0x0A  # the repeated field's tag (Snapshot.quotes, QuoteBatch.quotes: field 1)
        p = _varint(out, p + 1, np.uint64(b))
        out[p:p + b] = body[:b]
        p += b
        ends[i] = p
    return n_bad


class QuoteEncoder:
    """The quotes channel's batch builder for ``EntryCache``: ``(blob, ends, bad)`` for a flush's locates."""

    def __init__(self, books: BookSource) -> None:
        self.books = books
        self._names: list[str | None] = []
        self._sym: U8 = np.zeros((0, SYMBOL_WIDTH), np.uint8)
        self._sym_len: I64 = np.zeros(0, np.int64)
        self(np.zeros(0, np.int64))  # compiled (or loaded from numba's cache) now, not inside the first flush

    def _tickers(self, upto: int) -> None:
        """The byte table follows ``symbol_of`` up to the highest locate in use (a list compare, in C, when
        nothing changed: the same string objects)."""
        names = self.books.symbol_of
        high = min(max(self.books.high_locate + 1, upto), len(names))
        if len(self._sym_len) != len(names):
            self._sym = np.zeros((len(names), SYMBOL_WIDTH), np.uint8)
            self._sym_len = np.zeros(len(names), np.int64)
            self._names = [None] * len(names)
        elif names[:high] == self._names[:high]:
            return
        for loc in range(high):
            new = names[loc]
            if new is self._names[loc]:
                continue
            raw = (new or "").encode()
            if len(raw) > SYMBOL_WIDTH or not raw.isascii():
                self._sym_len[loc] = -1  # the kernel leaves it to the per-symbol builder
            else:
                self._sym[loc, :len(raw)] = np.frombuffer(raw, np.uint8)
                self._sym[loc, len(raw):] = 0
                self._sym_len[loc] = len(raw)
            self._names[loc] = new

    def __call__(self, locs: I64) -> tuple[bytes, I64, BOOL]:
        self._tickers(int(locs.max()) + 1 if len(locs) else 0)
        b = self.books
        out = np.empty(len(locs) * ENTRY_MAX, np.uint8)
        ends = np.empty(len(locs), np.int64)
        bad = np.zeros(len(locs), np.bool_)
        _encode(locs, self._sym, self._sym_len, b.seq, b.bid_price, b.bid_size, b.ask_price, b.ask_size,
                b.last_price, b.last_size, b.volume, b.exchange_time, b.halted, b.stale, b.trading_state,
                b.trading_reason, out, ends, bad)
        used = int(ends[-1]) if len(ends) else 0
        return out[:used].tobytes(), ends, bad
