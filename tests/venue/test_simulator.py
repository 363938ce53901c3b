"""The exchange simulator (pure): every message type, consistent order references, a book that never crosses."""

from __future__ import annotations

from collections import Counter

import pytest

from ingest import itch
from ingest import messages as im
from venue.simulator import HOT_TICKERS, ExchangeSimulator, fixed_universe


def test_universe_is_unique_and_hot_first() -> None:
    names = fixed_universe(10_000)
    assert len(set(names)) == 10_000
    assert names[:3] == list(HOT_TICKERS[:3]) == ["TSLA", "NVDA", "AAPL"]
    assert all(1 <= len(n) <= 8 and n.isalpha() for n in names)


@pytest.fixture(scope="module")
def day() -> list[im.Message]:
    """A short trading day: enough messages for the rare types (halts, crosses, broken trades)."""
    return ExchangeSimulator(200, seed=3).generate(120_000)


def test_every_type_appears_and_references_are_live(day: list[im.Message]) -> None:
    msgs = day
    kinds = {type(m).__name__ + ("F" if isinstance(m, im.AddOrder) and m.attribution else "") for m in msgs}
    assert kinds >= {"SystemEvent", "StockDirectory", "TradingAction", "AddOrder", "AddOrderF", "OrderExecuted",
                     "OrderExecutedWithPrice", "OrderCancel", "OrderDelete", "OrderReplace", "Trade",
                     "CrossTrade", "BrokenTrade"}
    assert sum(isinstance(m, im.StockDirectory) for m in msgs) == 200
    live: dict[int, int] = {}
    for m in msgs:
        if isinstance(m, im.AddOrder):
            assert m.order_ref not in live
            live[m.order_ref] = m.shares
        elif isinstance(m, im.OrderExecuted | im.OrderExecutedWithPrice):
            assert live[m.order_ref] >= m.executed_shares
            live[m.order_ref] -= m.executed_shares
            if live[m.order_ref] == 0:
                del live[m.order_ref]
        elif isinstance(m, im.OrderCancel):
            assert live[m.order_ref] > m.cancelled_shares
            live[m.order_ref] -= m.cancelled_shares
        elif isinstance(m, im.OrderDelete):
            del live[m.order_ref]
        elif isinstance(m, im.OrderReplace):
            del live[m.original_order_ref]
            assert m.new_order_ref not in live
            live[m.new_order_ref] = m.shares


def test_the_day_opens_in_order(day: list[im.Message]) -> None:
    events = [m.event_code for m in day[:500] if isinstance(m, im.SystemEvent)]
    assert events == ["O", "S", "Q"]
    directory = [m for m in day if isinstance(m, im.StockDirectory)]
    assert [m.locate for m in directory] == list(range(1, 201))
    assert [m.stock for m in directory] == fixed_universe(200)
    first_add = next(i for i, m in enumerate(day) if isinstance(m, im.AddOrder))
    assert all(isinstance(m, im.SystemEvent | im.StockDirectory | im.TradingAction) for m in day[:first_add])
    last = day[first_add - 1]
    assert isinstance(last, im.SystemEvent) and last.event_code == "Q"


def test_prices_are_on_penny_ticks_and_the_book_never_crosses(day: list[im.Message]) -> None:
    book: dict[int, dict[int, tuple[str, int, int]]] = {}  # locate -> ref -> (side, price, shares)
    for m in day:
        if isinstance(m, im.AddOrder | im.OrderReplace):
            if isinstance(m, im.OrderReplace):
                side, ref = book[m.locate].pop(m.original_order_ref)[0], m.new_order_ref
            else:
                side, ref = m.side, m.order_ref
            assert m.price % 100 == 0 and m.price > 0
            orders = book.setdefault(m.locate, {})
            other = [o[1] for o in orders.values() if o[0] != side]
            if other:
                assert (m.price < min(other)) if side == "B" else (m.price > max(other)), m
            orders[ref] = (side, m.price, m.shares)
        elif isinstance(m, im.OrderDelete):
            del book[m.locate][m.order_ref]
        elif isinstance(m, im.OrderExecuted | im.OrderExecutedWithPrice | im.OrderCancel):
            side, price, left = book[m.locate][m.order_ref]
            left -= m.cancelled_shares if isinstance(m, im.OrderCancel) else m.executed_shares
            if left:
                book[m.locate][m.order_ref] = (side, price, left)
            else:
                del book[m.locate][m.order_ref]
        elif isinstance(m, im.Trade | im.CrossTrade):
            assert (m.price if isinstance(m, im.Trade) else m.cross_price) % 100 == 0
    assert max(len(orders) for orders in book.values()) <= 48  # bounded per symbol


def test_hot_names_are_busiest_and_halts_resume(day: list[im.Message]) -> None:
    activity = Counter(m.locate for m in day if isinstance(m, im.AddOrder))
    head, middle, tail = (sum(activity[loc] for loc in range(start, start + 5)) for start in (1, 10, 150))
    assert head > middle > tail  # TSLA, NVDA, AAPL, ... then NFLX and its neighbours, then the long tail
    halts = [(i, m.locate) for i, m in enumerate(day) if isinstance(m, im.TradingAction) and m.trading_state == "H"]
    assert halts
    for i, locate in halts[:2]:
        assert any(isinstance(m, im.TradingAction) and m.locate == locate and m.trading_state == "T" for m in day[i:])
    matches: set[int] = set()
    for m in day:
        if isinstance(m, im.BrokenTrade):
            assert m.match_number in matches  # breaks an earlier trade
        elif isinstance(m, im.OrderExecuted | im.OrderExecutedWithPrice | im.Trade | im.CrossTrade):
            matches.add(m.match_number)


def test_encoded_stream_decodes() -> None:
    sim = ExchangeSimulator(50, seed=5)
    raw = sim.generate_encoded(5_000)
    assert all(itch.encode(itch.decode(r)) == r for r in raw)


def test_the_stream_does_not_depend_on_how_it_is_asked_for() -> None:
    """The sender asks for whatever its clock says is owed: chunking must not change the stream (the tests
    that check a delivery against the generated stream rely on it)."""
    clock = lambda: 0  # noqa: E731
    whole = ExchangeSimulator(30, seed=4, clock=clock).generate_encoded(20_000)
    sim, parts = ExchangeSimulator(30, seed=4, clock=clock), []
    for n in [1, 7, 500, 3, 4096, 9000] * 4:
        parts += sim.generate_encoded(n)
    assert parts[:20_000] == whole


def test_a_snapshot_holds_the_live_orders_and_the_directory() -> None:
    from ingest.itch import decode

    sim = ExchangeSimulator(20, seed=6)
    sim.generate_encoded(3_000)
    snap = [decode(m) for m in sim.snapshot()]
    assert [m.stock for m in snap if isinstance(m, im.StockDirectory)] == fixed_universe(20)
    assert {m.order_ref for m in snap if isinstance(m, im.AddOrder)} == set(sim.orders)
