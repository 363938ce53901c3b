"""The compiled quote encoder writes, for every locate, exactly the entry protobuf makes from the same books
(``encode.entry(build_quote(...).SerializeToString())``), and leaves to the per-symbol path what it cannot write."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fanout.encode import EntryCache, build_quote, entry
from fanout.quote_kernel import QuoteEncoder
from normalize import Books
from normalize.status import pack_reason
from tickfan_proto import stream_pb2 as pb

INT64 = st.one_of(st.just(0), st.integers(-(2**63), 2**63 - 1), st.integers(-300, 300),
                  st.integers(0, 2**35))
QUOTE = st.fixed_dictionaries({
    "symbol": st.one_of(st.none(), st.just(""), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=8),
                        st.just("A" * 16), st.just("B" * 17), st.just("ÉCU")),
    "seq": st.integers(0, 2**63 - 1), "bid_price": INT64, "bid_size": INT64, "ask_price": INT64,
    "ask_size": INT64, "last_price": INT64, "last_size": INT64, "volume": INT64, "exchange_time": INT64,
    "halted": st.booleans(), "stale": st.booleans(),
    "trading_state": st.sampled_from([0, ord("T"), ord("H"), ord("P"), ord("Q"), 0xE9]),
    "trading_reason": st.one_of(st.just(0), st.sampled_from(["LUDP", "T1", "MWC1", "  ", "A B ", "IPO1"]).map(
        pack_reason), st.sampled_from([0x41422020, 0x20202020, 0x00004120, 0x41204220, 0x00410042]),
        st.integers(0, 2**32 - 1)),
})


def expected(books: Books, loc: int) -> bytes:
    return entry(build_quote(books, loc).SerializeToString())


@settings(max_examples=60, deadline=None)
@given(st.lists(QUOTE, min_size=1, max_size=12))
def test_every_entry_is_protobufs_own_and_what_it_cannot_write_is_marked(rows: list[dict[str, Any]]) -> None:
    books = Books()
    for loc, row in enumerate(rows, start=1):
        books.symbol_of[loc] = row["symbol"]
        for name, value in row.items():
            if name != "symbol":
                getattr(books, name)[loc] = value
    books.high_locate = len(rows)
    locs = np.arange(1, len(rows) + 1, dtype=np.int64)[::-1].copy()  # any order
    blob, ends, bad = QuoteEncoder(books)(locs)
    start = 0
    for loc, end, left in zip(locs.tolist(), ends.tolist(), bad.tolist(), strict=True):
        if left:
            assert start == end
            raw_symbol = (books.symbol_of[loc] or "").encode()
            raw_reason = int(books.trading_reason[loc]).to_bytes(4, "big")
            assert (len(raw_symbol) > 16 or not raw_symbol.isascii() or books.trading_state[loc] > 0x7F
                    or max(raw_reason) > 0x7F)
        else:
            assert blob[start:end] == expected(books, loc)
        start = end


def test_the_cache_takes_the_kernels_entries_and_builds_the_rest_itself() -> None:
    books = Books()
    for loc, (symbol, price) in enumerate([("AAPL", 1_000_000), ("ÉCU", 2_000), ("MSFT", -5)], start=1):
        books.symbol_of[loc] = symbol
        books.bid_price[loc] = price
        books.seq[loc] = 10 + loc
    books.high_locate = 3
    cache = EntryCache(lambda loc: build_quote(books, loc), 8, batch=QuoteEncoder(books), versions=books.seq,
                       exchange_time=books.exchange_time, parse=pb.Quote.FromString)
    assert cache.refresh(np.array([3, 1, 2])) == 3
    for loc in (1, 2, 3):
        assert cache.entries[loc] == expected(books, loc)
        assert cache.lengths[loc] == len(cache.entries[loc]) and cache.seq_of[loc] == 10 + loc
        assert pb.Quote.FromString(cache.entries[loc][2:]).symbol == books.symbol_of[loc]
    json_before = cache.json(1)
    assert '"symbol": "AAPL"' in json_before and '"bidPrice": "1000000"' in json_before
    books.symbol_of[1] = "AAPX"  # a directory message renamed the locate: the ticker table follows
    books.bid_price[1] = 7
    cache.refresh([1])
    assert cache.entries[1] == expected(books, 1)
    assert cache.json(1) != json_before and '"symbol": "AAPX"' in cache.json(1)
