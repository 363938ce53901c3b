"""Ledger rules, pure: which double-entry journal lines each money movement writes.

Every builder returns entries that sum to zero per asset (``balanced`` checks it), so the journal balances
by construction; the database adapter only appends them and moves the cached balances by the same amounts.
User accounts: ``cash``, ``cash_held`` (USD) and ``shares``, ``shares_held`` (per symbol). Counterparty
accounts live under user ``''``: ``external`` (money from outside), ``market`` (the other side of fills)
and ``fees``, and the broker's ``fractional`` account (the house's residual shares from fractional fills).

Quantities are in millionths of a share (``vocab.quantities.QTY_SCALE``), money in 1/10,000 of a dollar. The
rounding rule: per order, a buyer pays the exact cost of its fills rounded up to the money unit, a seller
receives the exact proceeds rounded down (``buy_cost``, ``sell_proceeds``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from vocab.quantities import QTY_SCALE

USD = "USD"
HOUSE = ""  # the user id of counterparty accounts
# The broker's own inventory of fractions of shares (and the cash rounding of fractional fills): see buy_fill.
FRACTIONAL = "fractional"


@dataclass(frozen=True, slots=True)
class Entry:
    user_id: str
    account: str
    asset: str
    amount: int


class Unbalanced(AssertionError):
    pass


def balanced(entries: list[Entry]) -> list[Entry]:
    """The entries unchanged, after checking they sum to zero per asset (a bug here must never reach the DB)."""
    total: dict[str, int] = defaultdict(int)
    for e in entries:
        total[e.asset] += e.amount
    bad = {asset: amount for asset, amount in total.items() if amount}
    if bad:
        raise Unbalanced(f"journal transaction does not balance: {bad}")
    return [e for e in entries if e.amount]


def deposit(user: str, amount: int) -> list[Entry]:
    return balanced([Entry(user, "cash", USD, amount), Entry(HOUSE, "external", USD, -amount)])


def withdraw(user: str, amount: int) -> list[Entry]:
    return balanced([Entry(user, "cash", USD, -amount), Entry(HOUSE, "external", USD, amount)])


def hold_cash(user: str, amount: int) -> list[Entry]:
    return balanced([Entry(user, "cash", USD, -amount), Entry(user, "cash_held", USD, amount)])


def release_cash(user: str, amount: int) -> list[Entry]:
    return balanced([Entry(user, "cash_held", USD, -amount), Entry(user, "cash", USD, amount)])


def hold_shares(user: str, symbol: str, qty: int) -> list[Entry]:
    return balanced([Entry(user, "shares", symbol, -qty), Entry(user, "shares_held", symbol, qty)])


def release_shares(user: str, symbol: str, qty: int) -> list[Entry]:
    return balanced([Entry(user, "shares_held", symbol, -qty), Entry(user, "shares", symbol, qty)])


def buy_hold(qty: int, price: int) -> int:
    """The cash held for a buy of ``qty`` (millionths of a share) at ``price``: the cost rounded up to the unit."""
    return -(-qty * price // QTY_SCALE)


def buy_cost(qty: int, price: int, carry: int) -> tuple[int, int]:
    """What a buy fill of ``qty`` at ``price`` costs, and the order's new carry.

    The rounding rule, per order: the buyer pays the exact cost of everything filled so far rounded UP to the
    money unit, so each fill pays the increase of that rounded total. ``carry`` (0 <= carry < QTY_SCALE, in
    units/QTY_SCALE) is what the buyer has paid beyond the exact cost so far. An order's costs thus never sum
    to more than ``buy_hold`` of its quantity at its reserve price, whatever the number of fills."""
    exact = qty * price - carry
    cost = -(-exact // QTY_SCALE)
    return cost, cost * QTY_SCALE - exact


def sell_proceeds(qty: int, price: int, carry: int) -> tuple[int, int]:
    """What a sell fill of ``qty`` at ``price`` pays, and the order's new carry: the seller receives the exact
    proceeds of everything filled so far rounded DOWN to the money unit; ``carry`` is what is owed but not paid."""
    return divmod(qty * price + carry, QTY_SCALE)


def buy_fill(user: str, symbol: str, qty: int, price: int, cost: int) -> list[Entry]:
    """A buy of ``qty`` (millionths) at ``price`` paid ``cost`` (``buy_cost``) from the order's cash hold.

    The venue trades whole shares: the market delivers ``qty`` rounded up to whole shares, at ``price`` each;
    the house ``fractional`` account keeps the rest of that last share and pays what the buyer's rounded cost
    does not cover (or receives the rounding surplus), so every line is an integer and the entry balances."""
    whole = -(-qty // QTY_SCALE)
    return balanced([
        Entry(user, "cash_held", USD, -cost), Entry(HOUSE, "market", USD, whole * price),
        Entry(HOUSE, FRACTIONAL, USD, cost - whole * price),
        Entry(user, "shares", symbol, qty), Entry(HOUSE, "market", symbol, -whole * QTY_SCALE),
        Entry(HOUSE, FRACTIONAL, symbol, whole * QTY_SCALE - qty),
    ])


def sell_fill(user: str, symbol: str, qty: int, price: int, proceeds: int) -> list[Entry]:
    """A sell of ``qty`` at ``price`` paying ``proceeds`` (``sell_proceeds``): the market takes the whole shares
    at ``price``, the house ``fractional`` account takes the fraction and pays the rest of the proceeds."""
    whole = qty // QTY_SCALE
    return balanced([
        Entry(user, "shares_held", symbol, -qty), Entry(HOUSE, "market", symbol, whole * QTY_SCALE),
        Entry(HOUSE, FRACTIONAL, symbol, qty - whole * QTY_SCALE),
        Entry(user, "cash", USD, proceeds), Entry(HOUSE, "market", USD, -whole * price),
        Entry(HOUSE, FRACTIONAL, USD, whole * price - proceeds),
    ])


def fee(user: str, amount: int) -> list[Entry]:
    return balanced([Entry(user, "cash", USD, -amount), Entry(HOUSE, "fees", USD, amount)])


def fee_for(notional: int, fee_bps: int) -> int:
    """A sell's regulatory-style fee: ``fee_bps`` of the proceeds, rounded up to the cent (100 units)."""
    if fee_bps <= 0:
        return 0
    raw = -(-notional * fee_bps // 10_000)
    return -(-raw // 100) * 100
