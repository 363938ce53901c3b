"""The ledger's oracle can fail: for every invariant ``Ledger.check()`` verifies, the database is corrupted in
exactly that way (direct SQL on the test's own rows) and ``check()`` must name that problem, then the corruption
is undone and ``check()`` is clean again.

A corruption that the schema itself forbids (a CHECK constraint, the journal's no-DELETE rule) is made by
dropping or disabling that guard inside the corrupting transaction and putting it back (as NOT VALID, then
validated on repair) before commit, so no other session ever sees the schema without it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from order_api.db import INVARIANTS
from order_api.model import OrderRequest
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, ScopedLedger

pytestmark = pytest.mark.anyio

DOLLAR = 10_000
ALL_PROBLEMS = {what for _, what in INVARIANTS}


@dataclass(frozen=True)
class Book:
    """One user's ledger with something of everything: a filled buy, a partly filled buy, an open sell and a
    cancelled buy, so each invariant has rows to break."""

    user: str
    bought: uuid.UUID  # AAPL buy, 10 filled
    partial: uuid.UUID  # MSFT buy, 1 of 4 filled, holding cash
    selling: uuid.UUID  # AAPL sell of 3, open, holding shares
    cancelled: uuid.UUID  # PENY buy, cancelled
    mark: int  # the journal's last id before the corruption
    reserve: int  # the per-share price held for the filled buy


def order(symbol: str, side: str, qty: int) -> OrderRequest:
    return OrderRequest(symbol, side, qty * S, "market", None, "day", uuid.uuid4().hex)


async def book_of(ledger: ScopedLedger) -> Book:
    u = ledger.user("oracle")
    await ledger.deposit(u, 50_000 * DOLLAR)
    bought, _ = await ledger.place(u, order("AAPL", "buy", 10), QUOTES["AAPL"])
    await ledger.fill(u, bought["order_id"], "B1", 10 * S, 1_900_100)
    partial, _ = await ledger.place(u, order("MSFT", "buy", 4), QUOTES["MSFT"])
    await ledger.mark_routed(u, partial["order_id"])
    await ledger.fill(u, partial["order_id"], "P1", 1 * S, 4_100_400)
    selling, _ = await ledger.place(u, order("AAPL", "sell", 3), QUOTES["AAPL"])
    cancelled, _ = await ledger.place(u, order("PENY", "buy", 5), QUOTES["PENY"])
    await ledger.cancel(u, cancelled["order_id"])
    mark = await ledger.pool_for(u).fetchval("SELECT max(id) FROM journal")
    return Book(u, bought["order_id"], partial["order_id"], selling["order_id"], cancelled["order_id"], int(mark),
                int(bought["reserve_price"]))


# Deletes the rows a corruption appended to the journal (its no-DELETE rule is off inside this transaction only).
FORGET_JOURNAL = ("ALTER TABLE journal DISABLE RULE journal_no_delete; "
                  "DELETE FROM journal WHERE id > {mark} AND (user_id LIKE '{u}%' OR txn_id IN "
                  "(SELECT txn_id FROM journal WHERE user_id = '{u}')); "
                  "ALTER TABLE journal ENABLE RULE journal_no_delete;")


@dataclass(frozen=True)
class Corruption:
    problems: frozenset[str]  # what check() must report, and nothing else
    corrupt: str  # SQL, formatted with the Book's fields
    repair: str

    def __init__(self, problems: str | tuple[str, ...], corrupt: str, repair: str) -> None:
        object.__setattr__(self, "problems", frozenset((problems,) if isinstance(problems, str) else problems))
        object.__setattr__(self, "corrupt", corrupt)
        object.__setattr__(self, "repair", repair)


CORRUPTIONS = {
    "unbalanced": Corruption(
        "journal transaction does not balance",
        "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount) SELECT txn_id, kind, '', 'external', "
        "'USD', 7 FROM journal WHERE user_id = '{u}' AND kind = 'deposit'",
        FORGET_JOURNAL),
    "cash": Corruption(
        "cash differs from its journal",
        "UPDATE accounts SET cash = cash + 1 WHERE user_id = '{u}'",
        "UPDATE accounts SET cash = cash - 1 WHERE user_id = '{u}'"),
    "cash held vs journal": Corruption(
        # the order's hold moves with it, so only the journal disagrees
        "cash held differs from its journal",
        "UPDATE accounts SET cash_held = cash_held + 1 WHERE user_id = '{u}'; "
        "UPDATE orders SET held = held + 1 WHERE order_id = '{partial}'",
        "UPDATE accounts SET cash_held = cash_held - 1 WHERE user_id = '{u}'; "
        "UPDATE orders SET held = held - 1 WHERE order_id = '{partial}'"),
    "position": Corruption(
        "position differs from its journal",
        "UPDATE positions SET qty = qty + 1 WHERE user_id = '{u}' AND symbol = 'AAPL'",
        "UPDATE positions SET qty = qty - 1 WHERE user_id = '{u}' AND symbol = 'AAPL'"),
    "buy hold": Corruption(
        "cash held differs from open buy orders' holds",
        "UPDATE orders SET held = held + 1 WHERE order_id = '{partial}'",
        "UPDATE orders SET held = held - 1 WHERE order_id = '{partial}'"),
    "sell hold": Corruption(
        "shares held differ from open sell orders' holds",
        "UPDATE orders SET held = held + 1 WHERE order_id = '{selling}'",
        "UPDATE orders SET held = held - 1 WHERE order_id = '{selling}'"),
    "closed order holds": Corruption(
        "a closed order still holds something",
        "UPDATE orders SET held = 5 WHERE order_id = '{cancelled}'",
        "UPDATE orders SET held = 0 WHERE order_id = '{cancelled}'"),
    "filled qty": Corruption(
        "filled quantity differs from its executions",
        "UPDATE orders SET filled_qty = filled_qty + 1 WHERE order_id = '{partial}'",
        "UPDATE orders SET filled_qty = filled_qty - 1 WHERE order_id = '{partial}'"),
    "negative cash": Corruption(
        ("negative cash", "cash differs from its journal"),
        "ALTER TABLE accounts DROP CONSTRAINT accounts_cash_check; "
        "UPDATE accounts SET cash = -1 WHERE user_id = '{u}'; "
        "ALTER TABLE accounts ADD CONSTRAINT accounts_cash_check CHECK (cash >= 0) NOT VALID",
        "UPDATE accounts a SET cash = (SELECT sum(amount) FROM journal j WHERE j.user_id = a.user_id "
        "AND account = 'cash') WHERE user_id = '{u}'; ALTER TABLE accounts VALIDATE CONSTRAINT accounts_cash_check"),
    "negative shares": Corruption(
        ("negative shares", "position differs from its journal"),
        "ALTER TABLE positions DROP CONSTRAINT positions_qty_check; "
        "UPDATE positions SET qty = qty - 100000000 WHERE user_id = '{u}' AND symbol = 'AAPL'; "
        "ALTER TABLE positions ADD CONSTRAINT positions_qty_check CHECK (qty >= 0) NOT VALID",
        "UPDATE positions SET qty = qty + 100000000 WHERE user_id = '{u}' AND symbol = 'AAPL'; "
        "ALTER TABLE positions VALIDATE CONSTRAINT positions_qty_check"),
    "overfill": Corruption(
        ("an order filled beyond its quantity or holding less than nothing",
         "an order's status disagrees with its fills"),
        "ALTER TABLE orders DROP CONSTRAINT orders_check; "
        "UPDATE orders SET qty = 1 WHERE order_id = '{bought}'; "
        "ALTER TABLE orders ADD CONSTRAINT orders_check CHECK (filled_qty <= qty) NOT VALID",
        "UPDATE orders SET qty = 10000000 WHERE order_id = '{bought}'; "
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_check"),
    "status": Corruption(
        # a fully filled order shown as cancelled: nothing held, nothing else wrong
        "an order's status disagrees with its fills",
        "UPDATE orders SET status = 'cancelled' WHERE order_id = '{bought}'",
        "UPDATE orders SET status = 'filled' WHERE order_id = '{bought}'"),
    "notional": Corruption(
        "filled notional differs from its executions",
        "UPDATE orders SET filled_notional = filled_notional + 1 WHERE order_id = '{bought}'",
        "UPDATE orders SET filled_notional = filled_notional - 1 WHERE order_id = '{bought}'"),
    "cash created in a fill": Corruption(
        # $0.05 more cash for the buyer, booked against the market under the fill's ExecID, balances and
        # matches the account: only the comparison with the execution (10 at $190.01) sees it
        "a fill's journal differs from its execution",
        "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id, exec_id) VALUES "
        "('{txn}', 'fill', '{u}', 'cash', 'USD', 500, '{bought}', 'B1'), "
        "('{txn}', 'fill', '', 'market', 'USD', -500, '{bought}', 'B1'); "
        "UPDATE accounts SET cash = cash + 500 WHERE user_id = '{u}'",
        FORGET_JOURNAL + " UPDATE accounts SET cash = cash - 500 WHERE user_id = '{u}'"),
    "execution price": Corruption(
        ("a fill's journal differs from its execution", "filled notional differs from its executions"),
        "UPDATE executions SET price = price + 1 WHERE order_id = '{bought}'",
        "UPDATE executions SET price = price - 1 WHERE order_id = '{bought}'"),
    "fill above the buy's held price": Corruption(
        # the price held for the buy lowered below what it was filled at: both readings of the limit see it
        ("fill beyond its order's limit price", "fill money beyond its order's limit price"),
        "UPDATE orders SET reserve_price = 1900000 WHERE order_id = '{bought}'",
        "UPDATE orders SET reserve_price = {reserve} WHERE order_id = '{bought}'"),
    "stop filled untriggered": Corruption(
        "a stop routed or filled without its trigger",
        "UPDATE orders SET type = 'stop', stop_price = 1900000 WHERE order_id = '{bought}'",
        "UPDATE orders SET type = 'market', stop_price = NULL WHERE order_id = '{bought}'"),
    "execution on another symbol": Corruption(
        "execution for another symbol or side than its order",
        "UPDATE executions SET symbol = 'MSFT' WHERE order_id = '{bought}'",
        "UPDATE executions SET symbol = 'AAPL' WHERE order_id = '{bought}'"),
    "cash from the market in a deposit": Corruption(
        "a journal line moves value where its kind may not",
        "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount) VALUES "
        "('{txn}', 'deposit', '{u}', 'cash', 'USD', 5), ('{txn}', 'deposit', '', 'market', 'USD', -5); "
        "UPDATE accounts SET cash = cash + 5 WHERE user_id = '{u}'",
        FORGET_JOURNAL + " UPDATE accounts SET cash = cash - 5 WHERE user_id = '{u}'"),
    "hold between users": Corruption(
        "a hold or release touches another user's accounts",
        "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount) VALUES "
        "('{txn}', 'hold', '{u}', 'cash', 'USD', -5), ('{txn}', 'hold', '{u}-twin', 'cash_held', 'USD', 5); "
        "UPDATE accounts SET cash = cash - 5 WHERE user_id = '{u}'",
        FORGET_JOURNAL + " UPDATE accounts SET cash = cash + 5 WHERE user_id = '{u}'"),
    # settlement (migration 012): a sale's proceeds are `unsettled` until its settlement reverses the memo
    "a settlement row without its memo": Corruption(
        "unsettled cash differs from the pending settlements",
        "INSERT INTO settlements (memo_id, user_id, amount, trade_date) VALUES (-{mark}, '{u}', 7, current_date)",
        "DELETE FROM settlements WHERE memo_id = -{mark}"),
    "settled twice": Corruption(
        ("negative unsettled cash", "unsettled cash differs from the pending settlements"),
        "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount) VALUES "
        "('{txn}', 'settlement', '{u}', 'unsettled', 'USD', -5), ('{txn}', 'settlement', '', 'clearing', 'USD', 5)",
        FORGET_JOURNAL),
    "a settlement paying cash": Corruption(
        "a settlement moves more than unsettled cash",
        "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount) VALUES "
        "('{txn}', 'settlement', '{u}', 'cash', 'USD', 5), ('{txn}', 'settlement', '', 'clearing', 'USD', -5); "
        "UPDATE accounts SET cash = cash + 5 WHERE user_id = '{u}'",
        FORGET_JOURNAL + " UPDATE accounts SET cash = cash - 5 WHERE user_id = '{u}'"),
    # stock splits (migration 015): each holder's recorded result follows the rule and matches its journal
    "a split holder off the rule": Corruption(
        "a split's holder does not follow the split rule",
        "INSERT INTO splits (split_id, symbol, ratio_new, ratio_old, price, effective) VALUES "
        "('X{u}', 'AAPL', 2, 1, 0, current_date); INSERT INTO split_holders (split_id, user_id, txn_id, old_qty, "
        "new_qty, cash_in_lieu) VALUES ('X{u}', '{u}', NULL, 10, 10, 0)",
        "DELETE FROM split_holders WHERE split_id = 'X{u}'; DELETE FROM splits WHERE split_id = 'X{u}'"),
    "a split holder without its journal": Corruption(
        "a split's journal differs from its holder's result",
        "INSERT INTO splits (split_id, symbol, ratio_new, ratio_old, price, effective) VALUES "
        "('X{u}', 'AAPL', 2, 1, 0, current_date); INSERT INTO split_holders (split_id, user_id, txn_id, old_qty, "
        "new_qty, cash_in_lieu) VALUES ('X{u}', '{u}', NULL, 10, 20, 0)",
        "DELETE FROM split_holders WHERE split_id = 'X{u}'; DELETE FROM splits WHERE split_id = 'X{u}'"),
    "a split of two symbols": Corruption(
        "a split transaction moves more than one holder's shares of one symbol",
        "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount) VALUES "
        "('{txn}', 'split', '{u}', 'shares', 'AAPL', 1), ('{txn}', 'split', '', 'issuer', 'AAPL', -1), "
        "('{txn}', 'split', '{u}', 'shares', 'MSFT', 1), ('{txn}', 'split', '', 'issuer', 'MSFT', -1); "
        "UPDATE positions SET qty = qty + 1 WHERE user_id = '{u}' AND symbol IN ('AAPL', 'MSFT')",
        FORGET_JOURNAL + " UPDATE positions SET qty = qty - 1 WHERE user_id = '{u}' AND symbol IN ('AAPL', 'MSFT')"),
}


def test_every_invariant_has_a_corruption() -> None:
    named = set().union(*(c.problems for c in CORRUPTIONS.values()))
    assert named == ALL_PROBLEMS


def named(problems: list[str]) -> set[str]:
    """The invariant each reported problem names ("shard N: <what>: {row}")."""
    out = set()
    for p in problems:
        m = re.match(r"shard \d+: (.+?): \{", p)
        assert m is not None, p
        out.add(m.group(1))
    return out


@pytest.mark.parametrize("case", CORRUPTIONS)
async def test_check_reports_exactly_the_corruption(ledger: ScopedLedger, case: str) -> None:
    corruption = CORRUPTIONS[case]
    book = await book_of(ledger)
    assert await ledger.check() == []
    fields = {"u": book.user, "bought": book.bought, "partial": book.partial, "selling": book.selling,
              "cancelled": book.cancelled, "mark": book.mark, "reserve": book.reserve, "txn": uuid.uuid4()}
    pool = ledger.pool_for(book.user)
    conn: asyncpg.Connection
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(corruption.corrupt.format(**fields))
    try:
        problems = await ledger.check()
        assert named(problems) == corruption.problems, problems
        assert all(f"shard {ledger.pools.index(pool)}:" in p for p in problems)
    finally:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(corruption.repair.format(**fields))
    assert await ledger.check() == []
