"""The execution worker against a faulty counterparty, over real TCP with real PostgreSQL and a private Redis.

Why: after a market-maker restart a status request answered "unknown order", the worker re-sent the same
ClOrdID, and the market maker filled it twice while the ledger recorded one fill. And a fill the ledger must
refuse (a counterparty's fault) has to reach the dead letters with the rule's code, not the books.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import cast

import orjson
import pytest
import redis.asyncio as aioredis

from order_api.execution import DEAD_LETTER, UNKNOWN_AT_COUNTERPARTY, ExecutionWorker
from order_api.fix import ExecType, ExecutionReport, OrdStatus
from tests.conftest import PrivateRedis, eventually
from venue.marketmaker import Faults, MarketMaker
from vocab.quantities import QTY_SCALE as S

from .conftest import QUOTES, ScopedLedger
from .test_execution import market_buy, mm_quotes
from .test_ledger import DOLLAR, buy

pytestmark = [pytest.mark.anyio, pytest.mark.ledger(max_size=20)]


async def dead_letters(client: aioredis.Redis) -> list[dict[str, str]]:
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(DEAD_LETTER))
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in rows]


@contextlib.asynccontextmanager
async def running(worker: ExecutionWorker) -> AsyncIterator[ExecutionWorker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def close_open_orders(ledger: ScopedLedger) -> None:
    # A worker reconciles every open order it owns: close other tests' leftovers first, as an operator would.
    for order in await ledger.open_orders(limit=100_000):
        await ledger.cancelled(order["user_id"], order["order_id"], "closed before a counterparty test")


async def test_unknown_order_after_a_market_maker_restart_is_dead_lettered_not_filled_twice(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    await close_open_orders(ledger)
    u = ledger.user("restart")
    await ledger.deposit(u, 100_000 * DOLLAR)
    # The first market maker fills at once but holds every report back for a long time, so it can be stopped
    # with the fill done on its side and not yet in the ledger: a crash between a trade and its report.
    first = MarketMaker(mm_quotes(), port=0, faults=Faults(latency_ms=60_000), seed=3, fill_interval=0.002)
    await first.start()
    port = first.port
    client = aioredis.from_url(private_redis.url)
    worker = ExecutionWorker(ledger, client, fix_port=port, name="restart", claim_idle_ms=500, reconcile_every=0.3,
                             reconcile_age=0.5, unknown_grace=1.0)
    second: MarketMaker | None = None
    try:
        async with running(worker):
            sent, _ = await ledger.place(u, market_buy(3), QUOTES["AAPL"])
            await eventually(lambda: first.engine.counters["filled_qty"] == 3 * S,
                             what="filled at the first market maker")
            await first.stop()  # its state (the order, the fill, the queued reports) is gone with it
            order = await ledger.get_order(u, sent["order_id"])
            assert order is not None and order["sent_at"] is not None and order["filled_qty"] == 0

            # An order whose NewOrderSingle never reached the wire (the FIX client refused it before writing):
            # "unknown order" for it is a licence to send it, once.
            never, _ = await ledger.place(u, market_buy(2), QUOTES["AAPL"])
            await ledger.pool_for(u).execute(
                "UPDATE orders SET status = 'routed', sent_at = NULL WHERE order_id = $1", never["order_id"])

            second = MarketMaker(mm_quotes(), port=port, seed=4, fill_interval=0.002)  # same port, no memory
            await second.start()

            async def gave_up() -> bool:
                return any(d["reason"] == UNKNOWN_AT_COUNTERPARTY and str(sent["order_id"]) in d["body"]
                           for d in await dead_letters(client))
            await eventually(gave_up, timeout=30, what="the sent order dead-lettered as unknown_at_counterparty",
                             state=lambda: (worker.counters, second.engine.counters if second else None))

            async def never_filled() -> bool:
                o = await ledger.get_order(u, never["order_id"])
                return o is not None and o["status"] == "filled"
            await eventually(never_filled, what="the never-sent order sent and filled")
            await asyncio.sleep(1.0)  # a few more reconciliations: still no re-send
        assert second is not None
        # The market makers' side: one fill of the sent order (by the first), none by the second, which only ever
        # received the never-sent order. Before: the second filled the sent order again (two fills, one in the books).
        assert first.engine.counters["orders"] == 1 and first.engine.counters["filled_qty"] == 3 * S
        assert second.engine.counters["orders"] == 1 and second.engine.counters["filled_qty"] == 2 * S
        assert str(sent["order_id"]) not in second.engine.orders
        # The ledger's side: the sent order is still open and held, for a person to settle; nothing was lost.
        order = await ledger.get_order(u, sent["order_id"])
        assert order is not None and order["status"] == "routed" and order["filled_qty"] == 0 and order["held"] > 0
        assert [d for d in await dead_letters(client) if d["reason"] == UNKNOWN_AT_COUNTERPARTY][0]["detail"]
        assert worker.counters["unknown_dead_lettered"] == 1
        assert await ledger.check() == []
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
        await client.aclose()


async def test_a_fill_beyond_the_limit_is_dead_lettered_with_its_reason(
        ledger: ScopedLedger, private_redis: PrivateRedis) -> None:
    u = ledger.user("faulty")
    await ledger.deposit(u, 10_000 * DOLLAR)
    o, _ = await ledger.place(u, buy(5, limit=1_900_000), QUOTES["AAPL"])
    client = aioredis.from_url(private_redis.url)
    worker = ExecutionWorker(ledger, client, name="faulty", relay=False)
    try:
        for exec_id, symbol, side, px, code in [("F1", "AAPL", "buy", 1_900_001, "fill_beyond_limit"),
                                                ("F2", "MSFT", "buy", 1_800_000, "fill_wrong_instrument"),
                                                ("F3", "AAPL", "sell", 1_800_000, "fill_wrong_instrument")]:
            await worker.on_report(ExecutionReport(
                cl_ord_id=str(o["order_id"]), orig_cl_ord_id=None, order_id="X", exec_id=exec_id,
                exec_type=ExecType.TRADE, ord_status=OrdStatus.PARTIALLY_FILLED, symbol=symbol, side=side,  # type: ignore[arg-type]
                last_qty=1, last_px=px, leaves_qty=4, cum_qty=1, avg_px=px))
            last = (await dead_letters(client))[-1]
            assert last["reason"] == code and exec_id in orjson.loads(last["body"])["report"]["exec_id"]
        order = await ledger.get_order(u, o["order_id"])
        assert order is not None and order["filled_qty"] == 0 and worker.counters["fills_refused"] == 3
        assert await ledger.check() == []
    finally:
        await client.aclose()

