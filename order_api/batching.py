"""Placements in batches per shard (the ``place_orders`` function of migration 004).

Natural batching, no timer: an order waits only while its shard's previous calls are running, and then goes
with every other order that arrived meanwhile. At low load each batch holds one order and costs what a
single placement costs; under load a batch grows, and a placement's PostgreSQL cost per order (the round
trip, the plan, the commit and its WAL flush) falls with it. A batch that fails as a whole for a reason
other than the connection (it should not: every refusal is a result row) is placed again order by order,
so one order's problem is never another's.

A placement commits when its call ends (one statement, its own transaction). A connection lost after the call
was sent leaves its outcome unknown: the orders may stand. That is :class:`CommitOutcomeUnknown`, never "nothing
was written": the client must retry with the same idempotency key, which finds the order if it stands.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

MAX_BATCH = 256  # orders per call: bounds one transaction's lock set and a batch's wait for its slowest order
IN_FLIGHT = 2  # calls running at once per shard: one executing while the next one's results travel


class CommitOutcomeUnknown(ConnectionError):
    """The connection was lost after a transaction's commit was sent and before its answer: it may or may not
    have committed. A ConnectionError, so every retry loop written for a lost connection retries it; an HTTP
    client is told to retry with the same idempotency key (``503 outcome_unknown``)."""


def connection_lost(e: BaseException) -> bool:
    """Did ``e`` end the connection (rather than refuse a statement, which rolls its transaction back)? A server
    that terminates a backend (57P01..03) may do so after the commit: that outcome is unknown too."""
    if isinstance(e, asyncpg.exceptions.QueryCanceledError):
        return False  # a cancelled statement (statement_timeout) is rolled back and the connection lives
    return isinstance(e, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                          asyncpg.exceptions.OperatorInterventionError, asyncpg.InternalClientError))


@dataclass(frozen=True, slots=True)
class Placement:
    """One order's arguments for place_orders (entries: exactly two hold entries)."""

    order_id: uuid.UUID
    user: str
    key: str
    fingerprint: str
    symbol: str
    side: str
    type: str
    tif: str
    qty: int
    limit_price: int | None
    reserve: int
    held: int
    accounts: tuple[str, str]
    assets: tuple[str, str]
    amounts: tuple[int, int]
    update: bytes
    work: bytes
    notional: int | None = None  # dollars to spend (migration 010), None for an order by quantity
    # a stop's terms (migration 013), None for other orders: its stop now, a trailing stop's trail (percent as
    # a Decimal, or money) and its mark at placement
    stop_price: int | None = None
    trail_percent: Decimal | None = None
    trail_price: int | None = None
    trail_mark: int | None = None


@dataclass(frozen=True, slots=True)
class Placed:
    """The answer for one order: the order row (new or the idempotent first one), or a refusal code and the
    amount available (cash or shares)."""

    order: Any  # asyncpg Record of the orders table, None when refused
    code: str | None
    have: int


BATCH = ("SELECT idx, code, have, placed FROM place_orders($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
         "$14, $15, $16, $17, $18, $19, $20, $21, $22)")


class ShardBatcher:
    """Collects the placements for one shard and places them in batches on its pool."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = MAX_BATCH, in_flight: int = IN_FLIGHT) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.in_flight = in_flight
        self._queue: list[tuple[Placement, asyncio.Future[Placed]]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.orders = 0

    async def place(self, p: Placement) -> Placed:
        fut: asyncio.Future[Placed] = asyncio.get_running_loop().create_future()
        self._queue.append((p, fut))
        if self._running < self.in_flight:
            self._running += 1
            # let every request already in this turn of the loop join the batch
            asyncio.get_running_loop().call_soon(self._start)
        return await fut

    def _start(self) -> None:
        task = asyncio.ensure_future(self._run())
        self._tasks.add(task)  # held: the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
                await self._place(batch)
        finally:
            self._running -= 1

    async def _place(self, batch: list[tuple[Placement, asyncio.Future[Placed]]]) -> None:
        self.batches += 1
        self.orders += len(batch)
        placements = [p for p, _ in batch]
        results: list[Placed | BaseException]
        try:
            try:
                results = await self._batch(placements)
            except asyncpg.PostgresError:
                if len(placements) == 1:
                    raise
                results = [await self._alone(p) for p in placements]
        except BaseException as e:  # the connection, or cancellation: every waiter learns of it
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if fut.done():
                continue  # its request was cancelled; the order stands (a retry finds it by its key)
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    async def _alone(self, p: Placement) -> Placed | BaseException:
        """One order of a batch that failed as a whole, placed in a batch of its own."""
        try:
            return (await self._batch([p]))[0]
        except asyncpg.PostgresError as e:
            error: BaseException = e
            return error

    async def _batch(self, ps: Sequence[Placement]) -> list[Placed | BaseException]:
        async with self.pool.acquire() as conn:  # a failure to connect: nothing was sent
            try:
                rows = await self._call(conn, ps)
            except Exception as e:
                if connection_lost(e):
                    raise CommitOutcomeUnknown(f"the connection was lost during a placement: {e}") from e
                raise
        out: list[Placed | BaseException] = [RuntimeError("place_orders returned no row for this order")] * len(ps)
        for r in rows:
            code = r["code"]
            out[r["idx"] - 1] = Placed(None, code, int(r["have"] or 0)) if code else Placed(r["placed"], None, 0)
        return out

    @staticmethod
    async def _call(conn: asyncpg.Connection, ps: Sequence[Placement]) -> list[Any]:
        rows: list[Any] = await conn.fetch(
            BATCH, [p.order_id for p in ps], [p.user for p in ps], [p.key for p in ps],
            [p.fingerprint for p in ps], [p.symbol for p in ps], [p.side for p in ps], [p.type for p in ps],
            [p.tif for p in ps], [p.qty for p in ps], [p.limit_price for p in ps], [p.reserve for p in ps],
            [p.held for p in ps], [a for p in ps for a in p.accounts], [a for p in ps for a in p.assets],
            [a for p in ps for a in p.amounts], [p.update for p in ps], [p.work for p in ps],
            [p.notional for p in ps], [p.stop_price for p in ps], [p.trail_percent for p in ps],
            [p.trail_price for p in ps], [p.trail_mark for p in ps])
        return rows
