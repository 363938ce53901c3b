"""The replace's SQL functions (migration 014) against every interleaving with the old order's fills and closing
that the market maker can produce, applied straight to the ledger: after each step ``Ledger.check()`` holds, the
hold is what the open orders need, and nothing is filled beyond the asked total."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from order_api import replacing
from order_api.replacing import ReplaceTerms

from .conftest import QUOTES, ScopedLedger
from .test_ledger import buy, sell

pytestmark = [pytest.mark.anyio]

S = 1_000_000
DOLLAR = 10_000
L, P = 1_800_000, 1_810_000  # the old limit (180) and the new one (181)

Step = Callable[[ScopedLedger, str, uuid.UUID, uuid.UUID], Awaitable[None]]


async def routed(ledger: ScopedLedger, u: str, side: str = "buy") -> uuid.UUID:
    req = buy(10, limit=L) if side == "buy" else sell(10, limit=2_050_000)
    order, _ = await ledger.place(u, req, QUOTES["AAPL"])
    await ledger.mark_routed(u, order["order_id"])
    oid: uuid.UUID = order["order_id"]
    return oid


async def ask(ledger: ScopedLedger, u: str, oid: uuid.UUID, qty: int, limit: int) -> uuid.UUID:
    row = await ledger.get_order(u, oid)
    assert row is not None
    answer, created = await replacing.request(ledger, u, oid, ReplaceTerms(qty * S, limit, None, uuid.uuid4().hex),
                                              row)
    assert created
    new: uuid.UUID = answer["replaced_by"]
    return new


async def held(ledger: ScopedLedger, u: str) -> int:
    account = await ledger.account(u)
    assert account is not None
    return int(account["cash_held"])


@pytest.mark.parametrize("before", [0, 4, 9])
async def test_fills_then_replaced(ledger: ScopedLedger, before: int) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    oid = await routed(ledger, u)
    new = await ask(ledger, u, oid, 12, P)
    assert await ledger.check([u]) == []
    if before:
        await ledger.fill(u, oid, "x1", before * S, L)  # the old order fills first, at its own limit
        assert await ledger.check([u]) == []
    [old, repl] = await replacing.confirm(ledger, u, oid, new, (12 - before) * S)
    assert (old["status"], int(old["held"]), repl["status"], int(repl["qty"])) == (
        "replaced", 0, "routed", (12 - before) * S)
    assert await held(ledger, u) == (12 - before) * P  # exactly the replacement's need
    assert await replacing.confirm(ledger, u, oid, new, (12 - before) * S) == []  # a re-sent answer: nothing more
    await ledger.fill(u, new, "x2", (12 - before) * S, P)
    assert await held(ledger, u) == 0
    [position] = await ledger.positions(u)
    assert int(position["qty"]) == 12 * S  # the asked total, never more
    assert await ledger.check([u]) == []


async def test_a_missing_fill_is_refused_by_the_confirmation(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    oid = await routed(ledger, u)
    new = await ask(ledger, u, oid, 6, P)
    with pytest.raises(ValueError, match="replace_qty_mismatch"):
        await replacing.confirm(ledger, u, oid, new, 2 * S)  # the market maker counted 4 filled, the ledger 0
    await ledger.fill(u, oid, "x1", 4 * S, L)  # the status request brings the fill, then the answer again
    assert len(await replacing.confirm(ledger, u, oid, new, 2 * S)) == 2
    assert await held(ledger, u) == 2 * P and await ledger.check([u]) == []


@pytest.mark.parametrize("how", ["filled", "partly", "expired", "cancelled", "untouched"])
async def test_refused_after_the_old_order_moved(ledger: ScopedLedger, how: str) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    oid = await routed(ledger, u)
    new = await ask(ledger, u, oid, 14, P)  # a larger order at a higher price: the hold grows
    assert await held(ledger, u) > 10 * L
    if how == "filled":
        await ledger.fill(u, oid, "x1", 10 * S, L)
    elif how == "partly":
        await ledger.fill(u, oid, "x1", 3 * S, L)
    elif how == "expired":
        await ledger.expire(u, oid, "day order expired")
    elif how == "cancelled":
        await ledger.cancelled(u, oid, "cancelled by the market maker")
    assert await ledger.check([u]) == []
    row = await replacing.refuse(ledger, u, oid, new)
    assert row is not None and row["replaced_by"] is None
    assert await replacing.refuse(ledger, u, oid, new) is None  # answered already
    expected = {"filled": 0, "partly": 7 * L, "expired": 0, "cancelled": 0, "untouched": 10 * L}[how]
    assert await held(ledger, u) == expected and int(row["held"]) == expected
    assert await ledger.check([u]) == []


async def test_a_sell_replace_moves_shares_holds(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    bought, _ = await ledger.place(u, buy(15), QUOTES["AAPL"])
    await ledger.fill(u, bought["order_id"], "b1", 15 * S, QUOTES["AAPL"].ask)
    oid = await routed(ledger, u, "sell")
    new = await ask(ledger, u, oid, 12, 2_060_000)
    [position] = await ledger.positions(u)
    assert (int(position["qty"]), int(position["qty_held"])) == (3 * S, 12 * S)
    assert await ledger.check([u]) == []
    # (no sell fill here: on main a sale's fill trips Ledger.check's fill-journal rule since the T+1 memo lines;
    # test_ledger's own sell test shows it too)
    [_, repl] = await replacing.confirm(ledger, u, oid, new, 12 * S)
    [position] = await ledger.positions(u)
    assert (int(position["qty"]), int(position["qty_held"]), int(repl["held"])) == (3 * S, 12 * S, 12 * S)
    assert await ledger.check([u]) == []
    smaller = await ask(ledger, u, new, 4, 2_060_000)
    await replacing.confirm(ledger, u, new, smaller, 4 * S)
    [position] = await ledger.positions(u)
    assert (int(position["qty"]), int(position["qty_held"])) == (11 * S, 4 * S)
    assert await ledger.check([u]) == []
