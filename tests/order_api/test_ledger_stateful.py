"""Randomized sequences against the real ledger (PostgreSQL): a hypothesis state machine deposits, places (market
and limit, buy and sell), retries with the same idempotency key (and with the same key for different terms),
routes, fills (partial, full, an IOC's rest cancelled, the same ExecID again), cancels (before routing, and
through the market maker), and rejects, over two users and three symbols, and after every step compares the
ledger with a model of what each account, position and order must hold, and runs ``Ledger.check()``.

Quantities are millionths of a share: orders are whole or fractional, fills any part of what is left, so the
model checks the rounding rule (a buyer pays the exact cost rounded up per order, a seller receives it rounded
down) and ``Ledger.check()`` that the house's fractional account keeps every journal entry balanced.

The ledger has no replace (cancel/replace, FIX 35=G): an order's terms never change once placed, so a "replace"
is a cancel and a new order, which the machine already does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from order_api.db import Row
from order_api.ledger import buy_cost, buy_hold, fee_for, sell_proceeds
from order_api.model import ApiError, OrderRequest, Rules, reserve_price
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, TEST_DSNS, ScopedLedger, fresh_shards

T = TypeVar("T")
DOLLAR = 10_000
FEE_BPS = 3
SYMBOLS = ("AAPL", "MSFT", "PENY")
OPEN = ("accepted", "routed", "partially_filled")


@dataclass
class Account:
    cash: int = 0
    cash_held: int = 0
    shares: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    shares_held: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class Order:
    user: str
    req: OrderRequest
    order_id: uuid.UUID
    reserve: int  # per-share cash held (buys)
    held: int
    filled: int = 0
    carry: int = 0  # the per-order rounding carry (ledger.buy_cost / sell_proceeds)
    status: str = "accepted"
    cancel_requested: bool = False
    executions: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def buy(self) -> bool:
        return self.req.side == "buy"


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.order_rules = Rules()
        self.run(fresh_shards())
        self.ledger = self.run(ScopedLedger.connect(TEST_DSNS, max_size=2, fee_bps=FEE_BPS, rules=self.order_rules))
        assert isinstance(self.ledger, ScopedLedger)
        self.users = [self.ledger.user("walk") for _ in range(2)]
        self.accounts = {u: Account() for u in self.users}
        for u in self.users:  # enough to buy most orders; the deposit rule adds more, sometimes too little
            self.run(self.ledger.deposit(u, 50_000 * DOLLAR))
            self.accounts[u].cash = 50_000 * DOLLAR
        self.orders: list[Order] = []
        self.exec_seq = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.ledger.close())
        self.loop.close()

    # ------------------------------------------------------------ helpers

    def _release(self, o: Order) -> None:
        """The model of ``Ledger._finish``: whatever the order still holds goes back."""
        acct = self.accounts[o.user]
        if o.buy:
            acct.cash_held -= o.held
            acct.cash += o.held
        else:
            acct.shares_held[o.req.symbol] -= o.held
            acct.shares[o.req.symbol] += o.held
        o.held = 0

    def _pick(self, data: st.DataObject, statuses: tuple[str, ...]) -> Order:
        return data.draw(st.sampled_from([o for o in self.orders if o.status in statuses]))

    def _has(self, *statuses: str) -> bool:
        return any(o.status in statuses for o in self.orders)

    # ------------------------------------------------------------ rules

    @precondition(lambda self: any(a.cash < 10_000 * DOLLAR for a in self.accounts.values()))
    @rule(who=st.integers(0, 1), dollars=st.integers(1, 20_000))
    def deposit(self, who: int, dollars: int) -> None:
        u = self.users[who]
        self.run(self.ledger.deposit(u, dollars * DOLLAR))
        self.accounts[u].cash += dollars * DOLLAR

    @rule(who=st.integers(0, 1), side=st.sampled_from(["buy", "sell"]), symbol=st.sampled_from(SYMBOLS),
          qty=st.integers(1, 30).map(lambda n: n * S) | st.integers(1, 30 * S),
          limit_bps=st.none() | st.integers(-900, 900),
          tif=st.sampled_from(["day", "ioc"]))
    def place(self, who: int, side: str, symbol: str, qty: int, limit_bps: int | None, tif: str) -> None:
        u, quote = self.users[who], QUOTES[symbol]
        limit = None if limit_bps is None else quote.reference + quote.reference * limit_bps // 10_000
        req = OrderRequest(symbol, side, qty, "market" if limit is None else "limit", limit, tif, uuid.uuid4().hex)
        acct = self.accounts[u]
        reserve = reserve_price(req, quote, self.order_rules) if side == "buy" else 0
        held = buy_hold(qty, reserve) if side == "buy" else qty
        short = held > acct.cash if side == "buy" else qty > acct.shares[symbol]
        try:
            row, created = self.run(self.ledger.place(u, req, quote))
        except ApiError as e:
            assert short, f"refused {e.code} with enough to cover it"
            assert e.code == ("insufficient_funds" if side == "buy" else "insufficient_shares")
            return
        assert not short and created, "placed without the money or shares for it"
        if side == "buy":
            acct.cash -= held
            acct.cash_held += held
        else:
            acct.shares[symbol] -= qty
            acct.shares_held[symbol] += qty
        self.orders.append(Order(u, req, row["order_id"], reserve, held))

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), same_terms=st.booleans())
    def retry(self, data: st.DataObject, same_terms: bool) -> None:
        """The same idempotency key again: the first order, whatever became of it; other terms: refused."""
        o = data.draw(st.sampled_from(self.orders))
        req = o.req if same_terms else OrderRequest(o.req.symbol, o.req.side, o.req.qty + 1, o.req.type,
                                                     o.req.limit_price, o.req.tif, o.req.idempotency_key)
        try:
            row, created = self.run(self.ledger.place(o.user, req, QUOTES[o.req.symbol]))
        except ApiError as e:
            assert not same_terms and e.code == "idempotency_conflict"
            return
        assert same_terms and not created and row["order_id"] == o.order_id

    @precondition(lambda self: self._has("accepted"))
    @rule(data=st.data())
    def route(self, data: st.DataObject) -> None:
        o = self._pick(data, ("accepted",))
        row = self.run(self.ledger.mark_routed(o.user, o.order_id))
        assert row is not None and row["status"] == "routed"
        o.status = "routed"

    @precondition(lambda self: self._has(*OPEN))
    @rule(data=st.data(), ioc=st.booleans())
    def fill(self, data: st.DataObject, ioc: bool) -> None:
        o = self._pick(data, OPEN)
        quote = QUOTES[o.req.symbol]
        qty = data.draw(st.integers(1, o.req.qty - o.filled), label="qty")
        if o.buy:  # at or below what was held for it (price improvement)
            price = data.draw(st.integers(max(1, o.reserve * 9 // 10), o.reserve), label="price")
        else:  # at or above its limit
            floor = o.req.limit_price or quote.bid * 9 // 10
            price = data.draw(st.integers(floor, floor * 11 // 10), label="price")
        self.exec_seq += 1
        exec_id = f"E{self.exec_seq}"
        fill = self.run(self.ledger.fill(o.user, o.order_id, exec_id, qty, price, leaves_done=ioc))
        assert fill is not None
        acct, sym = self.accounts[o.user], o.req.symbol
        if o.buy:
            cost, o.carry = buy_cost(qty, price, o.carry)
            acct.cash_held -= cost
            acct.shares[sym] += qty
            o.held -= cost
        else:
            proceeds, o.carry = sell_proceeds(qty, price, o.carry)
            acct.shares_held[sym] -= qty
            acct.cash += proceeds - fee_for(proceeds, FEE_BPS)
            o.held -= qty
        o.filled += qty
        o.executions.append((exec_id, qty, price))
        o.status = "filled" if o.filled == o.req.qty else "partially_filled"
        if o.status == "filled":
            self._release(o)  # what a filled buy did not spend returns
        if o.status == "partially_filled" and ioc:
            o.status = "cancelled"
            self._release(o)

    @precondition(lambda self: any(o.executions for o in self.orders))
    @rule(data=st.data())
    def fill_again(self, data: st.DataObject) -> None:
        """An execution report delivered twice (a PossResend, a reconnect): applied once."""
        o = data.draw(st.sampled_from([o for o in self.orders if o.executions]))
        exec_id, qty, price = data.draw(st.sampled_from(o.executions))
        assert self.run(self.ledger.fill(o.user, o.order_id, exec_id, qty, price)) is None

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), closed=st.booleans())
    def cancel(self, data: st.DataObject, closed: bool) -> None:
        """Mostly open orders; a closed one sometimes (refused, nothing moves)."""
        o = data.draw(st.sampled_from(self.orders if closed or not self._has(*OPEN)
                                      else [o for o in self.orders if o.status in OPEN]))
        try:
            row = self.run(self.ledger.cancel(o.user, o.order_id))
        except ApiError as e:
            assert o.status not in OPEN and e.code == "order_not_open"
            return
        assert o.status in OPEN
        if o.status == "accepted":  # never left the ledger: cancelled at once
            o.status = "cancelled"
            self._release(o)
        else:  # the market maker has it: asked, and its answer decides
            o.cancel_requested = True
        assert row["status"] == o.status

    @precondition(lambda self: self._has("routed", "partially_filled"))
    @rule(data=st.data())
    def market_maker_cancels(self, data: st.DataObject) -> None:
        o = self._pick(data, ("routed", "partially_filled"))
        assert self.run(self.ledger.cancelled(o.user, o.order_id, "cancelled by the market maker")) is not None
        o.status = "cancelled"
        self._release(o)

    @precondition(lambda self: self._has("accepted", "routed"))
    @rule(data=st.data())
    def market_maker_rejects(self, data: st.DataObject) -> None:
        o = self._pick(data, ("accepted", "routed"))
        assert self.run(self.ledger.reject(o.user, o.order_id, "rejected by the market maker")) is not None
        o.status = "cancelled" if o.filled else "rejected"
        self._release(o)

    # ------------------------------------------------------------ the oracle

    @invariant()
    def ledger_matches_the_model(self) -> None:
        assert self.run(self.ledger.check()) == []
        for u, acct in self.accounts.items():
            row = self.run(self.ledger.account(u))
            money = (int(row["cash"]), int(row["cash_held"])) if row else (0, 0)
            assert money == (acct.cash, acct.cash_held), u
            pos: dict[str, Row] = {p["symbol"]: p for p in self.run(self.ledger.positions(u))}
            for sym in SYMBOLS:
                have = (int(pos[sym]["qty"]), int(pos[sym]["qty_held"])) if sym in pos else (0, 0)
                assert have == (acct.shares[sym], acct.shares_held[sym]), (u, sym)
        for o in self.orders:
            row = self.run(self.ledger.get_order(o.user, o.order_id))
            assert row is not None
            assert (row["status"], int(row["filled_qty"]), int(row["held"]), row["cancel_requested"]) == \
                (o.status, o.filled, o.held, o.cancel_requested), o


def test_random_ledger_sequences_keep_every_invariant_and_match_the_model() -> None:
    # No shrinking: replaying candidates against a real database takes minutes; a failure is reported as the
    # generated sequence of steps (and replayed first on the next run, from the example database).
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=15, stateful_step_count=25, deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate]))

