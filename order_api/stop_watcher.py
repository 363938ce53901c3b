"""The trigger watcher: the thin asyncio adapter around ``order_api.stops`` that fires resting stops.

Every ``interval`` seconds it reads the ``pending_trigger`` orders of its users from every shard, the current
quotes of their symbols (any ``QuoteSource``: the execution worker reads Redis' ``quote:`` hashes and the market's
hours as the order API does, ``order_api.quotes.RedisQuotes``), and applies what ``stops.step`` decides:

- **Triggered**: one transaction under the user's account lock turns the order ``pending_trigger -> accepted``,
  records ``triggered_at`` (the database's clock) and ``trigger_price``, and writes its order update and its
  routing work to the outbox. The status test inside that transaction makes it exactly once: two watchers (two
  workers sharing partitions, or one retrying after a lost commit) cannot both trigger it, and a cancel that won
  the lock first leaves nothing to trigger. From there it is an ordinary order: the worker routes a stop as a
  market order (a buy at the price its cash was held at) and a stop-limit as a limit.
- **Trailed**: a trailing stop's new mark and stop are written with an order update, at most once per
  ``trail_every`` seconds per order (the watcher keeps the newest mark in memory between writes; the trigger
  writes the final one), so a rising market costs a bounded number of writes. A restarted worker resumes from the
  last mark written (at most ``trail_every`` seconds of the mark's moves are lost, never the order).

- **Expired**: a ``day`` stop still resting when the feed rolls the day over (``stops.session_ended``: its end of
  system hours) expires as a routed day order does at the market maker: ``Ledger.expire`` (``expire_order``,
  migration 017 lets it take a ``pending_trigger`` order), the hold released by a balanced ``release`` entry, the
  order update to the user, in one transaction under the account lock. A trigger or a cancel that got the lock
  first leaves nothing to expire; a worker that was down at the rollover expires them on its first sweep while
  the feed still says E.

It samples the quotes: a price that crosses a stop and comes back within one interval may be missed (documented
in the README). Failures of PostgreSQL or Redis are logged and the next sweep tries again; nothing is lost, as
the ledger is the only state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

import asyncpg

from order_api.db import Ledger, Row
from order_api.model import Rules, Status, transition
from order_api.quotes import QuoteSource
from order_api.stops import Resting, Trailed, Triggered, expires, session_ended, step
from vocab.redisconn import UNAVAILABLE

log = logging.getLogger("tickfan.stops")
# the reason a routed day order gets from the market maker at the rollover (venue/marketmaker/engine.py)
EXPIRED_REASON = "day order expired at the end of its session"
MAX_RESTING = 10_000  # pending stops read per shard per sweep (the oldest first); bounds a sweep's memory

_PENDING = ("SELECT order_id, user_id, symbol, side, type, tif, stop_price, trail_percent, trail_price, trail_mark, "
            "version FROM orders WHERE status = 'pending_trigger' ORDER BY created_at LIMIT $1")


async def pending(ledger: Ledger, *, limit: int = MAX_RESTING) -> list[Row]:
    """The resting stops on every shard, oldest first."""
    out: list[Row] = []
    for pool in ledger.pools:
        out.extend(await pool.fetch(_PENDING, limit))
    return out


async def trigger(ledger: Ledger, user: str, order_id: uuid.UUID, *, price: int, stop: int,
                  mark: int | None, version: int | None = None) -> Row | None:
    """Fire one stop: ``pending_trigger -> accepted`` with its trigger price and time, its update and routing work
    in the outbox, in one transaction. None when it is no longer resting (triggered by another, or cancelled), or
    when ``version`` is given and the order is no longer that version (a split rescaled its terms since they were
    read: the decision was made on prices of the other side of the split)."""
    async with ledger._transaction(user) as conn:
        await ledger._lock_account(conn, user)
        order = await conn.fetchrow("SELECT status, version FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
        if order is None or order["status"] != Status.PENDING_TRIGGER or version not in (None, order["version"]):
            return None
        transition(Status.PENDING_TRIGGER, Status.ACCEPTED)
        row: Row = await conn.fetchrow(
            "UPDATE orders SET status = 'accepted', triggered_at = now(), trigger_price = $2, stop_price = $3, "
            "trail_mark = coalesce($4, trail_mark), version = version + 1, updated_at = now() "
            "WHERE order_id = $1 RETURNING *", order_id, price, stop, mark)
        await ledger._announce(conn, row, execute="new")
        return row


async def trail(ledger: Ledger, user: str, order_id: uuid.UUID, *, stop: int, mark: int,
                version: int | None = None) -> Row | None:
    """Move a resting trailing stop's mark and stop (an order update shows it); None if it no longer rests (or is
    no longer ``version``, as :func:`trigger`)."""
    async with ledger._transaction(user) as conn:
        await ledger._lock_account(conn, user)
        row: Row | None = await conn.fetchrow(
            "UPDATE orders SET stop_price = $2, trail_mark = $3, version = version + 1, updated_at = now() "
            "WHERE order_id = $1 AND status = 'pending_trigger' AND ($4::int IS NULL OR version = $4) RETURNING *",
            order_id, stop, mark, version)
        if row is not None:
            await ledger._announce(conn, row)
        return row


class StopWatcher:
    """Sweeps the resting stops of the users ``mine`` accepts against ``quotes``, firing and trailing them."""

    def __init__(self, ledger: Ledger, quotes: QuoteSource, *, rules: Rules | None = None, interval: float = 0.1,
                 trail_every: float = 1.0, mine: Callable[[str], bool] = lambda _: True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger, self.quotes = ledger, quotes
        self.rules = rules or Rules()
        self.interval, self.trail_every = interval, trail_every
        self.mine, self.clock = mine, clock
        # a trailing stop's newest mark and stop not yet written (with the order's version it was computed from: a
        # split that rescaled the order since makes it a mark of the other side of the split, dropped), and when
        # each order's trail was last written
        self._marks: dict[uuid.UUID, tuple[Trailed, int]] = {}
        self._written: dict[uuid.UUID, float] = {}
        self.counters = {"sweeps": 0, "triggered": 0, "trailed": 0, "expired": 0, "lost_races": 0,
                         "errors": 0}
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sweep()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, *UNAVAILABLE) as e:
                self.counters["errors"] += 1
                log.warning("stop sweep failed: %s", e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    async def sweep(self) -> list[Triggered]:
        """One pass: every resting stop of ours against the current quotes. Returns the stops it fired."""
        self.counters["sweeps"] += 1
        rows = [r for r in await pending(self.ledger) if self.mine(r["user_id"])]
        resting: dict[uuid.UUID, tuple[Row, Resting]] = {}
        for r in rows:
            order = Resting.of(r)
            held, version = self._marks.get(r["order_id"]) or (None, 0)
            if held is not None and version != r["version"]:
                del self._marks[r["order_id"]]
            elif held is not None:  # a mark newer than the row's (not yet written)
                order = Resting(order.order_id, order.side, held.stop, order.trail_price, order.trail_percent,
                                held.mark)
            resting[r["order_id"]] = (r, order)
        for gone in (set(self._marks) | set(self._written)) - set(resting):
            self._marks.pop(gone, None)
            self._written.pop(gone, None)
        if not resting:
            return []
        quotes = await self.quotes.quotes({r["symbol"] for r, _ in resting.values()})
        ended = session_ended(quotes.values())
        fired: list[Triggered] = []
        for oid, (r, order) in resting.items():
            if expires(r["tif"], ended):
                self._marks.pop(oid, None)
                if await self.ledger.expire(r["user_id"], oid, EXPIRED_REASON) is None:
                    self.counters["lost_races"] += 1
                else:
                    self.counters["expired"] += 1
                    log.info("day stop %s expired at the end of its session", oid)
                continue
            decision = step(order, quotes.get(r["symbol"]), self.rules)
            if isinstance(decision, Triggered):
                row = await trigger(self.ledger, r["user_id"], oid, price=decision.price, stop=decision.stop,
                                    mark=decision.mark if order.trailing else None, version=r["version"])
                self._marks.pop(oid, None)
                if row is None:
                    self.counters["lost_races"] += 1
                    continue
                self.counters["triggered"] += 1
                fired.append(decision)
                log.info("stop %s triggered at %d (stop %d)", oid, decision.price, decision.stop)
            elif isinstance(decision, Trailed):
                self._marks[oid] = (decision, r["version"])
                await self._write_trail(r["user_id"], oid)
            elif oid in self._marks:  # a mark held back by the throttle is written once its second is up
                await self._write_trail(r["user_id"], oid)
        return fired

    async def _write_trail(self, user: str, oid: uuid.UUID) -> None:
        now = self.clock()
        if now - self._written.get(oid, -1e18) < self.trail_every:
            return
        self._written[oid] = now
        moved, version = self._marks.pop(oid)
        if await trail(self.ledger, user, oid, stop=moved.stop, mark=moved.mark, version=version) is not None:
            self.counters["trailed"] += 1


__all__ = ["StopWatcher", "pending", "trail", "trigger"]

