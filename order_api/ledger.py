"""Ledger rules, pure: which double-entry journal lines each money movement writes.

Every builder returns entries that sum to zero per asset (``balanced`` checks it), so the journal balances
by construction; the database adapter only appends them and moves the cached balances by the same amounts.
User accounts: ``cash``, ``cash_held`` (USD) and ``shares``, ``shares_held`` (per symbol). Counterparty
accounts live under user ``''``: ``external`` (money from outside), ``market`` (the other side of fills)
and ``fees``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

USD = "USD"
HOUSE = ""  # the user id of counterparty accounts


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


def buy_fill(user: str, symbol: str, qty: int, price: int, reserve_price: int) -> list[Entry]:
    """A buy of ``qty`` at ``price`` paid from the hold taken at ``reserve_price``; the difference returns."""
    if price > reserve_price:
        raise ValueError(f"a buy filled at {price}, above the {reserve_price} held for it")
    held, cost = qty * reserve_price, qty * price
    return balanced([
        Entry(user, "cash_held", USD, -held), Entry(user, "cash", USD, held - cost), Entry(HOUSE, "market", USD, cost),
        Entry(user, "shares", symbol, qty), Entry(HOUSE, "market", symbol, -qty),
    ])


def sell_fill(user: str, symbol: str, qty: int, price: int) -> list[Entry]:
    proceeds = qty * price
    return balanced([
        Entry(user, "shares_held", symbol, -qty), Entry(HOUSE, "market", symbol, qty),
        Entry(user, "cash", USD, proceeds), Entry(HOUSE, "market", USD, -proceeds),
    ])


def fee(user: str, amount: int) -> list[Entry]:
    return balanced([Entry(user, "cash", USD, -amount), Entry(HOUSE, "fees", USD, amount)])


def fee_for(notional: int, fee_bps: int) -> int:
    """A sell's regulatory-style fee: ``fee_bps`` of the proceeds, rounded up to the cent (100 units)."""
    if fee_bps <= 0:
        return 0
    raw = -(-notional * fee_bps // 10_000)
    return -(-raw // 100) * 100
