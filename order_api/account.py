"""The live account, pure: balances as a cash-account broker shows them, the settlement date rule, the
``AccountUpdate`` frame of the ``positions`` channel, and activities read from the journal.

Input is the raw state migration 012's ``account_state()`` returns (integers in the ledger's units: money in
1/10,000 of a dollar, quantities in the order model's units), so the numbers of GET /v1/account and of the
positions channel are computed by one function from one read.

Rules (a cash account, no margin):
- cash = settled + unsettled (the ``cash`` and ``cash_held`` accounts together);
- unsettled = proceeds of sales whose settlement date has not come (the journal's ``unsettled`` account), at most
  the cash (proceeds already spent on a buy cannot be withdrawn twice);
- buying power = settled + unsettled - holds for open buys (the ledger's free ``cash``: a new buy may spend
  unsettled proceeds, as brokers allow a cash account to);
- withdrawable = settled - holds for open buys, never below zero.
Settlement: a sale settles on the next trading day after its trade date (T+1). The trading-day rule is a hook
(``TradingDays``): weekdays until the exchange calendar is wired in.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from order_api.model import ApiError, money
from tickfan_proto import stream_pb2
from vocab.calendar import next_session
from vocab.quantities import QTY_SCALE, format_qty

# the next trading day after a date; the exchange calendar replaces the weekday rule here
TradingDays = Callable[[dt.date], dt.date]


def next_weekday(day: dt.date) -> dt.date:
    """The next Monday..Friday after ``day`` (holidays are the calendar's to add)."""
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def next_exchange_day(day: dt.date) -> dt.date:
    """The exchange's next trading day after ``day`` (its calendar: weekends and holidays skipped). Strictly,
    settlement follows the settlement calendar (bank holidays too); the exchange's is the one we have."""
    return next_session(day + dt.timedelta(days=1)).date


def settlement_date(trade_date: dt.date, next_trading_day: TradingDays = next_exchange_day) -> dt.date:
    """T+1: the first trading day after the trade date."""
    return next_trading_day(trade_date)


def qty_text(qty: int) -> str:
    """A quantity in the ledger's units (millionths of a share) as a decimal string of shares."""
    return format_qty(int(qty))


def per_share(amount: int, qty: int) -> int:
    """Money per share (rounded down to the money unit) of ``amount`` for ``qty`` in the ledger's units."""
    return amount * QTY_SCALE // qty if qty else 0


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    qty: int        # owned: free + held by open sells
    qty_held: int
    cost: int       # average-cost basis of qty

    @property
    def avg_entry_price(self) -> int:
        return per_share(self.cost, self.qty)


@dataclass(frozen=True, slots=True)
class AccountView:
    """A user's account as a broker shows it (see the module's rules)."""

    cash: int
    cash_held: int
    unsettled_cash: int
    holdings: tuple[Holding, ...]
    version: int = 0
    event_time_ns: int = 0

    @classmethod
    def of(cls, state: Mapping[str, Any] | None) -> AccountView:
        """From ``account_state()`` (None: no account yet, all zero)."""
        if state is None:
            return cls(0, 0, 0, ())
        free, held = int(state["cash"]), int(state["cash_held"])
        holdings = tuple(Holding(p["symbol"], int(p["qty"]) + int(p["qty_held"]), int(p["qty_held"]), int(p["cost"]))
                         for p in state.get("positions") or ())
        return cls(free + held, held, min(int(state["unsettled"]), free + held), holdings,
                   int(state.get("version", 0)), int(state.get("event_time_ns", 0)))

    @property
    def settled_cash(self) -> int:
        return self.cash - self.unsettled_cash

    @property
    def buying_power(self) -> int:
        return self.cash - self.cash_held

    @property
    def withdrawable(self) -> int:
        return max(0, self.settled_cash - self.cash_held)


def account_json(view: AccountView) -> dict[str, Any]:
    return {
        "cash": money(view.cash), "cash_held": money(view.cash_held), "settled_cash": money(view.settled_cash),
        "unsettled_cash": money(view.unsettled_cash), "buying_power": money(view.buying_power),
        "withdrawable": money(view.withdrawable), "version": view.version,
        "positions": [{"symbol": h.symbol, "qty": qty_text(h.qty), "qty_held": qty_text(h.qty_held),
                       "cost_basis": money(h.cost), "avg_entry_price": money(h.avg_entry_price)}
                      for h in view.holdings],
    }


def account_update_frame(view: AccountView, *, snapshot: bool = False) -> bytes:
    """The complete ServerMessage a fan-out node forwards unchanged to the owner's ``positions`` subscribers."""
    msg = stream_pb2.ServerMessage()
    u = msg.account
    u.version = view.version
    u.event_time_ns = view.event_time_ns or time.time_ns()
    u.cash = money(view.cash)
    u.cash_held = money(view.cash_held)
    u.buying_power = money(view.buying_power)
    u.settled_cash = money(view.settled_cash)
    u.unsettled_cash = money(view.unsettled_cash)
    u.withdrawable = money(view.withdrawable)
    u.snapshot = snapshot
    for h in view.holdings:
        u.positions.add(symbol=h.symbol, qty=qty_text(h.qty), qty_held=qty_text(h.qty_held),
                        cost_basis=money(h.cost), avg_entry_price=money(h.avg_entry_price))
    return msg.SerializeToString()


# ---------------------------------------------------------------- activities

# Alpaca's activity types where one fits; SETTLE is tickfan's (Alpaca reports no settlements). A split (SPLIT)
# carries its cash-in-lieu as its net amount.
ACTIVITY_TYPES = {"fill": "FILL", "deposit": "CSD", "withdrawal": "CSW", "fee": "FEE", "settlement": "SETTLE",
                  "split": "SPLIT"}
MAX_PAGE = 100
DEFAULT_PAGE = 50
_CURSOR_PREFIX = b"a1:"


def encode_cursor(journal_id: int) -> str:
    """Opaque to clients: the journal id the next page starts below."""
    return base64.urlsafe_b64encode(_CURSOR_PREFIX + str(journal_id).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    body = raw[len(_CURSOR_PREFIX):] if raw.startswith(_CURSOR_PREFIX) else b""
    if not body.isdigit() or len(body) > 19:
        raise ApiError(400, "invalid_cursor", "page_token is not one this API gave")
    return int(body)


def activity_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """One activity from its journal row (the user's main line of the transaction; see
    ``order_api.settlement.ACTIVITIES``)."""
    kind = row["kind"]
    out: dict[str, Any] = {"id": encode_cursor(int(row["id"])), "activity_type": ACTIVITY_TYPES[kind],
                           "transaction_time": row["created_at"].isoformat()}
    if kind == "fill":
        qty, price = int(row["exec_qty"] or 0), int(row["exec_price"] or 0)
        out.update({"symbol": row["symbol"], "side": row["side"], "qty": qty_text(qty), "price": money(price),
                    "net_amount": money(int(row["cash_moved"] or 0)), "order_id": str(row["order_id"]),
                    "exec_id": row["exec_id"]})
    elif kind == "split":
        # the shares the split added (or, reverse, took: negative) and the cash-in-lieu paid
        out.update({"symbol": row["asset"], "qty": qty_text(int(row["amount"])),
                    "net_amount": money(int(row["cash_moved"] or 0))})
    else:
        out["net_amount"] = money(int(row["amount"]) if kind != "settlement" else -int(row["amount"]))
        if row["order_id"] is not None:
            out["order_id"] = str(row["order_id"])
    return out


# ---------------------------------------------------------------- invariants (Ledger.check adds these)

def settlement_invariants(mine: Callable[[str], str], in_scope: Callable[[], str]) -> list[tuple[str, str]]:
    """The journal's unsettled account agrees with the pending settlements, and each settlement reverses a memo
    exactly once. ``mine``/``in_scope``: the scoping helpers of ``Ledger.check``."""
    return [
        ("SELECT coalesce(j.user_id, s.user_id) AS user_id, j.unsettled, s.pending FROM "
         "(SELECT user_id, sum(amount) AS unsettled FROM journal WHERE account = 'unsettled' GROUP BY user_id) j "
         "FULL JOIN (SELECT user_id, sum(amount) AS pending FROM settlements WHERE settled_at IS NULL "
         "GROUP BY user_id) s USING (user_id) WHERE coalesce(j.unsettled, 0) <> coalesce(s.pending, 0) "
         f"AND {mine('coalesce(j.user_id, s.user_id)')}",
         "unsettled cash differs from the pending settlements"),
        ("SELECT user_id, sum(amount) AS unsettled FROM journal WHERE account = 'unsettled' "
         f"AND {mine('user_id')} GROUP BY user_id HAVING sum(amount) < 0",
         "negative unsettled cash"),
        ("SELECT id, kind, account, amount FROM journal WHERE kind = 'settlement' "
         f"AND account NOT IN ('unsettled', 'clearing') AND {in_scope()}",
         "a settlement moves more than unsettled cash"),
    ]
