"""The sample session: every message kind, applied cleanly by both book engines, identically."""

from __future__ import annotations

from ingest import itch
from ingest.sample import every_kind
from normalize import Books
from normalize.kernel import KernelBooks
from normalize.row import FIELD_NAMES


def test_every_kind_round_trips_and_applies_cleanly_in_both_engines() -> None:
    msgs = every_kind()
    assert {type(m).__name__ for m in msgs} >= {"SystemEvent", "StockDirectory", "TradingAction", "AddOrder",
                                                "OrderExecuted", "OrderExecutedWithPrice", "OrderCancel",
                                                "OrderReplace", "OrderDelete", "Trade", "CrossTrade", "BrokenTrade",
                                                "RegSho", "LuldAuctionCollar", "IpoQuotingPeriod", "OperationalHalt",
                                                "MwcbDeclineLevel", "MwcbStatus"}
    assert [itch.decode(itch.encode(m)) for m in msgs] == msgs
    plain, kernel = Books(), KernelBooks(order_capacity=16, level_capacity=16)
    plain.apply_batch(msgs)
    kernel.apply_batch(msgs)
    faults = {k: v for k, v in plain.counters.items() if k not in ("messages", "broken_trades", "system_events",
                                                                      "status_events")}
    assert not any(faults.values()), faults
    assert plain.counters == kernel.counters
    assert (plain.market == kernel.market).all() and plain.market[0] == 4  # S Q, V, W, S M
    for name in FIELD_NAMES:
        assert (getattr(plain, name) == getattr(kernel, name)).all(), name
