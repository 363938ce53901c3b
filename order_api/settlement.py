"""The live account on PostgreSQL: a user's account view, their activities page by page, and the settlement job.

Settlement (migration 012): each sale's proceeds are in the journal's ``unsettled`` account from its fill until
``settle_due`` posts its ``settlement`` transaction, on or after the sale's settlement date (T+1 by
``order_api.account.settlement_date``; the trading-day rule is the ``next_trading_day`` hook). The job takes
each user's account row lock like every money transaction, so it never races a fill; running it twice, or on
several processes at once, settles each sale once (the pending rows are locked and marked in one transaction).

Activities: one per journal transaction of the user's (its main line: a fill's shares, a deposit's, withdrawal's
or fee's cash, a settlement's unsettled), newest first, paged by an opaque cursor over the journal id. A user's
journal lines are written under their account lock, so ids commit in order for one user: a page boundary
never skips or repeats an activity while new ones arrive (they only appear above the first page).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
import zoneinfo
from collections.abc import Mapping
from typing import Any

import orjson

from order_api.account import (
    DEFAULT_PAGE,
    MAX_PAGE,
    AccountView,
    TradingDays,
    activity_json,
    encode_cursor,
    next_exchange_day,
    settlement_date,
)
from order_api.db import Ledger
from order_api.ledger import HOUSE, USD

log = logging.getLogger("tickfan.settlement")
EXCHANGE_ZONE = zoneinfo.ZoneInfo("America/New_York")
DEFAULT_INTERVAL = 60.0

ACTIVITIES = (
    "SELECT j.id, j.kind, j.amount, j.asset, j.order_id, j.exec_id, j.created_at, o.side, o.symbol, "
    "e.qty AS exec_qty, e.price AS exec_price, "
    # a fill's cash for the user, as the journal moved it (a buy's hold and its return included: the cost); a
    # split's cash-in-lieu
    "(SELECT sum(c.amount) FROM journal c WHERE j.kind IN ('fill', 'split') AND c.txn_id = j.txn_id "
    "AND c.user_id = j.user_id AND c.account IN ('cash', 'cash_held')) AS cash_moved FROM journal j "
    "LEFT JOIN orders o ON j.kind = 'fill' AND o.order_id = j.order_id "
    "LEFT JOIN executions e ON j.kind = 'fill' AND e.order_id = j.order_id AND e.exec_id = j.exec_id "
    "WHERE j.user_id = $1 AND ($2::bigint IS NULL OR j.id < $2) AND ("
    "(j.kind IN ('deposit', 'withdrawal', 'fee') AND j.account = 'cash') "
    "OR (j.kind = 'fill' AND j.account IN ('shares', 'shares_held')) "
    "OR (j.kind = 'settlement' AND j.account = 'unsettled') "
    "OR (j.kind = 'split' AND j.account = 'shares')) "
    "ORDER BY j.id DESC LIMIT $3")


def exchange_today() -> dt.date:
    return dt.datetime.now(EXCHANGE_ZONE).date()


async def account_view(ledger: Ledger, user: str) -> AccountView:
    """The user's account now (all zero when they have none)."""
    text = await ledger.pool_for(user).fetchval("SELECT account_state($1)::text", user)
    state: Mapping[str, Any] | None = orjson.loads(text) if text is not None else None
    version = await ledger.pool_for(user).fetchval("SELECT version FROM account_versions WHERE user_id = $1", user)
    if state is not None:
        state = {**state, "version": int(version or 0)}
    return AccountView.of(state)


async def activities(ledger: Ledger, user: str, *, before: int | None = None,
                     page_size: int = DEFAULT_PAGE) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the user's activities, newest first, and the cursor of the next page (None: the last)."""
    page_size = max(1, min(page_size, MAX_PAGE))
    rows = await ledger.pool_for(user).fetch(ACTIVITIES, user, before, page_size + 1)
    more = len(rows) > page_size
    rows = rows[:page_size]
    return [activity_json(r) for r in rows], (encode_cursor(int(rows[-1]["id"])) if more else None)


async def settle_due(ledger: Ledger, today: dt.date | None = None,
                     next_trading_day: TradingDays = next_exchange_day) -> int:
    """Settle every sale whose settlement date is ``today`` (the exchange's date) or earlier; returns how many."""
    today = today or exchange_today()
    settled = 0
    for pool in ledger.pools:
        dates = [r["trade_date"] for r in await pool.fetch(
            "SELECT DISTINCT trade_date FROM settlements WHERE settled_at IS NULL")]
        due = [d for d in dates if settlement_date(d, next_trading_day) <= today]
        if not due:
            continue
        users = [r["user_id"] for r in await pool.fetch(
            "SELECT DISTINCT user_id FROM settlements WHERE settled_at IS NULL AND trade_date = ANY($1::date[]) "
            "ORDER BY user_id", due)]
        for user in users:
            settled += await _settle_user(ledger, user, due)
    return settled


async def _settle_user(ledger: Ledger, user: str, due: list[dt.date]) -> int:
    async with ledger._transaction(user) as conn:  # noqa: SLF001 -- the ledger's own transaction (its relay wake)
        await conn.execute("SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE", user)
        rows = await conn.fetch(
            "SELECT memo_id, amount, order_id, exec_id FROM settlements WHERE user_id = $1 AND settled_at IS NULL "
            "AND trade_date = ANY($2::date[]) ORDER BY memo_id FOR UPDATE", user, due)
        lines = []
        for r in rows:
            txn = uuid.uuid4()  # one settlement (one activity) per sale
            lines += [(txn, user, "unsettled", -int(r["amount"]), r["order_id"], r["exec_id"]),
                      (txn, HOUSE, "clearing", int(r["amount"]), r["order_id"], r["exec_id"])]
        await conn.executemany(
            "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id, exec_id) "
            f"VALUES ($1, 'settlement', $2, $3, '{USD}', $4, $5, $6)", lines)
        await conn.execute("UPDATE settlements SET settled_at = now() WHERE memo_id = ANY($1::bigint[])",
                           [r["memo_id"] for r in rows])
        return len(rows)


class SettlementJob:
    """Runs :func:`settle_due` every ``interval`` seconds (the first run at once) until stopped."""

    def __init__(self, ledger: Ledger, *, interval: float = DEFAULT_INTERVAL,
                 next_trading_day: TradingDays = next_exchange_day) -> None:
        self.ledger, self.interval, self.next_trading_day = ledger, interval, next_trading_day
        self.settled = 0
        self.errors = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.settled += await settle_due(self.ledger, next_trading_day=self.next_trading_day)
            except Exception as e:  # PostgreSQL away: the next round settles it
                self.errors += 1
                log.warning("settlement: %s; retrying in %.0f s", e, self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)
