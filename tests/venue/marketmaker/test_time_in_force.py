"""Time in force at the market maker: gtc across the rollover, FOK whole or nothing, OPG/cls in the crosses."""

from __future__ import annotations

from order_api.fix import ExecType, ExecutionReport, NewOrder, OrdStatus
from order_api.fix.codec import decode, encode
from vocab.quantities import shares

from .conftest import AAPL, drain, engine, trades

MID = (AAPL.bid_px + AAPL.ask_px) // 2


def test_rollover_expires_day_orders_and_keeps_gtc() -> None:
    e, _ = engine()
    low = AAPL.bid_px - 10000
    e.new_order("C", NewOrder("d1", "AAPL", "buy", 10, "limit", low, "day"), 0.0)
    e.new_order("C", NewOrder("g1", "AAPL", "buy", 10, "limit", low, "gtc"), 0.0)
    out = e.rollover()
    assert [(owner, r.cl_ord_id, r.exec_type, r.ord_status) for owner, r in out  # type: ignore[union-attr]
            ] == [
        ("C", "d1", ExecType.EXPIRED, OrdStatus.EXPIRED)]
    assert e.orders["g1"].open and not e.orders["d1"].open and e.open_count == 1
    assert e.rollover() == []


def test_fok_fills_whole_or_is_cancelled_whole() -> None:
    e, _ = engine()
    reports = e.new_order("C", NewOrder("f1", "AAPL", "buy", shares(100), tif="fok"), 0.0)  # 100 shown
    assert [r.last_qty for r in trades(reports)] == [shares(100)] and e.orders["f1"].status is OrdStatus.FILLED
    reports = e.new_order("C", NewOrder("f2", "AAPL", "buy", shares(101), tif="fok"), 0.0)
    assert trades(reports) == []
    last = reports[-1]
    assert isinstance(last, ExecutionReport) and last.exec_type is ExecType.CANCELED and last.cum_qty == 0
    assert e.next_wakeup() is None


def test_opg_and_cls_fill_only_in_their_cross() -> None:
    e, _ = engine()
    reports = e.new_order("C", NewOrder("o1", "AAPL", "buy", 500, tif="opg"), 0.0)
    e.new_order("C", NewOrder("o2", "AAPL", "sell", 5, "limit", AAPL.ask_px + 10000, "opg"), 0.0)
    e.new_order("C", NewOrder("c1", "AAPL", "sell", 7, tif="cls"), 0.0)
    assert trades(reports) == [] and e.next_wakeup() is None
    [(_, cls_fill)] = e.cross("close")  # only the cls order
    assert isinstance(cls_fill, ExecutionReport) and cls_fill.last_qty == 7
    out = e.cross("open")
    fill, expired = (r for _, r in out)
    assert isinstance(fill, ExecutionReport) and (fill.last_qty, fill.last_px, fill.ord_status) == (
        500, MID, OrdStatus.FILLED)  # whole, at the midpoint, whatever size is shown
    assert isinstance(expired, ExecutionReport) and expired.exec_type is ExecType.EXPIRED
    assert e.cross("open") == []


def test_tif_values_on_the_wire() -> None:
    for tif, tag in (("day", "0"), ("gtc", "1"), ("opg", "2"), ("ioc", "3"), ("fok", "4"), ("cls", "7")):
        msg = NewOrder("x", "AAPL", "buy", 1, tif=tif).to_fix()  # type: ignore[arg-type]
        assert msg.get(59) == tag
        assert NewOrder.from_fix(decode(encode(msg))).tif == tif


def test_outside_regular_hours_only_extended_orders_are_taken_and_trade() -> None:
    e, _ = engine()
    ask = AAPL.ask_px
    e.enter("pre_market")
    [refused] = e.new_order("C", NewOrder("r1", "AAPL", "buy", shares(1), "limit", ask, "day"), 0.0)
    assert isinstance(refused, ExecutionReport) and refused.exec_type is ExecType.REJECTED
    assert "not marked for extended hours" in refused.text and e.counters["outside_hours"] == 1
    ext = e.new_order("C", NewOrder("x1", "AAPL", "buy", shares(1), "limit", ask, "day", extended_hours=True), 0.0)
    assert [r.last_qty for r in trades(ext)] == [shares(1)]  # marketable: trades in the pre-market
    assert e.orders["x1"].order.extended_hours  # recorded with the order
    opg = e.new_order("C", NewOrder("o1", "AAPL", "buy", shares(1), tif="opg"), 0.0)
    assert [r.exec_type for r in opg] == [ExecType.NEW]  # type: ignore[union-attr]  # waits for its cross
    e.enter("open")
    resting = e.new_order("C", NewOrder("g1", "AAPL", "buy", shares(2), "limit", AAPL.bid_px, "gtc"), 0.0)
    assert trades(resting) == []
    e.enter("after_hours")
    assert trades(e.new_order("C", NewOrder("x2", "AAPL", "sell", shares(1), extended_hours=True), 0.0))
    e.enter("closed")
    for order in (NewOrder("r2", "AAPL", "buy", shares(1), "limit", ask, "gtc"),
                  NewOrder("x3", "AAPL", "buy", shares(1), "limit", ask, "day", extended_hours=True)):
        [closed] = e.new_order("C", order, 0.0)
        assert isinstance(closed, ExecutionReport) and closed.exec_type is ExecType.REJECTED
        assert "the venue is closed" in closed.text


def test_a_resting_regular_order_waits_through_the_extended_sessions() -> None:
    e, q = engine()
    e.new_order("C", NewOrder("g1", "AAPL", "buy", shares(2), "limit", AAPL.bid_px, "gtc"), 0.0)
    e.new_order("C", NewOrder("x1", "AAPL", "buy", shares(2), "limit", AAPL.bid_px, "day", extended_hours=True), 0.0)
    e.rollover()  # the extended one is a day order: it expires; the gtc one rests overnight
    e.enter("closed")
    e.enter("pre_market")
    q.quotes["AAPL"] = AAPL._replace(ask_px=AAPL.bid_px)  # now marketable, in the pre-market
    assert drain(e, 1.0) == [] and e.orders["g1"].open  # not marked extended: it waits for the regular session
    e.enter("open")
    assert [r.last_qty for r in trades(drain(e, 2.0))] == [shares(2)]


def test_the_extended_flag_is_part_of_the_terms() -> None:
    e, _ = engine()
    e.new_order("C", NewOrder("x1", "AAPL", "buy", shares(1), "limit", AAPL.bid_px, "day", extended_hours=True), 0.0)
    [again] = e.new_order("C", NewOrder("x1", "AAPL", "buy", shares(1), "limit", AAPL.bid_px, "day"), 0.0)
    assert isinstance(again, ExecutionReport) and again.exec_type is ExecType.REJECTED and again.order_id == "NONE"
