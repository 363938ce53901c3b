"""Time in force at the market maker: gtc across the rollover, FOK whole or nothing, OPG/cls in the crosses."""

from __future__ import annotations

from order_api.fix import ExecType, ExecutionReport, NewOrder, OrdStatus
from order_api.fix.codec import decode, encode
from vocab.quantities import shares

from .conftest import AAPL, engine, trades

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
