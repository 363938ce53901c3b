"""Books against hand-worked tops of book."""

from __future__ import annotations

import numpy as np
import pytest

from ingest import messages as im
from normalize import Books
from tests.conftest import directory as stock_directory

L = 7  # the locate under test


def directory(locate: int = L, stock: str = "AAPL") -> im.StockDirectory:
    return stock_directory(locate, stock)


def add(ref: int, side: str, shares: int, price: int, ts: int = 10) -> im.AddOrder:
    return im.AddOrder(L, 0, ts, ref, side, shares, "AAPL", price)


def top(b: Books) -> tuple[int, int, int, int]:
    return int(b.bid_price[L]), int(b.bid_size[L]), int(b.ask_price[L]), int(b.ask_size[L])


@pytest.fixture
def books() -> Books:
    b = Books()
    b.apply(directory())
    return b


def test_directory_names_the_locate(books: Books) -> None:
    assert books.symbol_of[L] == "AAPL" and books.locate_of["AAPL"] == L
    assert books.known[L] and books.high_locate == L and books.round_lot[L] == 100
    assert books.seq[L] == 1


def test_adds_build_both_sides_and_aggregate_levels(books: Books) -> None:
    books.apply_batch([add(1, "B", 100, 1000000), add(2, "B", 200, 1000100), add(3, "B", 50, 1000100),
                       add(4, "S", 300, 1000300), add(5, "S", 10, 1000200, ts=99)])
    assert top(books) == (1000100, 250, 1000200, 10)
    assert books.exchange_time[L] == 99
    assert books.levels(L, 0, 5) == [(1000100, 250), (1000000, 100)]
    assert books.levels(L, 1, 1) == [(1000200, 10)]


def test_an_add_below_the_top_does_not_bump_seq(books: Books) -> None:
    books.apply(add(1, "B", 100, 1000000))
    seq = int(books.seq[L])
    books.apply(add(2, "B", 100, 990000))
    assert books.seq[L] == seq
    books.apply(add(3, "B", 100, 1000000))  # same best price, bigger size: the top changed
    assert books.seq[L] == seq + 1 and top(books)[:2] == (1000000, 200)


def test_execute_cancel_delete_walk_down_the_levels(books: Books) -> None:
    books.apply_batch([add(1, "B", 100, 1000100), add(2, "B", 300, 1000000), add(3, "S", 100, 1000300)])
    books.apply(im.OrderExecuted(L, 0, 20, 1, 40, 501))
    assert top(books)[:2] == (1000100, 60)
    assert (books.last_price[L], books.last_size[L], books.volume[L]) == (1000100, 40, 40)
    books.apply(im.OrderCancel(L, 0, 21, 1, 60))  # cancels the rest: the level empties
    assert top(books)[:2] == (1000000, 300) and books.order(1) is None
    books.apply(im.OrderDelete(L, 0, 22, 2))
    assert top(books) == (0, 0, 1000300, 100)
    books.apply(im.OrderExecuted(L, 0, 23, 3, 100, 502))
    assert top(books) == (0, 0, 0, 0)
    assert books.volume[L] == 140 and books.last_price[L] == 1000300


def test_execute_with_price_prints_only_when_printable(books: Books) -> None:
    books.apply_batch([add(1, "S", 500, 1000300)])
    books.apply(im.OrderExecutedWithPrice(L, 0, 30, 1, 100, 601, "N", 1000250))
    assert books.volume[L] == 0 and books.ask_size[L] == 400 and books.last_price[L] == 0
    books.apply(im.OrderExecutedWithPrice(L, 0, 31, 1, 100, 602, "Y", 1000250))
    assert (books.last_price[L], books.last_size[L], books.volume[L]) == (1000250, 100, 100)
    assert books.ask_size[L] == 300


def test_replace_moves_the_order_and_keeps_its_side(books: Books) -> None:
    books.apply_batch([add(1, "B", 100, 1000000), add(2, "B", 100, 990000)])
    books.apply(im.OrderReplace(L, 0, 40, 1, 11, 700, 980000))
    assert books.order(1) is None and books.order(11) == (L, 0, 980000, 700)
    assert top(books)[:2] == (990000, 100)
    assert books.levels(L, 0, 3) == [(990000, 100), (980000, 700)]


def test_trades_and_crosses_print_without_touching_the_book(books: Books) -> None:
    books.apply(add(1, "B", 100, 1000000))
    before = top(books)
    books.apply(im.Trade(L, 0, 50, 0, "B", 250, "AAPL", 1000050, 700))
    books.apply(im.CrossTrade(L, 0, 51, 10_000, "AAPL", 1000100, 701, "O"))
    books.apply(im.CrossTrade(L, 0, 52, 0, "AAPL", 1000200, 702, "O"))  # zero-share cross: no print
    assert top(books) == before
    assert (books.last_price[L], books.volume[L]) == (1000100, 10_250)
    prints, cursor, lost = books.trades_since(0)
    assert cursor == 2 and lost == 0
    assert prints.price.tolist() == [1000050, 1000100] and prints.match_number.tolist() == [700, 701]
    assert prints.seq.tolist() == [int(books.seq[L]) - 1, int(books.seq[L])]


def test_halts(books: Books) -> None:
    seq = int(books.seq[L])
    books.apply(im.TradingAction(L, 0, 60, "AAPL", "H", " ", "LUDP"))
    assert books.halted[L] and books.seq[L] == seq + 1
    books.apply(im.TradingAction(L, 0, 61, "AAPL", "H", " ", "LUDP"))  # no change, no version
    assert books.seq[L] == seq + 1
    books.apply(im.TradingAction(L, 0, 62, "AAPL", "T", " ", "    "))
    assert not books.halted[L] and books.seq[L] == seq + 2


def test_trade_ring_reports_what_a_slow_reader_lost() -> None:
    b = Books(trade_capacity=4)
    b.apply(directory())
    for i in range(10):
        b.apply(im.Trade(L, 0, i, 0, "B", 1, "AAPL", 1000000 + i, i))
    prints, cursor, lost = b.trades_since(0)
    assert cursor == 10 and lost == 6 and prints.match_number.tolist() == [6, 7, 8, 9]
    prints, cursor, lost = b.trades_since(10)
    assert len(prints.price) == 0 and cursor == 10 and lost == 0


def snapshot(b: Books) -> tuple[object, ...]:
    return (top(b), int(b.seq[L]), int(b.volume[L]), int(b.last_price[L]), b.live_orders(), b.levels(L, 0, 10),
            b.levels(L, 1, 10), b.trades_total, bool(b.halted[L]))


@pytest.mark.parametrize("bad,counter", [
    (im.OrderExecuted(L, 0, 1, 999, 10, 1), "unknown_order"),
    (im.OrderCancel(L, 0, 1, 999, 10), "unknown_order"),
    (im.OrderDelete(L, 0, 1, 999), "unknown_order"),
    (im.OrderReplace(L, 0, 1, 999, 1000, 10, 1000000), "unknown_order"),
    (im.OrderReplace(L, 0, 1, 1, 2, 10, 1000000), "duplicate_order_ref"),
    (im.AddOrder(L, 0, 1, 1, "B", 10, "AAPL", 1), "duplicate_order_ref"),
    (im.AddOrder(L, 0, 1, 50, "X", 10, "AAPL", 1), "bad_side"),
    (im.AddOrder(70_000, 0, 1, 51, "B", 10, "AAPL", 1), "unknown_locate"),
    (stock_directory(70_000, "BAD"), "unknown_locate"),
    (im.AddOrder(0, 0, 1, 52, "B", 10, "AAPL", 1000000), "unknown_locate"),  # locate 0 is never a stock
    (im.AddOrder(-1, 0, 1, 53, "B", 10, "AAPL", 1000000), "unknown_locate"),
    (im.Trade(70_000, 0, 1, 0, "B", 10, "AAPL", 1000000, 1), "unknown_locate"),
    (im.CrossTrade(70_000, 0, 1, 10, "AAPL", 1000000, 1, "O"), "unknown_locate"),
    (im.TradingAction(70_000, 0, 1, "AAPL", "H", " ", "LUDP"), "unknown_locate"),
    (im.AddOrder(L, 0, 1, 54, "B", 0, "AAPL", 1000000), "bad_shares"),
    (im.AddOrder(L, 0, 1, 55, "S", 10, "AAPL", 0), "bad_price"),
    (im.OrderExecuted(L, 0, 1, 1, 0, 1), "bad_shares"),
    (im.OrderCancel(L, 0, 1, 1, -5), "bad_shares"),
    (im.OrderExecutedWithPrice(L, 0, 1, 999, 10, 1, "Y", 1000000), "unknown_order"),
    (im.OrderReplace(L, 0, 1, 1, 1, 10, 1000000), "duplicate_order_ref"),  # a replace onto itself
    (im.OrderReplace(L, 0, 1, 1, 60, 0, 1000000), "bad_shares"),
    (im.OrderReplace(L, 0, 1, 1, 61, 10, -1), "bad_price"),
    (im.Trade(L, 0, 1, 0, "B", 0, "AAPL", 1000000, 1), "bad_shares"),
    (im.TradingAction(L, 0, 1, "AAPL", "Z", " ", "    "), "bad_trading_state"),
    (("not", "an", "ITCH", "message"), "unknown_message"),
])
def test_bad_input_is_counted_and_changes_nothing(books: Books, bad: object, counter: str) -> None:
    books.apply_batch([add(1, "B", 100, 1000000), add(2, "S", 100, 1000100)])
    before = snapshot(books)
    books.apply(bad)  # type: ignore[arg-type]
    assert snapshot(books) == before
    assert books.counters[counter] == 1
    assert sum(v for k, v in books.counters.items() if k != "messages") == 1
    books.apply_batch([bad])  # type: ignore[list-item]
    assert snapshot(books) == before and books.counters[counter] == 2


def test_over_execution_is_counted_and_removes_the_order(books: Books) -> None:
    books.apply_batch([add(1, "B", 100, 1000000), add(2, "B", 100, 990000)])
    seq = int(books.seq[L])
    books.apply(im.OrderExecuted(L, 0, 2, 1, 150, 9))
    assert books.counters["over_execution"] == 1 and books.order(1) is None
    # the exchange executed 150: that is the print, whatever our record of the order said
    assert (books.last_price[L], books.last_size[L], books.volume[L]) == (1000000, 150, 150)
    assert top(books)[:2] == (990000, 100) and books.seq[L] == seq + 1
    books.apply(im.OrderCancel(L, 0, 3, 2, 101))
    assert books.counters["over_execution"] == 2 and books.order(2) is None and top(books)[:2] == (0, 0)


def test_broken_trades_are_counted(books: Books) -> None:
    books.apply(im.BrokenTrade(L, 0, 1, 5))
    assert books.counters["broken_trades"] == 1


def test_arrays_are_numpy_indexed_by_locate(books: Books) -> None:
    for name in ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume",
                 "exchange_time", "seq"):
        arr = getattr(books, name)
        assert isinstance(arr, np.ndarray) and arr.dtype == np.int64 and arr.shape == (65_536,)


def test_an_undirectoried_locate_is_applied_and_counted(books: Books) -> None:
    books.apply(im.AddOrder(9, 0, 1, 1, "B", 100, "MSFT", 4000000))
    assert books.counters["unknown_locate"] == 1 and books.bid_price[9] == 4000000
    assert books.symbol_of[9] is None and not books.known[9] and books.high_locate == L
    books.apply(directory(9, "MSFT"))  # arriving late, it names a book that is already right
    assert books.known[9] and books.locate_of["MSFT"] == 9 and books.high_locate == 9
    assert books.seq[9] == 2 and books.bid_size[9] == 100


def test_seq_counts_exactly_the_messages_that_change_a_published_field(books: Books) -> None:
    def bumps(msg: object) -> int:
        before = int(books.seq[L])
        books.apply(msg)  # type: ignore[arg-type]
        return int(books.seq[L]) - before

    assert bumps(add(1, "B", 100, 1000000)) == 1
    assert bumps(add(2, "B", 100, 990000)) == 0  # below the inside
    assert bumps(add(3, "S", 100, 1010000)) == 1
    assert bumps(add(4, "S", 100, 1020000)) == 0
    assert bumps(im.OrderCancel(L, 0, 2, 2, 50)) == 0  # away from the inside
    assert bumps(im.OrderDelete(L, 0, 2, 4)) == 0
    assert bumps(im.OrderExecutedWithPrice(L, 0, 3, 3, 10, 9, "N", 1010000)) == 1  # ask size 100 -> 90
    assert bumps(im.OrderExecuted(L, 0, 4, 1, 10, 10)) == 1  # bid size and a print: one version
    assert bumps(im.OrderReplace(L, 0, 5, 1, 11, 90, 1000000)) == 0  # same price, same size: nothing moved
    assert bumps(im.OrderReplace(L, 0, 5, 11, 12, 91, 1000000)) == 1
    assert bumps(im.Trade(L, 0, 6, 0, "S", 5, "AAPL", 1005000, 11)) == 1
    assert bumps(im.CrossTrade(L, 0, 7, 0, "AAPL", 1005000, 12, "C")) == 0
    assert bumps(im.BrokenTrade(L, 0, 8, 11)) == 0
    assert top(books) == (1000000, 91, 1010000, 90)
    assert books.exchange_time[L] == 6


def test_the_best_level_emptying_falls_to_the_next_best_on_both_sides(books: Books) -> None:
    books.apply_batch([add(1, "S", 100, 1000300), add(2, "S", 200, 1000100), add(3, "S", 50, 1000200),
                       add(4, "B", 70, 999900), add(5, "B", 80, 999800), add(6, "B", 90, 999700)])
    assert top(books) == (999900, 70, 1000100, 200)
    books.apply(im.OrderExecuted(L, 0, 2, 2, 150, 1))  # partial: same level, smaller
    assert top(books)[2:] == (1000100, 50)
    books.apply(im.OrderExecuted(L, 0, 3, 2, 50, 2))
    assert top(books)[2:] == (1000200, 50)
    books.apply(im.OrderReplace(L, 0, 4, 4, 7, 10, 999600))  # the best bid moves behind the others
    assert top(books)[:2] == (999800, 80)
    assert books.levels(L, 0, 10) == [(999800, 80), (999700, 90), (999600, 10)]
    assert books.levels(L, 1, 10) == [(1000200, 50), (1000300, 100)]
    assert books.levels(L, 0, 0) == [] and books.levels(L, 2, 5) == [] and books.levels(8, 0, 5) == []
    assert books.order(7) == (L, 0, 999600, 10) and books.order_count == 5
    assert books.volume[L] == 200 and books.last_size[L] == 50


def test_halt_states_and_quotation_only(books: Books) -> None:
    for state, halted in (("P", True), ("T", False), ("Q", True), ("H", True), ("T", False)):
        books.apply(im.TradingAction(L, 0, 1, "AAPL", state, " ", "    "))
        assert bool(books.halted[L]) is halted, state


def test_broken_trades_leave_the_printed_volume(books: Books) -> None:
    books.apply(im.Trade(L, 0, 1, 0, "B", 100, "AAPL", 1000000, 77))
    books.apply(im.BrokenTrade(L, 0, 2, 77))
    assert books.volume[L] == 100 and books.trades_total == 1 and books.counters["broken_trades"] == 1


def test_stale_is_a_new_version_of_every_known_symbol(books: Books) -> None:
    books.apply(directory(9, "MSFT"))
    seq = books.seq.copy()
    books.set_stale_all(True)
    assert books.stale[L] and books.stale[9] and not books.stale[8]
    assert (books.seq - seq).tolist().count(1) == 2
    books.set_stale_all(True)  # already stale: no new version
    assert (books.seq - seq).sum() == 2
    books.set_stale_all(False)
    assert not books.stale.any() and (books.seq - seq).sum() == 4


def test_the_ring_wraps_and_a_reader_catches_up_in_pieces() -> None:
    b = Books(trade_capacity=4)
    b.apply(directory())
    cursor = 0
    seen: list[int] = []
    for i in range(1, 11):
        b.apply(im.Trade(L, 0, i, 0, "B", i, "AAPL", 1000000, i))
        if i % 3 == 0:  # reads every third print, always within the ring
            prints, cursor, lost = b.trades_since(cursor)
            assert lost == 0
            seen += prints.match_number.tolist()
    prints, cursor, lost = b.trades_since(cursor)
    seen += prints.match_number.tolist()
    assert seen == list(range(1, 11)) and cursor == b.trades_total == 10
    prints, cursor, lost = b.trades_since(6)  # exactly a full ring behind
    assert prints.match_number.tolist() == [7, 8, 9, 10] and lost == 0
    assert prints.size.tolist() == [7, 8, 9, 10] and prints.locate.tolist() == [L] * 4
    prints, cursor, lost = b.trades_since(99)  # not a cursor of this ring: nothing, and back in step
    assert len(prints.seq) == 0 and cursor == 10 and lost == 0
    kept, _, _ = b.trades_since(8)  # a contiguous run of the ring
    for i in range(11, 15):
        b.apply(im.Trade(L, 0, i, 0, "B", 1, "AAPL", 1000000, i))
    assert kept.match_number.tolist() == [9, 10]  # prints handed out are copies, not views of the ring


def test_apply_batch_counts_messages(books: Books) -> None:
    books.apply_batch([add(1, "B", 100, 1000000), add(2, "B", 100, 1000000)])
    assert books.counters["messages"] == 3  # with the fixture's directory
