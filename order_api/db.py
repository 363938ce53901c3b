"""The ledger on PostgreSQL (asyncpg): every money movement in one transaction, with its journal and outbox.

Concurrency: each transaction that touches a user's money first takes that user's ``accounts`` row with
``SELECT ... FOR UPDATE`` (then, if needed, the order and position rows, always in that order, so there is
no deadlock). All of one user's placements, cancels and fills are thereby serialised, while different users
never wait for each other. We chose row locks over SERIALIZABLE because the contention is exactly "one user's
money", which a row lock names precisely: no transaction is ever aborted for a false conflict, so there is no
retry loop to get wrong, and an idempotency race is settled by the same lock (the second request sees the
first one's order). CHECK constraints (no negative cash, shares or holds) are the last line of defence.

Sharding: users live on ``shard_of(user_id, len(dsns))``; every shard is a database with the same schema.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from order_api import ledger
from order_api.batching import CommitOutcomeUnknown, Placement, ShardBatcher, connection_lost
from order_api.invariants import INVARIANTS
from order_api.ledger import Entry
from order_api.migrate import (
    MIGRATIONS,
    MigrationsMissing,
    MigrationsPending,
    create_databases,
    migrate,
    migration_files,
)
from order_api.model import (
    SENDABLE,
    TERMINAL,
    ApiError,
    FillRefused,
    OrderRequest,
    Quote,
    Rules,
    Status,
    fill_refusal,
    money,
    notional_sell_qty,
    notional_terms,
    pre_trade,
    quantity,
    reserve_price,
    shard_of,
    transition,
)
from order_api.stops import stop_terms
from order_api.views import order_update_frame

DEFAULT_DSNS = ("postgresql://postgres@127.0.0.1:5432/tickfan_0", "postgresql://postgres@127.0.0.1:5432/tickfan_1")

Row = Mapping[str, Any]


# ---------------------------------------------------------------- the ledger


@dataclass(frozen=True, slots=True)
class Fill:
    """What one applied execution did, for the caller to log or push."""

    order: Row
    qty: int
    price: int


async def _light_reset(conn: asyncpg.Connection) -> None:
    """What a released connection needs here: no session state is ever left behind except an interrupted
    transaction. asyncpg's default reset costs a round trip per release (a third of a placement's time)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Ledger:
    """The shards' connection pools and every transaction on them."""

    def __init__(self, pools: Sequence[asyncpg.Pool], *, rules: Rules | None = None, fee_bps: int = 0) -> None:
        self.pools = list(pools)
        self.rules = rules or Rules()
        self.fee_bps = fee_bps
        # placements go to their shard's batcher (order_api/batching.py)
        self._batchers = [ShardBatcher(p) for p in self.pools]
        # called with the shard number after a transaction that may have written outbox rows has ended: the
        # outbox relay of this process wakes at once (no NOTIFY: see migration 004)
        self.outbox_hooks: list[Callable[[int], None]] = []

    @classmethod
    async def connect(cls, dsns: Sequence[str], *, min_size: int = 1, max_size: int = 10,
                      rules: Rules | None = None, fee_bps: int = 0) -> Ledger:
        pools = []
        try:
            for dsn in dsns:
                pools.append(await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                                       reset=_light_reset))
        except BaseException:
            for p in pools:
                await p.close()
            raise
        return cls(pools, rules=rules, fee_bps=fee_bps)

    async def close(self) -> None:
        for p in self.pools:
            await p.close()

    def pool_for(self, user: str) -> asyncpg.Pool:
        return self.pools[shard_of(user, len(self.pools))]

    def announce(self, user: str) -> None:
        """Outbox rows of ``user`` were committed by a transaction outside this class: wake the relay."""
        self._outboxed(user)

    def _outboxed(self, user: str) -> None:
        shard = shard_of(user, len(self.pools))
        for hook in self.outbox_hooks:
            hook(shard)

    @contextlib.asynccontextmanager
    async def _transaction(self, user: str) -> AsyncIterator[asyncpg.Connection]:
        """A transaction on the user's shard that may announce changes; the relay is woken once it has ended
        (committed or not: a wake with nothing to publish costs one empty read).

        A connection lost once the body is done (the COMMIT sent, its answer not read) raises
        :class:`CommitOutcomeUnknown`: the change may stand; before that point it was rolled back."""
        committing = False
        try:
            async with self.pool_for(user).acquire() as conn, conn.transaction():
                yield conn
                committing = True
        except Exception as e:
            if committing and connection_lost(e):
                raise CommitOutcomeUnknown(f"the connection was lost at commit: {e}") from e
            raise
        finally:
            self._outboxed(user)

    # -- writing helpers (inside a transaction)

    @staticmethod
    async def _post(conn: asyncpg.Connection, kind: str, entries: list[Entry], *, order_id: uuid.UUID | None = None,
                    exec_id: str | None = None) -> None:
        """Append one balanced journal transaction and move the cached balances by the same amounts."""
        txn = uuid.uuid4()
        await conn.executemany(
            "INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id, exec_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [(txn, kind, e.user_id, e.account, e.asset, e.amount, order_id, exec_id) for e in entries])
        for e in entries:
            if e.user_id == ledger.HOUSE:
                continue
            if e.account in ("cash", "cash_held"):
                await conn.execute(f"UPDATE accounts SET {e.account} = {e.account} + $2 WHERE user_id = $1",
                                   e.user_id, e.amount)
            else:
                # UPDATE first: INSERT .. ON CONFLICT would check a negative amount against CHECK (qty >= 0)
                # before it sees the conflict. The account lock makes update-then-insert race free.
                column = "qty" if e.account == "shares" else "qty_held"
                moved = await conn.fetchval(
                    f"UPDATE positions SET {column} = {column} + $3 WHERE user_id = $1 AND symbol = $2 RETURNING 1",
                    e.user_id, e.asset, e.amount)
                if not moved:
                    await conn.execute(f"INSERT INTO positions (user_id, symbol, {column}) VALUES ($1, $2, $3)",
                                       e.user_id, e.asset, e.amount)

    @staticmethod
    async def _announce(conn: asyncpg.Connection, order: Row, *, execute: str | None = None, last_qty: int = 0,
                        last_price: int = 0) -> None:
        """Outbox rows for this change: the user's order update, and work for the execution workers."""
        user = order["user_id"]
        rows = [(user, "order_update", order_update_frame(order, last_qty=last_qty, last_price=last_price))]
        if execute is not None:
            rows.append((user, "execution", orjson.dumps(
                {"action": execute, "order_id": str(order["order_id"]), "user_id": user})))
        await conn.executemany("INSERT INTO outbox (user_id, topic, payload) VALUES ($1, $2, $3)", rows)

    @staticmethod
    async def _lock_account(conn: asyncpg.Connection, user: str) -> Row | None:
        row: Row | None = await conn.fetchrow("SELECT * FROM accounts WHERE user_id = $1 FOR UPDATE", user)
        return row

    # -- operations

    async def deposit(self, user: str, amount: int) -> Row:
        if amount <= 0:
            raise ApiError(422, "invalid_amount", "a deposit must be positive")
        async with self.pool_for(user).acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO accounts (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user)
            await self._lock_account(conn, user)
            await self._post(conn, "deposit", ledger.deposit(user, amount))
            row: Row = await conn.fetchrow("SELECT * FROM accounts WHERE user_id = $1", user)
            return row

    async def place(self, user: str, req: OrderRequest, quote: Quote | None) -> tuple[Row, bool]:
        """Validate, hold, record the order and its outbox events, atomically. Returns (order, created);
        a retry with the same idempotency key returns the first order with created False.

        The checks that need no database run here; the rest happens in PostgreSQL under the user's account row
        lock, in one transaction with the other orders of its batch (``place_orders``, migration 004; see
        order_api/batching.py)."""
        try:
            pre_trade(req, quote, self.rules)
        except ApiError:
            # A retry of an order placed before the price moved off its collar is still that order.
            existing = await self.pool_for(user).fetchrow(
                "SELECT * FROM orders WHERE user_id = $1 AND idempotency_key = $2", user, req.idempotency_key)
            if existing is None:
                raise
            if existing["fingerprint"] != req.fingerprint():
                raise ApiError(409, "idempotency_conflict",
                               "this idempotency_key was already used for a different order") from None
            return existing, False
        assert quote is not None
        order_id = uuid.uuid4()
        qty = req.qty
        if req.notional is not None and req.side == "buy":
            # spend at most the notional: hold it all, send the quantity it buys at the ask (model.notional_terms)
            qty, price = notional_terms(req.notional, quote, self.rules)
            held = req.notional
            entries = ledger.hold_cash(user, held)
        elif req.side == "buy":
            price = reserve_price(req, quote, self.rules)
            held = ledger.buy_hold(qty, price)
            entries = ledger.hold_cash(user, held)
        else:
            if req.notional is not None:  # what the notional is worth at the bid (model.notional_sell_qty)
                qty = notional_sell_qty(req.notional, quote)
            price, held = 0, qty
            entries = ledger.hold_shares(user, req.symbol, qty)
        stop = stop_terms(req, quote)  # a stop rests as pending_trigger (order_api/stops.py)
        shown = {"order_id": order_id, "symbol": req.symbol, "side": req.side, "type": req.type,
                 "status": (Status.PENDING_TRIGGER if req.is_stop else Status.ACCEPTED).value, "qty": qty,
                 "filled_qty": 0, "filled_notional": 0, "limit_price": req.limit_price, "reason": "", "version": 1,
                 "notional": req.notional, "tif": req.tif, "extended_hours": req.extended_hours, **stop}
        work = orjson.dumps({"action": "new", "order_id": str(order_id), "user_id": user})
        a, b = entries
        placed = await self._batchers[shard_of(user, len(self.pools))].place(Placement(
            order_id, user, req.idempotency_key, req.fingerprint(), req.symbol, req.side, req.type, req.tif_column,
            qty, req.limit_price, price, held, (a.account, b.account), (a.asset, b.asset), (a.amount, b.amount),
            order_update_frame(shown), work, req.notional, **stop))
        code, have = placed.code, placed.have
        if code == "idempotency_conflict":
            raise ApiError(409, code, "this idempotency_key was already used for a different order")
        if code == "insufficient_funds":
            raise ApiError(422, code, f"buying power {money(have)} is less than {money(held)} needed")
        if code == "insufficient_shares":
            worth = "" if req.notional is None else f"; ${money(req.notional)} is {quantity(qty)} at the bid"
            raise ApiError(422, code, f"{quantity(have)} {req.symbol} shares available to sell{worth}")
        row: Row = placed.order
        created = row["order_id"] == order_id
        if created:
            self._outboxed(user)
        return row, created

    async def cancel(self, user: str, order_id: uuid.UUID) -> Row:
        """Cancel an order: at once if no market maker has it yet, else ask for it (the MM's answer decides)."""
        async with self._transaction(user) as conn:
            await self._lock_account(conn, user)
            order: Row | None = await conn.fetchrow(
                "SELECT * FROM orders WHERE order_id = $1 AND user_id = $2 FOR UPDATE", order_id, user)
            if order is None:
                raise ApiError(404, "order_not_found", "no such order")
            status = Status(order["status"])
            if status in TERMINAL:
                raise ApiError(409, "order_not_open", f"the order is already {status}")
            if status in (Status.ACCEPTED, Status.PENDING_TRIGGER):
                return await self._finish(conn, order, Status.CANCELLED, "cancelled by the user")
            if order.get("replaced_by") is not None:
                # the market maker decides the replace first (migration 014); then cancel what stands
                raise ApiError(409, "replace_pending", "a replace of this order is pending; cancel once answered")
            if order["cancel_requested"]:
                return order
            order = await conn.fetchrow(
                "UPDATE orders SET cancel_requested = true, version = version + 1, updated_at = now() "
                "WHERE order_id = $1 RETURNING *", order_id)
            await self._announce(conn, order, execute="cancel")
            return order

    async def _finish(self, conn: asyncpg.Connection, order: Row, status: Status, reason: str) -> Row:
        """Close an open order (cancelled or rejected): release whatever it still holds."""
        transition(Status(order["status"]), status)
        user, held = order["user_id"], int(order["held"])
        if held:
            entries = (ledger.release_cash(user, held) if order["side"] == "buy"
                       else ledger.release_shares(user, order["symbol"], held))
            await self._post(conn, "release", entries, order_id=order["order_id"])
        row: Row = await conn.fetchrow(
            "UPDATE orders SET status = $2, held = 0, reason = $3, version = version + 1, updated_at = now() "
            "WHERE order_id = $1 RETURNING *", order["order_id"], status.value, reason)
        await self._announce(conn, row)
        return row

    # -- the execution side

    async def find_order(self, order_id: uuid.UUID) -> Row | None:
        """An order by id on whichever shard holds it (execution reports do not carry the user)."""
        for pool in self.pools:
            row: Row | None = await pool.fetchrow("SELECT * FROM orders WHERE order_id = $1", order_id)
            if row is not None:
                return row
        return None

    async def get_order(self, user: str, order_id: uuid.UUID) -> Row | None:
        row: Row | None = await self.pool_for(user).fetchrow(
            "SELECT * FROM orders WHERE order_id = $1 AND user_id = $2", order_id, user)
        return row

    async def mark_routed(self, user: str, order_id: uuid.UUID) -> Row | None:
        """accepted -> routed before the order is sent (so a cancel can no longer close it locally).
        Returns the order if it should be sent now (routed, still open), None if it must not be sent."""
        async with self._transaction(user) as conn:
            await self._lock_account(conn, user)
            order: Row | None = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
            if order is None or Status(order["status"]) not in SENDABLE:
                return None
            if order["status"] != Status.ACCEPTED:
                return order  # re-sent after a crash or a reconcile: same ClOrdID, same terms
            row: Row = await conn.fetchrow(
                "UPDATE orders SET status = 'routed', version = version + 1, updated_at = now() "
                "WHERE order_id = $1 RETURNING *", order_id)
            await self._announce(conn, row)
            return row

    async def mark_sending(self, user: str, order_id: uuid.UUID, *, to: str | None = None,
                           again_if_to: str | None = None) -> tuple[Row | None, bool]:
        """Just before a NewOrderSingle goes on the wire: route the order (accepted -> routed) and note that it
        is being sent (``sent_at``) to market-maker incarnation ``to``. Returns (order, go): ``go`` is False when the
        order had been sent before, and the caller must not send it again (a market maker that lost its state
        would take it as a new order) -- unless it was sent to ``again_if_to``, the incarnation now answering that
        it never got it. (None, False) when it must not be sent at all (cancelled before routing, or closed)."""
        async with self._transaction(user) as conn:
            await self._lock_account(conn, user)
            order: Row | None = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
            if order is None or Status(order["status"]) not in SENDABLE:
                return None, False  # closed, or a stop not yet triggered (its trigger queues it again)
            if order["sent_at"] is not None and (again_if_to is None or order["sent_to"] != again_if_to):
                return order, False
            if order["status"] != Status.ACCEPTED:
                row: Row = await conn.fetchrow(
                    "UPDATE orders SET sent_at = now(), sent_to = $2 WHERE order_id = $1 RETURNING *", order_id, to)
                return row, True
            row = await conn.fetchrow(
                "UPDATE orders SET status = 'routed', sent_at = now(), sent_to = $2, version = version + 1, "
                "updated_at = now() WHERE order_id = $1 RETURNING *", order_id, to)
            await self._announce(conn, row)
            return row, True

    async def unmark_sent(self, user: str, order_id: uuid.UUID) -> None:
        """The FIX client refused the NewOrderSingle before writing a byte of it: it was never on the wire."""
        await self.pool_for(user).execute("UPDATE orders SET sent_at = NULL WHERE order_id = $1", order_id)

    async def reject(self, user: str, order_id: uuid.UUID, reason: str) -> Row | None:
        async with self._transaction(user) as conn:
            await self._lock_account(conn, user)
            order = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
            if order is None or Status(order["status"]) in TERMINAL:
                return None
            if int(order["filled_qty"]):
                return await self._finish(conn, order, Status.CANCELLED, reason)
            return await self._finish(conn, order, Status.REJECTED, reason)

    async def expire(self, user: str, order_id: uuid.UUID, reason: str) -> Row | None:
        """Close an open order as expired (its session ended), releasing its hold: ``expire_order`` (migration
        011) in one transaction with its order update. None when it was not open."""
        async with self._transaction(user) as conn:
            await self._lock_account(conn, user)
            row: Row | None = await conn.fetchrow("SELECT * FROM expire_order($1, $2)", order_id, reason)
            if row is None or row["order_id"] is None:
                return None
            await self._announce(conn, row)
            return row

    async def cancelled(self, user: str, order_id: uuid.UUID, reason: str) -> Row | None:
        async with self._transaction(user) as conn:
            await self._lock_account(conn, user)
            order = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
            if order is None or Status(order["status"]) in TERMINAL:
                return None
            # a cancel the ledger itself asked for (a corporate action) keeps its reason
            return await self._finish(conn, order, Status.CANCELLED, order["reason"] or reason)

    async def fill(self, user: str, order_id: uuid.UUID, exec_id: str, qty: int, price: int,
                   *, symbol: str | None = None, side: str | None = None, leaves_done: bool = False) -> Fill | None:
        """Apply one execution, idempotently by ExecID: release, move cash and shares, journal, order state.
        ``symbol``/``side``: what the report says it traded (None: the order's own, for callers that have no
        report). ``leaves_done``: the market maker says nothing of the order remains open (an IOC's rest is
        cancelled). Returns None for an execution already applied with the same terms; raises
        :class:`~order_api.model.FillRefused` for one that does not fit the order (beyond its limit, the wrong
        symbol or side, beyond its quantity, after it closed, or its ExecID reused with other terms)."""
        async with self._transaction(user) as conn:
            await self._lock_account(conn, user)
            order = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
            if order is None:
                raise LookupError(f"execution {exec_id} for unknown order {order_id}")
            symbol, side = symbol or order["symbol"], side or order["side"]
            seen = await conn.fetchrow("SELECT * FROM executions WHERE order_id = $1 AND exec_id = $2",
                                       order_id, exec_id)
            if seen is not None:
                if (int(seen["qty"]), int(seen["price"])) == (qty, price) \
                        and (seen["symbol"] or symbol, seen["side"] or side) == (symbol, side):
                    return None  # the same execution again (a re-sent report): applied once already
                raise FillRefused("fill_exec_id_reused", f"ExecID {exec_id} of order {order_id} was "
                                  f"{seen['qty']} at {seen['price']}, now {qty} at {price}")
            refused = fill_refusal(order, symbol=symbol, side=side, qty=qty, price=price)
            if refused is not None:
                raise refused
            try:
                # the database checks the same rules again (migration 006): the ledger is the last line
                await conn.execute("SELECT record_execution($1, $2, $3, $4, $5, $6)",
                                   order_id, exec_id, symbol, side, qty, price)
            except asyncpg.RaiseError as e:
                raise FillRefused(str(e.args[0] if e.args else e), str(getattr(e, "detail", "") or "")) from e
            status = Status(order["status"])
            sym, carry = order["symbol"], int(order["cash_carry"])
            if order["side"] == "buy":
                amount, carry = ledger.buy_cost(qty, price, carry)
                if amount > int(order["held"]):
                    # the limit checks above make this impossible; the CHECK (held >= 0) would refuse it anyway
                    raise FillRefused("fill_beyond_hold", f"a fill costing {money(amount)} on an order holding "
                                      f"{money(int(order['held']))}")
                entries = ledger.buy_fill(user, sym, qty, price, amount)
                used = amount
            else:
                amount, carry = ledger.sell_proceeds(qty, price, carry)
                entries = ledger.sell_fill(user, sym, qty, price, amount)
                used = qty
            await self._post(conn, "fill", entries, order_id=order_id, exec_id=exec_id)
            if order["side"] == "buy":
                await conn.execute("UPDATE positions SET cost = cost + $3 WHERE user_id = $1 AND symbol = $2",
                                   user, sym, amount)
            else:
                await self._reduce_cost(conn, user, sym, qty)
                fee = ledger.fee_for(amount, self.fee_bps)
                if fee:
                    await self._post(conn, "fee", ledger.fee(user, fee), order_id=order_id, exec_id=exec_id)
            filled = int(order["filled_qty"]) + qty
            new = transition(status, Status.FILLED if filled == int(order["qty"]) else Status.PARTIALLY_FILLED)
            row: Row = await conn.fetchrow(
                "UPDATE orders SET status = $2, filled_qty = $3, filled_notional = filled_notional + $4, "
                "held = held - $5, cash_carry = $6, version = version + 1, updated_at = now() "
                "WHERE order_id = $1 RETURNING *",
                order_id, new.value, filled, amount, used, carry)
            await self._announce(conn, row, last_qty=qty, last_price=price)
            if new is Status.PARTIALLY_FILLED and leaves_done:
                row = await self._finish(conn, row, Status.CANCELLED, "the rest was not filled (ioc)")
            elif new is Status.FILLED and int(row["held"]):
                # What a filled buy did not spend (a fill below its reserve price, a notional's rest) returns.
                entries = ledger.release_cash(user, int(row["held"]))
                await self._post(conn, "release", entries, order_id=order_id)
                row = await conn.fetchrow("UPDATE orders SET held = 0 WHERE order_id = $1 RETURNING *", order_id)
            return Fill(row, qty, price)

    @staticmethod
    async def _reduce_cost(conn: asyncpg.Connection, user: str, symbol: str, sold: int) -> None:
        # Average cost: the sold shares take their proportional share of the basis with them.
        await conn.execute(
            "UPDATE positions SET cost = CASE WHEN qty + qty_held + $3 = 0 THEN 0 "
            "ELSE cost - div(cost::numeric * $3, qty + qty_held + $3)::bigint END "
            "WHERE user_id = $1 AND symbol = $2",
            user, symbol, sold)

    async def open_orders(self, *, older_than: float = 0.0, limit: int = 500) -> list[Row]:
        """Open orders not touched for ``older_than`` seconds, on every shard (for reconciliation sweeps)."""
        out: list[Row] = []
        for pool in self.pools:
            out.extend(await pool.fetch(
                "SELECT * FROM orders WHERE status IN ('accepted', 'routed', 'partially_filled') "
                "AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2",
                older_than, limit))
        return out

    async def touch(self, user: str, order_id: uuid.UUID) -> None:
        """Note that an open order was just reconciled, so the sweep moves on to others."""
        await self.pool_for(user).execute("UPDATE orders SET updated_at = now() WHERE order_id = $1", order_id)

    # -- reading

    async def account(self, user: str) -> Row | None:
        row: Row | None = await self.pool_for(user).fetchrow("SELECT * FROM accounts WHERE user_id = $1", user)
        return row

    async def positions(self, user: str) -> list[Row]:
        rows: list[Row] = await self.pool_for(user).fetch(
            "SELECT * FROM positions WHERE user_id = $1 AND qty + qty_held > 0 ORDER BY symbol", user)
        return rows

    async def orders(self, user: str, *, limit: int = 100, status: str | None = None) -> list[Row]:
        rows: list[Row] = await self.pool_for(user).fetch(
            "SELECT * FROM orders WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) "
            "ORDER BY created_at DESC LIMIT $3", user, status, limit)
        return rows

    async def journal(self, user: str, *, limit: int = 100, before: int | None = None) -> list[Row]:
        rows: list[Row] = await self.pool_for(user).fetch(
            "SELECT * FROM journal WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2) "
            "ORDER BY id DESC LIMIT $3", user, before, limit)
        return rows

    async def house(self) -> dict[str, int]:
        """The broker's ``fractional`` account over every shard, by asset: the residual fractions of shares it holds
        (millionths) from fractional fills, and under ``USD`` what they cost it net of the fills' rounding."""
        out: dict[str, int] = {}
        for pool in self.pools:
            for r in await pool.fetch("SELECT asset, sum(amount) AS amount FROM journal WHERE user_id = '' "
                                      "AND account = $1 GROUP BY asset", ledger.FRACTIONAL):
                out[r["asset"]] = out.get(r["asset"], 0) + int(r["amount"])
        return out

    # -- invariants

    async def check(self, users: Sequence[str] | None = None) -> list[str]:
        """Every ledger invariant on every shard; an empty list means the books are right to the unit.

        ``users`` scopes the check to those users' accounts, positions, orders and journal transactions (a test
        checks its own users while others trade beside it); None checks everything.
        """
        scope = None if users is None else list(users)
        problems: list[str] = []
        for shard, pool in enumerate(self.pools):
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                for q, what in INVARIANTS:
                    for r in await conn.fetch(q, scope):
                        problems.append(f"shard {shard}: {what}: {dict(r)}")
        return problems


__all__ = ["DEFAULT_DSNS", "INVARIANTS", "MIGRATIONS", "Fill", "Ledger", "MigrationsMissing", "MigrationsPending",
           "Row",
           "create_databases", "migrate", "migration_files"]
