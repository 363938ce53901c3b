"""OrderCancelReplaceRequest at the market maker: the old order ends (OrdStatus 5) and the replacement takes what is
left of the total; too late (closed first, or the total filled already) is an OrderCancelReject 434=2; a fill can be
injected just before the replace (``Faults.fill_before_replace``); the same request again re-sends the answer."""

from __future__ import annotations

from order_api.fix import (
    CancelReject,
    ExecType,
    ExecutionReport,
    NewOrder,
    OrdStatus,
    ReplaceRequest,
    StatusRequest,
)
from order_api.fix.codec import decode, encode
from venue.marketmaker import Faults

from .conftest import AAPL, engine, trades

S = 1_000_000
LOW = AAPL.bid_px - 10_000


def test_replace_a_resting_order_then_the_same_request_again() -> None:
    e, _ = engine()
    e.new_order("C", NewOrder("o1", "AAPL", "buy", 10 * S, "limit", LOW), 0.0)
    req = ReplaceRequest("n1", "o1", "AAPL", "buy", 6 * S, LOW + 100, "gtc")
    [answer] = e.replace_order("C", req, 0.0)
    assert isinstance(answer, ExecutionReport)
    assert (answer.exec_type, answer.ord_status, answer.cl_ord_id, answer.orig_cl_ord_id, answer.leaves_qty) == (
        ExecType.REPLACED, OrdStatus.NEW, "n1", "o1", 6 * S)
    assert e.orders["o1"].status is OrdStatus.REPLACED and e.orders["n1"].open and e.open_count == 1
    assert e.orders["n1"].order.tif == "gtc" and e.orders["n1"].order.limit_price == LOW + 100
    [again] = e.replace_order("C", req, 0.0)
    assert isinstance(again, ExecutionReport) and again.exec_id == answer.exec_id and again.poss_resend
    # a status request about the old order brings the answer back too
    status = e.status("C", StatusRequest("o1", "AAPL", "buy"))
    assert any(isinstance(r, ExecutionReport) and r.exec_type is ExecType.REPLACED for r in status)


def test_a_marketable_replacement_trades_at_once() -> None:
    e, _ = engine()
    e.new_order("C", NewOrder("o1", "AAPL", "buy", 50 * S, "limit", LOW), 0.0)
    out = e.replace_order("C", ReplaceRequest("n1", "o1", "AAPL", "buy", 50 * S, AAPL.ask_px), 0.0)
    assert [r.last_qty for r in trades(out)] == [50 * S] and e.orders["n1"].status is OrdStatus.FILLED


def test_too_late_or_unknown_is_a_cancel_reject_for_a_replace() -> None:
    e, _ = engine(Faults(fill_before_replace=0))
    e.new_order("C", NewOrder("o1", "AAPL", "buy", 10 * S, "limit", LOW), 0.0)
    out = e.replace_order("C", ReplaceRequest("n1", "o1", "AAPL", "buy", 12 * S, LOW + 100), 0.0)
    assert [r.last_qty for r in trades(out)] == [10 * S]  # the racing fill, at the old limit
    reject = out[-1]
    assert isinstance(reject, CancelReject) and reject.replace and "n1" not in e.orders
    assert CancelReject.from_fix(decode(encode(reject.to_fix()))) == reject
    assert reject.to_fix()[434] == "2"


def test_a_partial_fill_first_leaves_the_rest_of_the_total() -> None:
    e, _ = engine(Faults(fill_before_replace=4))
    e.new_order("C", NewOrder("o1", "AAPL", "buy", 10 * S, "limit", LOW), 0.0)
    out = e.replace_order("C", ReplaceRequest("n1", "o1", "AAPL", "buy", 6 * S, LOW), 0.0)
    assert [r.last_qty for r in trades(out)] == [4 * S]
    assert e.orders["n1"].order.qty == 2 * S
    e.new_order("C", NewOrder("o2", "AAPL", "buy", 10 * S, "limit", LOW), 0.0)
    out = e.replace_order("C", ReplaceRequest("n2", "o2", "AAPL", "buy", 4 * S, LOW), 0.0)
    assert isinstance(out[-1], CancelReject) and e.orders["o2"].open  # 4 of 4 filled already: too late
    unknown = e.replace_order("C", ReplaceRequest("n3", "zz", "AAPL", "buy", 4 * S, LOW), 0.0)
    assert isinstance(unknown[0], CancelReject) and unknown[0].text == "unknown order"


def test_replace_request_round_trips_through_fix() -> None:
    req = ReplaceRequest("n1", "o1", "AAPL", "sell", 1_500_000, 1_892_500, "gtc")
    msg = req.to_fix(0.0)
    assert msg.msg_type == "G" and msg[41] == "o1" and msg[38] == "1.5" and msg[44] == "189.2500" and msg[59] == "1"
    assert ReplaceRequest.from_fix(msg) == req
    assert ReplaceRequest.from_fix(decode(encode(msg))) == req
