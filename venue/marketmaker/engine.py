"""The market maker's matching engine, pure: quotes, time and randomness passed in; every call returns the
reports it causes, in order.

A buy fills at the ask, a sell at the bid; a market order is always marketable while the far side exists, a
limit order when it crosses it (buy limit >= ask, sell limit <= bid). Each execution fills at most the displayed
size at the touch (and ``Faults.max_fill_qty``), the rest follows in later executions ``fill_interval`` apart
while the order stays marketable. The book is a quote, not a depth of orders: displayed size is not consumed,
it is "refreshed" between executions. A day order that is not marketable rests and is re-checked every
``recheck_interval``; an IOC order gets one execution at most and its remainder is cancelled at once.

Time in force and the session (driven by ``session_event``, from the venue's schedule or an operator): a gtc
order rests like a day order but survives the day's ``rollover``, which expires every open day order (ExecType
and OrdStatus C); a FOK order fills whole in one execution or is cancelled whole at once; OPG and at-the-close
(cls) orders wait for the venue's opening and closing crosses (``cross``), where each fills whole at the cross
price (the midpoint of the book at that moment) if its limit allows, and expires otherwise.

Trading hours (``phase``, moved by ``enter`` on each session event: "pre_market", "open", "after_hours",
"closed"; "open" until told otherwise, as the demo's day is). An order trades in the regular session only unless
its NewOrderSingle lists the extended sessions (``NewOrder.extended_hours``, FIX 336 in its trading-session group),
which also trade in the pre-market and after hours. Outside the sessions an order may trade in, a new one is
rejected ("outside regular trading hours", ExecType 8) and a resting one (a gtc overnight) waits without trading;
OPG and cls orders are taken at any time for their crosses; when "closed" nothing new is taken.

Orders and ClOrdIDs. All initiators are treated as one firm: ClOrdIDs are unique across sessions, so an
execution worker that takes over another worker's orders (after a crash) can ask about them under its own
CompID. An order's reports go to the session that last sent a message about it (its ``owner``). A repeated
NewOrderSingle with the same ClOrdID and the same terms is the same order (answered with an ExecType I status
report); with different terms it is rejected (ExecType 8, OrderID "NONE", Text "duplicate ClOrdID with different
terms") and the original order is untouched.

Bounds: at most ``max_orders`` orders are kept (default 100,000). When full, the oldest finished orders
(filled, cancelled, rejected) are forgotten first; if every order is still open a new one is rejected ("order
table full"). A forgotten or never-seen ClOrdID answers a status request with OrdStatus 8 and Text "unknown
order". A forgotten order's ClOrdID is still remembered (up to another ``max_orders`` of them, oldest dropped
first): a NewOrderSingle that reuses it is rejected ("duplicate ClOrdID: order already finished"), never
executed as a new order. Nothing survives a restart: the random per-process prefix of OrderIDs and ExecIDs
(so no ExecID is reused across restarts) is also the "incarnation" announced on Logon (tag 9100), by which the
execution workers know not to re-send an order that a previous incarnation may have filled.
"""

from __future__ import annotations

import heapq
import random
import re
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Literal

from order_api.fix import (
    CancelReject,
    CancelRequest,
    CxlRejReason,
    ExecType,
    ExecutionReport,
    NewOrder,
    OrdStatus,
    ReplaceRequest,
    StatusRequest,
)
from vocab.quantities import QTY_SCALE

from .quotes import BookQuote, QuoteProvider

MAX_ORDERS = 100_000
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,7}$")
UNKNOWN_ORDER = "unknown order"
DUPLICATE_TERMS = "duplicate ClOrdID with different terms"
DUPLICATE_FORGOTTEN = "duplicate ClOrdID: order already finished"

Report = ExecutionReport | CancelReject
Cross = Literal["open", "close"]
CROSS_TIF: dict[str, str] = {"open": "opg", "close": "cls"}
PHASES = ("closed", "pre_market", "open", "after_hours")
# where the venue's day is after each session event (``venue.schedule``)
PHASE_AFTER: dict[str, str] = {"premarket": "pre_market", "open": "open", "close": "after_hours",
                               "rollover": "closed"}
EXTENDED_PHASES = frozenset({"pre_market", "after_hours"})


@dataclass
class Faults:
    """Injected misbehaviour; every field may be changed while running."""

    latency_ms: float = 0.0          # fixed delay before each execution report
    jitter_ms: float = 0.0           # plus a uniform random delay in [0, jitter_ms]
    reject_rate: float = 0.0         # fraction of new orders rejected ("simulated reject")
    partial_fills: bool = True       # False: each execution fills the whole remainder, whatever the size shown
    max_fill_qty: int | None = None  # cap on each execution's quantity in whole shares (forces partial fills)
    drop_after: int | None = None    # abort each connection after it has sent this many application messages
    slow: bool = False               # send no heartbeats and answer no TestRequests
    # a counterparty's fill racing a replace: just before an OrderCancelReplaceRequest is handled, the old order
    # trades this many whole shares (0: all it has left) at its own limit
    fill_before_replace: int | None = None


OPEN_STATUSES = frozenset({OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED})


@dataclass
class SimOrder:
    order: NewOrder
    order_id: str
    owner: str  # CompID of the session that last sent a message about this order
    status: OrdStatus = OrdStatus.NEW
    cum_qty: int = 0
    notional: int = 0  # sum of qty * px (qty in millionths of a share, px 4 implied decimals)
    text: str = ""
    trades: list[ExecutionReport] = field(default_factory=list)
    next_check: float = 0.0

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def leaves_qty(self) -> int:
        return self.order.qty - self.cum_qty if self.open else 0

    @property
    def avg_px(self) -> int:
        """Average fill price, rounded half up to 4 decimals (exact cost: sum of last_qty * last_px)."""
        return (2 * self.notional + self.cum_qty) // (2 * self.cum_qty) if self.cum_qty else 0


class MatchingEngine:
    """Orders and executions, pure: each call returns the reports it causes, in order."""

    def __init__(self, quotes: QuoteProvider, faults: Faults | None = None, *, rng: random.Random | None = None,
                 max_orders: int = MAX_ORDERS, fill_interval: float = 0.005, recheck_interval: float = 0.05,
                 id_prefix: str | None = None) -> None:
        self.quotes = quotes
        self.faults = faults or Faults()
        self.rng = rng or random.Random()
        self.max_orders = max_orders
        self.fill_interval = fill_interval
        self.recheck_interval = recheck_interval
        self.id_prefix = id_prefix or secrets.token_hex(4)
        self.orders: OrderedDict[str, SimOrder] = OrderedDict()
        self.open_count = 0
        self._finished: deque[str] = deque()  # ClOrdIDs of finished orders, oldest first (eviction order)
        self._forgotten: OrderedDict[str, None] = OrderedDict()  # ClOrdIDs of evicted orders, oldest first
        self._schedule: list[tuple[float, int, str]] = []
        self._seq = 0
        self._crosses: dict[str, list[str]] = {"opg": [], "cls": []}  # ClOrdIDs waiting for their cross
        self._next_order = 0
        self._next_exec = 0
        self.phase = "open"  # the trading hours now (``enter``)
        self.counters = dict.fromkeys(("orders", "fills", "filled_qty", "rejects", "cancels", "cancel_rejects",
                                       "status_requests", "duplicates", "evicted", "expired", "crossed", "replaces",
                                       "outside_hours"), 0)

    # ---------------------------------------------------------------- ids and reports

    def _order_id(self) -> str:
        self._next_order += 1
        return f"O-{self.id_prefix}-{self._next_order}"

    def _exec_id(self) -> str:
        self._next_exec += 1
        return f"X-{self.id_prefix}-{self._next_exec}"

    def _report(self, o: SimOrder, exec_type: ExecType, *, last_qty: int = 0, last_px: int = 0, text: str = "",
                cl_ord_id: str | None = None, orig_cl_ord_id: str | None = None) -> ExecutionReport:
        return ExecutionReport(
            cl_ord_id=cl_ord_id or o.order.cl_ord_id, orig_cl_ord_id=orig_cl_ord_id, order_id=o.order_id,
            exec_id=self._exec_id(), exec_type=exec_type, ord_status=o.status, symbol=o.order.symbol,
            side=o.order.side, last_qty=last_qty, last_px=last_px, leaves_qty=o.leaves_qty, cum_qty=o.cum_qty,
            avg_px=o.avg_px, text=text)

    def status_report(self, o: SimOrder) -> ExecutionReport:
        return self._report(o, ExecType.ORDER_STATUS, text=o.text)

    # ---------------------------------------------------------------- bookkeeping

    def _finish(self, o: SimOrder, status: OrdStatus, text: str = "") -> None:
        was_open = o.open
        o.status = status
        if text:
            o.text = text
        if was_open:
            self.open_count -= 1
            self._finished.append(o.order.cl_ord_id)

    def _make_room(self) -> bool:
        while len(self.orders) >= self.max_orders and self._finished:
            key = self._finished.popleft()
            o = self.orders.get(key)
            if o is not None and not o.open:
                del self.orders[key]
                self.counters["evicted"] += 1
                self._forgotten[key] = None
                if len(self._forgotten) > self.max_orders:
                    self._forgotten.popitem(last=False)
        return len(self.orders) < self.max_orders

    def _schedule_check(self, o: SimOrder, at: float) -> None:
        o.next_check = at
        self._seq += 1
        heapq.heappush(self._schedule, (at, self._seq, o.order.cl_ord_id))

    def _is_current(self, entry: tuple[float, int, str]) -> bool:
        o = self.orders.get(entry[2])
        return o is not None and o.open and o.next_check == entry[0]

    # ---------------------------------------------------------------- messages in

    def new_order(self, owner: str, order: NewOrder, now: float) -> list[Report]:
        existing = self.orders.get(order.cl_ord_id)
        if existing is not None:
            self.counters["duplicates"] += 1
            if existing.order.terms() == order.terms():
                existing.owner = owner
                return [self.status_report(existing)]
            self.counters["rejects"] += 1
            return [self._refuse_duplicate(order, DUPLICATE_TERMS)]
        if order.cl_ord_id in self._forgotten:
            self.counters["duplicates"] += 1
            self.counters["rejects"] += 1
            return [self._refuse_duplicate(order, DUPLICATE_FORGOTTEN)]
        self.counters["orders"] += 1
        o = SimOrder(order, self._order_id(), owner)
        if not self._make_room():
            self.counters["rejects"] += 1
            o.status, o.text = OrdStatus.REJECTED, "order table full"
            return [self._report(o, ExecType.REJECTED, text=o.text)]
        self.orders[order.cl_ord_id] = o
        self.open_count += 1
        quote = self.quotes.quote(order.symbol) if SYMBOL_RE.match(order.symbol) else None
        reason = None
        if order.tif not in self._crosses and not self.may_trade(order):
            self.counters["outside_hours"] += 1
            reason = (f"outside regular trading hours ({self.phase}): " + (
                "the venue is closed" if self.phase == "closed" or order.extended_hours
                else "the order is not marked for extended hours (336)"))
        elif quote is None:
            reason = f"unknown symbol or no quote: {order.symbol}"
        elif self.faults.reject_rate > 0 and self.rng.random() < self.faults.reject_rate:
            reason = "simulated reject (fault injection)"
        elif order.ord_type == "market" and not (quote[2] if order.side == "buy" else quote[0]):
            reason = f"no {'ask' if order.side == 'buy' else 'bid'} for {order.symbol}"
        if reason is not None:
            self.counters["rejects"] += 1
            self._finish(o, OrdStatus.REJECTED, reason)
            return [self._report(o, ExecType.REJECTED, text=reason)]
        reports: list[Report] = [self._report(o, ExecType.NEW)]
        assert quote is not None
        if order.tif in self._crosses:
            self._crosses[order.tif].append(order.cl_ord_id)
            return reports
        if order.tif != "fok" or self._fillable(o, BookQuote(*quote))[1] >= order.qty:
            reports += self._execute(o, BookQuote(*quote), now)
        if o.open:
            if order.tif in ("ioc", "fok"):
                self.counters["cancels"] += 1
                self._finish(o, OrdStatus.CANCELED, "IOC: unfilled quantity cancelled" if order.tif == "ioc"
                             else "FOK: not fillable in full at once, cancelled whole")
                reports.append(self._report(o, ExecType.CANCELED, text=o.text))
            else:
                self._schedule_check(o, now + (self.fill_interval if o.cum_qty else self.recheck_interval))
        return reports

    def _refuse_duplicate(self, order: NewOrder, text: str) -> ExecutionReport:
        """The answer to a reused ClOrdID: about that message (OrderID NONE), the original order untouched."""
        return ExecutionReport(order.cl_ord_id, None, "NONE", self._exec_id(), ExecType.REJECTED, OrdStatus.REJECTED,
                               order.symbol, order.side, 0, 0, 0, 0, 0, text)

    def cancel(self, owner: str, req: CancelRequest, now: float) -> list[Report]:
        o = self.orders.get(req.orig_cl_ord_id)
        if o is None:
            self.counters["cancel_rejects"] += 1
            return [CancelReject(req.cl_ord_id, req.orig_cl_ord_id, "NONE", OrdStatus.REJECTED,
                                 CxlRejReason.UNKNOWN_ORDER, UNKNOWN_ORDER)]
        o.owner = owner
        if not o.open:
            self.counters["cancel_rejects"] += 1
            return [CancelReject(req.cl_ord_id, req.orig_cl_ord_id, o.order_id, o.status,
                                 CxlRejReason.TOO_LATE_TO_CANCEL, f"too late to cancel: order is {o.status.name}")]
        self.counters["cancels"] += 1
        self._finish(o, OrdStatus.CANCELED, "cancelled on request")
        return [self._report(o, ExecType.CANCELED, text=o.text, cl_ord_id=req.cl_ord_id,
                             orig_cl_ord_id=o.order.cl_ord_id)]

    def replace_order(self, owner: str, req: ReplaceRequest, now: float) -> list[Report]:
        """OrderCancelReplaceRequest: the old order ends (OrdStatus 5) and a new one, ``req.cl_ord_id``, takes over
        what is left of ``req.qty`` (a total: the old order's fills count) at the new limit and tif, answered with
        ExecType 5 for it. Too late (the old order closed, or already filled ``req.qty``) or unknown: an
        OrderCancelReject (434=2), nothing changed. The same request again re-sends its answer."""
        done = self.orders.get(req.cl_ord_id)
        if done is not None:
            old = self.orders.get(req.orig_cl_ord_id)
            answer = next((t for t in (old.trades if old else []) if t.exec_type == ExecType.REPLACED), None)
            if answer is not None and answer.cl_ord_id == req.cl_ord_id:
                return [replace(answer, poss_resend=True)]
            return [self._refuse_replace(req, done, "duplicate ClOrdID")]
        o = self.orders.get(req.orig_cl_ord_id)
        if o is None:
            self.counters["cancel_rejects"] += 1
            return [CancelReject(req.cl_ord_id, req.orig_cl_ord_id, "NONE", OrdStatus.REJECTED,
                                 CxlRejReason.UNKNOWN_ORDER, UNKNOWN_ORDER, replace=True)]
        o.owner = owner
        out: list[Report] = []
        racing = self.faults.fill_before_replace
        if racing is not None and o.open and o.order.limit_price:
            qty = o.leaves_qty if racing == 0 else min(racing * QTY_SCALE, o.leaves_qty)
            out += self._trade(o, qty, o.order.limit_price)
        if not o.open:
            return [*out, self._refuse_replace(req, o, f"too late to replace: order is {o.status.name}")]
        if req.qty <= o.cum_qty:
            return [*out, self._refuse_replace(req, o, "too late to replace: the new quantity is filled already")]
        if (req.symbol, req.side) != (o.order.symbol, o.order.side) or o.order.tif not in ("day", "gtc") \
                or req.tif not in ("day", "gtc"):
            return [*out, self._refuse_replace(req, o, "only the quantity, limit and tif (day or gtc) change")]
        self.counters["replaces"] += 1
        new = SimOrder(NewOrder(req.cl_ord_id, o.order.symbol, o.order.side, req.qty - o.cum_qty, "limit",
                                req.limit_price, req.tif, o.order.extended_hours), self._order_id(), owner)
        self._finish(o, OrdStatus.REPLACED, f"replaced by {req.cl_ord_id}")
        self.orders[req.cl_ord_id] = new
        self.open_count += 1
        answer = self._report(new, ExecType.REPLACED, orig_cl_ord_id=o.order.cl_ord_id)
        o.trades.append(answer)  # a status request about the old order re-sends it
        out.append(answer)
        quote = self.quotes.quote(new.order.symbol)
        if quote is not None:
            out += self._execute(new, BookQuote(*quote), now)
        if new.open:
            self._schedule_check(new, now + (self.fill_interval if new.cum_qty else self.recheck_interval))
        return out

    def _refuse_replace(self, req: ReplaceRequest, o: SimOrder, text: str) -> CancelReject:
        self.counters["cancel_rejects"] += 1
        return CancelReject(req.cl_ord_id, req.orig_cl_ord_id, o.order_id, o.status, CxlRejReason.TOO_LATE_TO_CANCEL,
                            text, replace=True)

    def status(self, owner: str, req: StatusRequest) -> list[Report]:
        """Every trade of the order again (original ExecIDs, PossResend=Y), then an ExecType I status report."""
        self.counters["status_requests"] += 1
        o = self.orders.get(req.cl_ord_id)
        if o is None:
            return [ExecutionReport(req.cl_ord_id, None, "NONE", self._exec_id(), ExecType.ORDER_STATUS,
                                    OrdStatus.REJECTED, req.symbol, req.side, 0, 0, 0, 0, 0, UNKNOWN_ORDER)]
        o.owner = owner
        return [*(replace(t, poss_resend=True) for t in o.trades), self.status_report(o)]

    # ---------------------------------------------------------------- executions

    def may_trade(self, order: NewOrder) -> bool:
        """Whether ``order`` may trade in the session now: the regular session, or an extended one if it says so."""
        return self.phase == "open" or (order.extended_hours and self.phase in EXTENDED_PHASES)

    def _fillable(self, o: SimOrder, q: BookQuote) -> tuple[int, int]:
        """(price, quantity) of the order's next execution against the quote; quantity 0: none now."""
        buy = o.order.side == "buy"
        px, size = (q.ask_px, q.ask_size) if buy else (q.bid_px, q.bid_size)
        if px <= 0 or size <= 0 or not self.may_trade(o.order):
            return px, 0
        limit = o.order.limit_price
        if limit is not None and (limit < px if buy else limit > px):
            return px, 0
        qty = o.leaves_qty
        if self.faults.partial_fills:
            qty = min(qty, size * QTY_SCALE)  # the book's sizes are whole shares, quantities millionths
        if self.faults.max_fill_qty:
            qty = min(qty, self.faults.max_fill_qty * QTY_SCALE)
        return px, max(qty, 0)

    def _execute(self, o: SimOrder, q: BookQuote, now: float) -> list[Report]:
        px, qty = self._fillable(o, q)
        if qty <= 0:
            return []
        return self._trade(o, qty, px)

    def _trade(self, o: SimOrder, qty: int, px: int) -> list[Report]:
        o.cum_qty += qty
        o.notional += qty * px
        if o.cum_qty >= o.order.qty:
            self._finish(o, OrdStatus.FILLED)
        else:
            o.status = OrdStatus.PARTIALLY_FILLED
        self.counters["fills"] += 1
        self.counters["filled_qty"] += qty
        report = self._report(o, ExecType.TRADE, last_qty=qty, last_px=px)
        o.trades.append(report)
        return [report]

    def step(self, now: float) -> list[tuple[str, Report]]:
        """Executions due by ``now``: the next slice of partly filled orders, resting orders now marketable."""
        out: list[tuple[str, Report]] = []
        while self._schedule and self._schedule[0][0] <= now:
            entry = heapq.heappop(self._schedule)
            if not self._is_current(entry):
                continue
            o = self.orders[entry[2]]
            quote = self.quotes.quote(o.order.symbol)
            reports = self._execute(o, BookQuote(*quote), now) if quote is not None else []
            out += [(o.owner, r) for r in reports]
            if o.open:
                self._schedule_check(o, now + (self.fill_interval if reports else self.recheck_interval))
        return out

    # ---------------------------------------------------------------- the session

    def cross(self, which: Cross) -> list[tuple[str, Report]]:
        """The opening or closing cross: every OPG (open) or cls (close) order fills whole at the cross price, the
        book's midpoint, if its limit allows; the others expire (no quote, or a limit the cross did not reach)."""
        out: list[tuple[str, Report]] = []
        waiting, self._crosses[CROSS_TIF[which]] = self._crosses[CROSS_TIF[which]], []
        for key in waiting:
            o = self.orders.get(key)
            if o is None or not o.open:
                continue  # cancelled while it waited
            quote = self.quotes.quote(o.order.symbol)
            px = (quote[0] + quote[2]) // 2 if quote is not None and quote[0] > 0 and quote[2] > 0 else 0
            limit = o.order.limit_price
            buy = o.order.side == "buy"
            if px > 0 and (limit is None or (px <= limit if buy else px >= limit)):
                self.counters["crossed"] += 1
                out += [(o.owner, r) for r in self._trade(o, o.leaves_qty, px)]
            else:
                out.append((o.owner, self._expire(o, f"not filled in the {which}ing cross")))
        return out

    def enter(self, phase: str) -> None:
        """The venue's day moved to ``phase`` (one of ``PHASES``): which orders may trade from now on."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r} ({', '.join(PHASES)})")
        self.phase = phase

    def rollover(self) -> list[tuple[str, Report]]:
        """The end of the trading day: every open day order expires; gtc orders rest on into the next session
        (OPG/cls orders wait for their next cross)."""
        return [(o.owner, self._expire(o, "day order expired at the end of its session"))
                for o in list(self.orders.values()) if o.open and o.order.tif == "day"]

    def _expire(self, o: SimOrder, text: str) -> ExecutionReport:
        self.counters["expired"] += 1
        self._finish(o, OrdStatus.EXPIRED, text)
        return self._report(o, ExecType.EXPIRED, text=text)

    def next_wakeup(self) -> float | None:
        while self._schedule and not self._is_current(self._schedule[0]):
            heapq.heappop(self._schedule)
        return self._schedule[0][0] if self._schedule else None


__all__ = ["CROSS_TIF", "DUPLICATE_FORGOTTEN", "PHASES", "PHASE_AFTER", "Cross",
           "DUPLICATE_TERMS", "MAX_ORDERS", "OPEN_STATUSES", "SYMBOL_RE", "UNKNOWN_ORDER",
           "Faults", "MatchingEngine", "Report", "SimOrder"]
