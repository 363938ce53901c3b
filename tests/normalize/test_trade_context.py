"""Trade prints carry their context: a per-symbol consecutive ``trade_seq``, the aggressor where ITCH reveals
it, the cross type, and the book ``seq`` they applied to; the same on the per-message and batched paths."""

from __future__ import annotations

import numpy as np

from ingest import messages as im
from ingest.itch import decode, encode
from normalize import Books
from normalize.kernel import KernelBooks
from normalize.trades import aggressor_name, cross_name, is_printable
from tests.conftest import directory
from venue.simulator import ExchangeSimulator


def capture(raw: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in raw)


def session() -> list[im.Message]:
    """Resting orders on both sides of one symbol, then every kind of execution and print."""
    return [
        directory(1, "AAA"), directory(2, "BBB"),
        im.AddOrder(1, 0, 10, 1, "B", 100, "AAA", 990_000),   # a resting bid
        im.AddOrder(1, 0, 11, 2, "S", 100, "AAA", 1_010_000),  # a resting ask
        im.OrderExecuted(1, 0, 12, 1, 10, 101),                 # the bid hit: a sell aggressor
        im.OrderExecuted(1, 0, 13, 2, 20, 102),                 # the ask lifted: a buy aggressor
        im.OrderExecutedWithPrice(1, 0, 14, 2, 5, 103, "Y", 1_000_000),
        im.OrderExecutedWithPrice(1, 0, 15, 2, 5, 104, "N", 1_000_000),  # non-printable: not a print
        im.Trade(1, 0, 16, 0, "B", 30, "AAA", 1_000_500, 105),  # non-cross: indicator always 'B', no aggressor
        im.CrossTrade(1, 0, 17, 500, "AAA", 1_000_000, 106, "O"),
        im.CrossTrade(2, 0, 18, 400, "BBB", 2_000_000, 107, "C"),
        im.CrossTrade(2, 0, 19, 300, "BBB", 2_000_000, 108, "H"),
        im.CrossTrade(2, 0, 20, 200, "BBB", 2_000_000, 109, "I"),
        im.CrossTrade(2, 0, 21, 0, "BBB", 2_000_000, 110, "C"),  # a cross that matched nothing: no print
    ]


def described(books: Books) -> list[tuple[int, int, int, str, str, bool]]:
    p, _, _ = books.trades_since(0)
    return [(int(loc), int(m), int(t), aggressor_name(int(f)), cross_name(int(f)), is_printable(int(f)))
            for loc, m, t, f in zip(p.locate, p.match_number, p.trade_seq, p.flags, strict=True)]


EXPECTED = [
    (1, 101, 1, "sell", "", True), (1, 102, 2, "buy", "", True), (1, 103, 3, "buy", "", True),
    (1, 105, 4, "", "", True), (1, 106, 5, "", "open", True),
    (2, 107, 1, "", "close", True), (2, 108, 2, "", "halt", True), (2, 109, 3, "", "extended", True),
]


def test_context_per_message_and_batched() -> None:
    ref = Books()
    ref.apply_batch(session())
    assert described(ref) == EXPECTED
    fast = KernelBooks()
    fast.apply_bytes(capture([encode(m) for m in session()]))
    assert described(fast) == EXPECTED
    assert ref.trade_seq[1] == fast.trade_seq[1] == 5 and ref.trade_seq[2] == fast.trade_seq[2] == 3
    # each print names the book version it produced
    p, _, _ = ref.trades_since(0)
    assert p.seq[-1] == ref.seq[2] and np.all(np.diff(p.seq[:5]) > 0)


def test_trade_seq_consecutive_and_equal_on_both_paths_over_a_simulated_stream() -> None:
    raw = ExchangeSimulator(50, seed=7).generate_encoded(30_000)
    ref = Books(trade_capacity=100_000)
    ref.apply_batch([decode(m) for m in raw])
    fast = KernelBooks(trade_capacity=100_000)
    for lo in range(0, len(raw), 4_096):
        fast.apply_bytes(capture(raw[lo:lo + 4_096]))
    a, _, _ = ref.trades_since(0)
    b, _, _ = fast.trades_since(0)
    assert len(a.locate) > 1_000
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    for loc in np.unique(a.locate).tolist():
        seqs = a.trade_seq[a.locate == loc]
        assert seqs.tolist() == list(range(1, len(seqs) + 1)), loc
    assert np.array_equal(ref.trade_seq, fast.trade_seq)
    assert set(aggressor_name(int(f)) for f in a.flags) >= {"buy", "sell"}


def test_a_snapshot_rebuild_keeps_trade_seq() -> None:
    for books in (Books(), KernelBooks()):
        books.apply_batch(session())
        books.rebuild([directory(1, "AAA"), im.AddOrder(1, 0, 30, 9, "S", 100, "AAA", 1_020_000)])
        books.apply_batch([im.OrderExecuted(1, 0, 31, 9, 1, 200)])
        p, _, _ = books.trades_since(0)
        assert p.trade_seq[-1] == 6 and aggressor_name(int(p.flags[-1])) == "buy"
