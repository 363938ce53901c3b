"""The market maker's matching engine, pure: quotes and time passed in, reports out."""

from __future__ import annotations

from order_api.fix import (
    CancelReject,
    CancelRequest,
    CxlRejReason,
    ExecType,
    ExecutionReport,
    NewOrder,
    OrdStatus,
    StatusRequest,
)
from venue.marketmaker import DUPLICATE_TERMS, UNKNOWN_ORDER, Faults
from venue.marketmaker.engine import DUPLICATE_FORGOTTEN
from vocab.quantities import QTY_SCALE as S

from .conftest import AAPL, drain, drain_once, engine, trades


def test_market_buy_fills_at_the_ask_and_sell_at_the_bid() -> None:
    e, _ = engine()
    new, fill = e.new_order("C", NewOrder("b1", "AAPL", "buy", 10 * S), 0.0)
    assert isinstance(new, ExecutionReport) and new.exec_type is ExecType.NEW and new.leaves_qty == 10 * S
    assert isinstance(fill, ExecutionReport)
    assert (fill.last_px, fill.last_qty, fill.ord_status, fill.avg_px) == (AAPL.ask_px, 10 * S, OrdStatus.FILLED,
                                                                          AAPL.ask_px)
    _, sell = e.new_order("C", NewOrder("s1", "AAPL", "sell", 10 * S), 0.0)
    assert isinstance(sell, ExecutionReport) and sell.last_px == AAPL.bid_px


def test_partial_fills_take_at_most_the_displayed_size() -> None:
    e, _ = engine()
    first = trades(e.new_order("C", NewOrder("b1", "AAPL", "buy", 250 * S), 0.0))
    rest = trades(drain(e))
    fills = first + rest
    assert [f.last_qty // S for f in fills] == [100, 100, 50]
    assert [f.cum_qty // S for f in fills] == [100, 200, 250] and [f.leaves_qty // S for f in fills] == [150, 50, 0]
    assert [f.ord_status for f in fills] == [OrdStatus.PARTIALLY_FILLED] * 2 + [OrdStatus.FILLED]
    assert len({f.exec_id for f in fills}) == 3


def test_fault_max_fill_qty_and_no_partial_fills() -> None:
    e, _ = engine(Faults(max_fill_qty=1))
    fills = trades(e.new_order("C", NewOrder("b1", "AAPL", "buy", 3 * S), 0.0)) + drain(e)
    assert [f.last_qty // S for f in fills] == [1, 1, 1]
    e, _ = engine(Faults(partial_fills=False))
    fills = trades(e.new_order("C", NewOrder("b1", "AAPL", "buy", 1000 * S), 0.0))
    assert [f.last_qty // S for f in fills] == [1000] and e.next_wakeup() is None


def test_limit_orders() -> None:
    e, q = engine()
    # marketable: a buy limit at or above the ask fills at the ask (price improvement)
    fills = trades(e.new_order("C", NewOrder("b1", "AAPL", "buy", 10 * S, "limit", 1900000), 0.0))
    assert fills[0].last_px == AAPL.ask_px
    # not marketable: rests (day), re-checked, fills when the book comes to it
    rep = e.new_order("C", NewOrder("b2", "AAPL", "buy", 10 * S, "limit", 1890000), 0.0)
    assert [r.exec_type for r in rep] == [ExecType.NEW]  # type: ignore[union-attr]
    assert drain_once(e) == []
    q.set("AAPL", 1889000, 100, 1890000, 100)
    (fill,) = drain(e)
    assert (fill.cl_ord_id, fill.last_px, fill.ord_status) == ("b2", 1890000, OrdStatus.FILLED)
    # sell limit: marketable when at or below the bid
    assert not trades(e.new_order("C", NewOrder("s1", "AAPL", "sell", 5 * S, "limit", 1889100), 0.0))
    assert trades(e.new_order("C", NewOrder("s2", "AAPL", "sell", 5 * S, "limit", 1889000), 0.0))



def test_ioc_gets_one_execution_then_the_rest_is_cancelled() -> None:
    e, _ = engine()
    reps = e.new_order("C", NewOrder("i1", "AAPL", "buy", 250 * S, "market", None, "ioc"), 0.0)
    assert [(r.exec_type, r.ord_status, r.cum_qty // S, r.leaves_qty // S) for r in reps] == [  # type: ignore[union-attr]
        (ExecType.NEW, OrdStatus.NEW, 0, 250),
        (ExecType.TRADE, OrdStatus.PARTIALLY_FILLED, 100, 150),
        (ExecType.CANCELED, OrdStatus.CANCELED, 100, 0),
    ]
    reps = e.new_order("C", NewOrder("i2", "AAPL", "buy", 10 * S, "limit", 1000000, "ioc"), 0.0)
    assert [r.exec_type for r in reps] == [ExecType.NEW, ExecType.CANCELED]  # type: ignore[union-attr]
    assert e.next_wakeup() is None and e.open_count == 0


def test_rejects() -> None:
    e, q = engine()
    (r,) = e.new_order("C", NewOrder("x1", "ZZZZ", "buy", 1 * S), 0.0)
    assert isinstance(r, ExecutionReport) and r.exec_type is ExecType.REJECTED and "ZZZZ" in r.text
    (r,) = e.new_order("C", NewOrder("x2", "bad sym!", "buy", 1 * S), 0.0)
    assert isinstance(r, ExecutionReport) and r.exec_type is ExecType.REJECTED
    q.set("EMPTY", 1000, 10, 0, 0)
    (r,) = e.new_order("C", NewOrder("x3", "EMPTY", "buy", 1 * S), 0.0)
    assert isinstance(r, ExecutionReport) and r.text == "no ask for EMPTY"
    e.faults.reject_rate = 1.0
    (r,) = e.new_order("C", NewOrder("x4", "AAPL", "buy", 1 * S), 0.0)
    assert isinstance(r, ExecutionReport) and "simulated" in r.text
    assert e.counters["rejects"] == 4


def test_duplicate_cl_ord_id() -> None:
    e, _ = engine()
    order = NewOrder("d1", "AAPL", "buy", 10 * S)
    e.new_order("C", order, 0.0)
    (same,) = e.new_order("C2", order, 0.0)
    assert isinstance(same, ExecutionReport) and same.exec_type is ExecType.ORDER_STATUS
    assert same.ord_status is OrdStatus.FILLED and same.cum_qty == 10 * S
    (other,) = e.new_order("C", NewOrder("d1", "AAPL", "buy", 11 * S), 0.0)
    assert isinstance(other, ExecutionReport) and other.exec_type is ExecType.REJECTED
    assert other.text == DUPLICATE_TERMS and other.order_id == "NONE"
    assert e.counters["orders"] == 1 and e.orders["d1"].status is OrdStatus.FILLED


def test_cancel() -> None:
    e, _ = engine()
    e.new_order("C", NewOrder("r1", "AAPL", "buy", 10 * S, "limit", 1000000), 0.0)
    (r,) = e.cancel("C", CancelRequest("r1:c1", "r1", "AAPL", "buy", 10), 0.0)
    assert isinstance(r, ExecutionReport)
    assert (r.exec_type, r.ord_status, r.cl_ord_id, r.orig_cl_ord_id, r.leaves_qty) == (
        ExecType.CANCELED, OrdStatus.CANCELED, "r1:c1", "r1", 0)
    (late,) = e.cancel("C", CancelRequest("r1:c2", "r1", "AAPL", "buy", 10), 0.0)
    assert isinstance(late, CancelReject) and late.reason is CxlRejReason.TOO_LATE_TO_CANCEL
    assert late.ord_status is OrdStatus.CANCELED
    (unknown,) = e.cancel("C", CancelRequest("n:c1", "n", "AAPL", "buy", 10), 0.0)
    assert isinstance(unknown, CancelReject) and unknown.reason is CxlRejReason.UNKNOWN_ORDER
    assert e.next_wakeup() is None


def test_status_resends_trades_with_their_exec_ids() -> None:
    e, _ = engine()
    fills = trades(e.new_order("C", NewOrder("s1", "AAPL", "buy", 250 * S), 0.0)) + drain(e)
    *again, status = e.status("C", StatusRequest("s1", "AAPL", "buy"))
    assert [r.exec_id for r in again] == [f.exec_id for f in fills]  # type: ignore[union-attr]
    assert all(r.poss_resend for r in again)  # type: ignore[union-attr]
    assert isinstance(status, ExecutionReport) and status.exec_type is ExecType.ORDER_STATUS
    assert (status.ord_status, status.cum_qty, status.leaves_qty) == (OrdStatus.FILLED, 250 * S, 0)
    (unknown,) = e.status("C", StatusRequest("nope", "AAPL", "sell"))
    assert isinstance(unknown, ExecutionReport)
    assert (unknown.exec_type, unknown.ord_status, unknown.text, unknown.side) == (
        ExecType.ORDER_STATUS, OrdStatus.REJECTED, UNKNOWN_ORDER, "sell")


def test_average_price_over_fills_at_different_prices() -> None:
    e, q = engine()
    e.new_order("C", NewOrder("a1", "AAPL", "buy", 3 * S, "limit", 2000000), 0.0)  # 3 @ 189.26 ... one lot of 100
    q.set("AAPL", 1, 1, 1000001, 1)
    e.new_order("C", NewOrder("a2", "AAPL", "buy", 3 * S), 0.0)
    q.set("AAPL", 1, 1, 1000002, 1)
    drain(e)
    q.set("AAPL", 1, 1, 1000002, 1)
    last = e.status("C", StatusRequest("a2", "AAPL", "buy"))[-1]
    # 1 @ 100.0001 + 2 @ 100.0002 = 300.0005 / 3 = 100.000166.. -> 100.0002 (rounded half up)
    assert isinstance(last, ExecutionReport) and (last.cum_qty, last.avg_px) == (3 * S, 1000002)


def test_order_table_is_bounded() -> None:
    e, _ = engine(max_orders=2)
    e.new_order("C", NewOrder("f1", "AAPL", "buy", 1 * S), 0.0)
    e.new_order("C", NewOrder("f2", "AAPL", "buy", 1 * S), 0.0)
    e.new_order("C", NewOrder("f3", "AAPL", "buy", 1 * S), 0.0)  # forgets f1, the oldest finished order
    assert list(e.orders) == ["f2", "f3"] and e.counters["evicted"] == 1
    assert e.status("C", StatusRequest("f1", "AAPL", "buy"))[0].text == UNKNOWN_ORDER
    e, _ = engine(max_orders=2)
    for cl in ("r1", "r2"):
        e.new_order("C", NewOrder(cl, "AAPL", "buy", 1 * S, "limit", 1000000), 0.0)
    (r,) = e.new_order("C", NewOrder("r3", "AAPL", "buy", 1 * S), 0.0)
    assert isinstance(r, ExecutionReport) and r.text == "order table full" and len(e.orders) == 2


def test_a_forgotten_orders_cl_ord_id_is_refused_not_executed_again() -> None:
    # Before: once f1 was evicted, the same NewOrderSingle again was a brand-new order, filled a second time.
    e, _ = engine(max_orders=2)
    for cl in ("f1", "f2", "f3"):
        e.new_order("C", NewOrder(cl, "AAPL", "buy", 1 * S), 0.0)
    fills = e.counters["fills"]
    (r,) = e.new_order("C", NewOrder("f1", "AAPL", "buy", 1 * S), 0.0)
    assert isinstance(r, ExecutionReport) and r.exec_type is ExecType.REJECTED and r.order_id == "NONE"
    assert r.text == DUPLICATE_FORGOTTEN and e.counters["fills"] == fills and "f1" not in e.orders


def test_reports_go_to_the_last_session_that_asked() -> None:
    e, q = engine()
    e.new_order("W1", NewOrder("o1", "AAPL", "buy", 10 * S, "limit", 1890000), 0.0)
    e.status("W2", StatusRequest("o1", "AAPL", "buy"))
    q.set("AAPL", 1889000, 100, 1890000, 100)
    wake = e.next_wakeup()
    assert wake is not None
    (owner, _), = e.step(wake)
    assert owner == "W2"
