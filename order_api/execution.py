"""Execution workers (`tickfan execute`): orders from the outbox streams to a market maker over FIX 4.4, and
its execution reports back into the ledger.

Guarantees, and how:
- **Never lost.** Work is acknowledged on the stream only after it is done; a worker that dies leaves its
  entries pending and another claims them (XAUTOCLAIM). Redis keeps nothing on disk, so a sweep also re-queues
  any order still ``accepted`` after a few seconds, from the ledger, which is the source of truth.
- **Never filled twice.** Fills are applied by ExecID in one transaction (see ``Ledger.fill``). An order is
  always sent under ClOrdID = its order id with the same terms, so a re-send after a crash or a reconnect is
  the same order to the market maker, never a second one.
- **Reconciled.** Open orders not heard of for a while get an OrderStatusRequest; the market maker answers by
  re-sending their executions (PossResend, original ExecIDs), which the ledger applies at most once.
- **"Unknown order" is not a licence to re-send.** A market maker that restarted may have filled an order and
  forgotten it. Each send is recorded just before the write (``orders.sent_at``) with the market maker's
  incarnation (``sent_to``, from its Logon, tag 9100). "Unknown order" from the same incarnation means the order
  never arrived (a dropped connection; it forgets no open order), so it is sent again; so is an order never put
  on the wire. From another incarnation (a restart) it is never re-sent: the worker keeps asking, waits
  ``unknown_grace`` seconds for the counterparty's own answer (late execution reports, a status that knows the
  order), then dead-letters it as ``unknown_at_counterparty``, open and held, for a person to settle.
- **Counterparty faults stay out of the books.** A fill beyond the order's limit, on the wrong symbol or side,
  beyond its quantity, or under a reused ExecID with other terms is refused by the ledger and dead-lettered
  with the rule's code (``fill_beyond_limit``, ...; see ``order_api.model.fill_refusal``).
- **A Redis Cluster.** XREADGROUP over several streams needs them on one hash slot, and the partitions are
  spread over the masters on purpose, so the streams are read in groups of one slot (``read_groups``): one
  consumer task per group, each blocking on its own master; a single server keeps one group and one call. A
  master's death stalls only its partitions until its replica is promoted; work the dead master had
  acknowledged but not replicated is published again by the sweep above (PostgreSQL says the order is still
  ``accepted``), and a stream or group that vanished with it is created again.
- **Bounded failure.** A circuit breaker stops taking work while the market maker is down, reconnects back
  off exponentially, and work that keeps failing (or reports the ledger refuses) goes to the dead-letter
  stream ``tickfan:exec:dead`` for manual action.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import asyncpg
import orjson
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from order_api import replacing
from order_api.db import Ledger, Row
from order_api.dead_letters import log_fields, report_fields
from order_api.fix import CancelReject, CancelRequest, ExecutionReport, NewOrder, ReplaceRequest, StatusRequest
from order_api.fix.client import FixClient, FixNotSent, FixUnavailable
from order_api.model import OPEN, FillRefused, Rules, Status
from order_api.order_stats import AckClock
from order_api.outbox import STREAM, STREAM_PARTITIONS, OutboxRelay, stream_of
from order_api.quotes import QuoteSource
from order_api.resilience import Backoff, CircuitBreaker
from order_api.stop_watcher import StopWatcher
from order_api.supervise import supervised
from vocab.keys import EXEC_DEAD
from vocab.redisconn import UNAVAILABLE, AnyRedis

log = logging.getLogger("tickfan.execute")
GROUP = "exec"
DEAD_LETTER = EXEC_DEAD
UNKNOWN_ORDER = "unknown order"
MISMATCHES_BEFORE_DEAD_LETTER = 3  # status answers in a row that disagree with the ledger
DRAIN_TIMEOUT = 20.0  # seconds a stopped worker may spend finishing its work in hand (Kubernetes allows 30)
UNKNOWN_GRACE = 10.0  # seconds a sent order may stay "unknown" at the market maker before it is dead-lettered
UNKNOWN_AT_COUNTERPARTY = "unknown_at_counterparty"


def read_groups(client: AnyRedis, streams: Sequence[str]) -> list[list[str]]:
    """The streams one XREADGROUP may read together: all of them on a single server; on a cluster, those of one
    hash slot (a command's keys must share a slot; the partitions are spread over the masters on purpose)."""
    if not isinstance(client, RedisCluster):
        return [list(streams)]
    by_slot: dict[int, list[str]] = {}
    for stream in streams:
        by_slot.setdefault(key_slot(stream.encode()), []).append(stream)
    return list(by_slot.values())


class Retry(Exception):
    """Work that could not be done now (market maker unreachable): left pending, retried with backoff."""


def order_of(cl_ord_id: str) -> uuid.UUID:
    """Our ClOrdIDs are the order id, or ``{order id}:c{n}`` for a cancel request."""
    return uuid.UUID(cl_ord_id.partition(":")[0])


def new_order_for(order: Row) -> NewOrder:
    """The FIX order for a ledger order. Buys always carry a limit: market buys are sent at the price their
    cash was held at (the collar), so no fill can cost more than was reserved. An extended-hours order says so
    (the trading-session group, FIX 336: order_api/FIX.md), so the venue takes it outside regular hours."""
    buy = order["side"] == "buy"
    limit = int(order["reserve_price"]) if buy else (int(order["limit_price"]) if order["limit_price"] else None)
    return NewOrder(cl_ord_id=str(order["order_id"]), symbol=order["symbol"], side=order["side"], qty=int(order["qty"]),
                    ord_type="limit" if limit is not None else "market", limit_price=limit, tif=order["tif"],
                    extended_hours=bool(order.get("extended_hours")))


class ExecutionWorker:
    def __init__(self, ledger: Ledger, client: AnyRedis, *, fix_host: str = "127.0.0.1", fix_port: int = 9878,
                 name: str | None = None, partitions: Sequence[int] | None = None,
                 stream_partitions: int = STREAM_PARTITIONS, claim_idle_ms: int = 3_000,
                 reconcile_every: float = 2.0, reconcile_age: float = 5.0, max_attempts: int = 20,
                 unknown_grace: float = UNKNOWN_GRACE, relay: bool = True, fix_tls: ssl.SSLContext | None = None,
                 comp_id: str | None = None, drain_timeout: float = DRAIN_TIMEOUT,
                 quotes: QuoteSource | None = None, rules: Rules | None = None) -> None:
        """``drain_timeout``: after ``stop``, how long the work in hand and the reports being applied may take to
        finish before the rest is cancelled (what is left unacknowledged is claimed by another worker).
        ``fix_tls``: the FIX link over (mutual) TLS with this client context; ``comp_id``: our SenderCompID
        (default ``TF-{name}``; under mutual TLS the market maker wants the CN of our certificate). ``quotes``:
        where the trigger watcher of this worker's users' stops reads prices (order_api/stop_watcher.py; None: no
        watcher), gated by ``rules``."""
        self.ledger, self.redis = ledger, client
        self.fix_tls = fix_tls
        self.name = name or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        self.comp_id = comp_id or f"TF-{self.name}"[:32]
        self.partitions = list(partitions if partitions is not None else range(stream_partitions))
        self.streams = [STREAM.format(p) for p in self.partitions]
        self.stream_partitions = stream_partitions
        self.fix_host, self.fix_port = fix_host, fix_port
        self.claim_idle_ms = claim_idle_ms
        self.reconcile_every, self.reconcile_age = reconcile_every, reconcile_age
        self.max_attempts = max_attempts
        self.unknown_grace = unknown_grace
        self.breaker = CircuitBreaker(failure_threshold=3, reset_timeout=2.0)
        self.backoff = Backoff(base=0.05, cap=2.0)
        self.fix: FixClient | None = None
        self.relay = OutboxRelay(ledger, client) if relay else None
        self.stops = StopWatcher(ledger, quotes, rules=rules, mine=self._mine) if quotes is not None else None
        self._stop = asyncio.Event()
        self.drain_timeout = drain_timeout
        self._applying = 0  # execution reports being applied to the ledger now
        self._connected = asyncio.Event()
        self._attempts: dict[tuple[bytes | str, bytes], int] = {}  # (stream, entry id) -> failed attempts
        self._mismatches: dict[uuid.UUID, int] = {}  # order -> status answers in a row that disagreed
        self._users: dict[uuid.UUID, str] = {}
        # sent orders the market maker says it does not know: since when (monotonic); and those given up on
        # (dead-lettered; not asked about again by this worker unless a report for them arrives)
        self._unknown_since: dict[uuid.UUID, float] = {}
        self._given_up: set[uuid.UUID] = set()
        self.counters = {"sent": 0, "cancels_sent": 0, "reports": 0, "fills": 0, "duplicate_fills": 0,
                         "fills_refused": 0, "status_requests": 0, "resent": 0, "requeued": 0, "dead_lettered": 0,
                         "retries": 0, "unknown_answers": 0, "unknown_dead_lettered": 0, "claimed": 0,
                         "replaces_sent": 0, "replaced": 0, "replaces_refused": 0, "loop_restarts": 0}
        self.acks = AckClock()  # NewOrderSingle written -> first report for it (tickfan_execution_ack_seconds)

    def stop(self) -> None:
        """Drain: read no new work, finish (and acknowledge) the entry in hand and the reports being applied, then
        end ``run`` (a SIGTERM in a rolling deploy)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def connected(self) -> bool:
        """A FIX session with the market maker is up."""
        return self._connected.is_set()

    # ---------------------------------------------------------------- running

    async def run(self) -> None:
        await self._ensure_groups()
        def keep(name: str, loop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
            return asyncio.create_task(supervised(name, loop, self._stop.is_set, log, self.counters), name=name)
        consumers = [keep(f"consume {','.join(group)}", functools.partial(self._consume, group))
                     for group in read_groups(self.redis, self.streams)]
        tasks = [keep("fix", self._keep_connected), *consumers, keep("reconcile", self._reconcile_loop)]
        if self.relay is not None:
            tasks.append(keep("relay", self.relay.run))
        if self.stops is not None:
            tasks.append(keep("stops", self.stops.run))
        try:
            await self._stop.wait()
            await self._drain(consumers)
        finally:
            if self.relay is not None:
                self.relay.stop()
            if self.stops is not None:
                self.stops.stop()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if self.fix is not None:
                with contextlib.suppress(Exception):
                    await self.fix.close()

    async def _drain(self, consumers: Sequence[asyncio.Task[None]]) -> None:
        """Let the entries in hand be finished and acknowledged (the consumers read nothing more once stopped),
        then the reports being applied, within ``drain_timeout`` in all."""
        deadline = time.monotonic() + self.drain_timeout
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*consumers)), self.drain_timeout)
        while self._applying and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _ensure_groups(self, streams: Sequence[str] | None = None) -> None:
        for stream in self.streams if streams is None else streams:
            try:
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.exceptions.ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise

    async def _keep_connected(self) -> None:
        """Hold one FIX session to the market maker, reconnecting with exponential backoff."""
        attempt = 0
        while not self._stop.is_set():
            if self.fix is None or not self.fix.connected:
                self._connected.clear()
                client = FixClient(self.fix_host, self.fix_port, sender_comp_id=self.comp_id,
                                   target_comp_id="MM1", on_report=self.on_report,
                                   on_disconnect=self._on_disconnect, heartbeat_interval=2, tls=self.fix_tls,
                                   on_cancel_reject=self.on_cancel_reject)
                try:
                    await client.connect()
                except (FixUnavailable, OSError) as e:
                    self.breaker.record_failure(time.monotonic())
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    log.warning("market maker %s:%d unavailable (%s); retrying in %.2f s",
                                self.fix_host, self.fix_port, e, delay)
                    await self._sleep(delay)
                    continue
                attempt = 0
                self.fix = client
                self.breaker.record_success()
                self._connected.set()
                log.info("FIX session up with %s:%d", self.fix_host, self.fix_port)
                # What happened while we were away: ask about every open order now, not at the next sweep.
                # A failure here (the ledger unreachable) must not end this task: it would never reconnect.
                try:
                    await self._reconcile(older_than=0.0)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, FixUnavailable, *UNAVAILABLE) as e:
                    log.warning("reconcile after logon failed: %s; the periodic sweep will retry", e)
            await self._sleep(0.05)

    def _on_disconnect(self, *_: Any) -> None:
        self._connected.clear()
        self.breaker.record_failure(time.monotonic())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # ---------------------------------------------------------------- the streams

    async def _consume(self, streams: list[str]) -> None:
        """Work from ``streams`` (one read group, see ``read_groups``), until stopped."""
        pending_first = True
        last_claim = 0.0
        while not self._stop.is_set():
            if not self.breaker.allow(time.monotonic()) or not self._connected.is_set():
                await self._sleep(0.05)
                continue
            try:
                now = time.monotonic()
                if now - last_claim >= self.claim_idle_ms / 1000:
                    last_claim = now
                    if await self._claim_abandoned(streams):
                        pending_first = True
                # Our own unacknowledged entries first (after a failure), then new ones.
                start = "0" if pending_first else ">"
                # RESP2 (redis-py's default): [[stream, [(id, fields), ...]], ...]
                batches = cast(list[Any], await self.redis.xreadgroup(
                    GROUP, self.name, dict.fromkeys(streams, start), count=100,
                    block=None if pending_first else 200))
                got = sum(len(entries) for _, entries in batches or [])
                pending_first = False
                for stream, entries in batches or []:
                    for entry_id, fields in entries:
                        if self._stop.is_set():
                            break  # draining: what is not begun stays pending, for another worker to claim
                        if fields is None:  # trimmed from the stream while pending: nothing left to do
                            await self.redis.xack(stream, GROUP, entry_id)
                            continue
                        if not await self._handle(stream, entry_id, fields):
                            pending_first = True
                if pending_first and got:
                    await self._sleep(self.backoff.delay(min(self.counters["retries"], 6)))
            except UNAVAILABLE as e:
                log.warning("execution streams %s unavailable: %s", ", ".join(streams), e)
                await self._sleep(1.0)
                await self._recover_groups(streams)
                pending_first = True
            except redis.exceptions.ResponseError as e:
                # NOGROUP, or UNBLOCKED: the stream or its group is gone (a Redis restarted empty, a master died
                # before its replica had them): make them again; what they held is re-queued from the ledger by
                # the sweep. Any other refusal (an ACL without the rights) is logged and tried again: this task
                # must not end while the worker runs.
                log.warning("execution streams %s: %s; creating their group again", ", ".join(streams), e)
                await self._sleep(0.2 if "NOGROUP" in str(e) or "UNBLOCKED" in str(e) else 1.0)
                await self._recover_groups(streams)
                pending_first = True

    async def _recover_groups(self, streams: Sequence[str]) -> None:
        with contextlib.suppress(*UNAVAILABLE, redis.exceptions.ResponseError):
            await self._ensure_groups(streams)

    async def _claim_abandoned(self, streams: Sequence[str]) -> int:
        """Take over entries a dead worker had read but never acknowledged; returns how many."""
        claimed = 0
        for stream in streams:
            start = "0-0"
            while True:
                res = await self.redis.xautoclaim(stream, GROUP, self.name, self.claim_idle_ms, start, count=100)
                start, entries = res[0], res[1]
                claimed += len(entries)
                self.counters["claimed"] += len(entries)
                if start in (b"0-0", "0-0"):
                    break
        return claimed

    async def _handle(self, stream: bytes | str, entry_id: bytes, fields: Mapping[bytes, bytes]) -> bool:
        """Do one piece of work; True when it is finished (acknowledged), False to retry it later."""
        try:
            action = fields[b"action"].decode()
            oid = uuid.UUID(fields[b"order_id"].decode())
            user = fields[b"user_id"].decode()
            self._users[oid] = user
            if action == "new":
                await self._send_new(user, oid)
            elif action == "cancel":
                await self._send_cancel(user, oid)
            elif action == "replace":
                await self._send_replace(user, oid)
            else:
                raise ValueError(f"unknown action {action!r}")
        except (Retry, FixUnavailable, OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as e:
            self.counters["retries"] += 1
            key = (stream, entry_id)
            attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
            if attempts < self.max_attempts:
                log.info("work %s retried later (%s)", entry_id, e)
                return False
            await self._dead_letter("retries_exhausted", str(e), stream=stream, entry=fields)
        except (KeyError, ValueError) as e:
            await self._dead_letter("bad_work", str(e), stream=stream, entry=fields)
        await self.redis.xack(stream, GROUP, entry_id)
        self._attempts.pop((stream, entry_id), None)
        return True

    async def _send_new(self, user: str, oid: uuid.UUID) -> None:
        fix = self._fix()
        order, first = await self.ledger.mark_sending(user, oid, to=fix.peer_incarnation)
        if order is None:
            return  # cancelled before it was routed, or already closed
        if not first:
            # Sent before (this is a retried or re-queued entry): never again blindly. Ask; the answer decides.
            await fix.request_status(StatusRequest(cl_ord_id=str(oid), symbol=order["symbol"], side=order["side"]))
            self.counters["status_requests"] += 1
            return
        self.acks.sent(str(oid))
        await self._write_new(fix, user, order)
        self.counters["sent"] += 1

    async def _write_new(self, fix: FixClient, user: str, order: Row) -> None:
        """Put the NewOrderSingle of an order just marked as sending on the wire; if the client refuses it before
        writing a byte, take the mark back (it may be sent later as a first send)."""
        try:
            await fix.send_new_order(new_order_for(order))
        except FixNotSent:
            await self.ledger.unmark_sent(user, order["order_id"])
            raise

    async def _send_cancel(self, user: str, oid: uuid.UUID) -> None:
        fix = self._fix()
        order = await self.ledger.get_order(user, oid)
        if order is None or Status(order["status"]) not in OPEN or not order["cancel_requested"]:
            return
        await fix.send_cancel(CancelRequest(cl_ord_id=f"{oid}:c{order['version']}", orig_cl_ord_id=str(oid),
                                            symbol=order["symbol"], side=order["side"], qty=int(order["qty"])))
        self.counters["cancels_sent"] += 1

    async def _send_replace(self, user: str, oid: uuid.UUID) -> None:
        """The OrderCancelReplaceRequest of a pending replace (order_api/replacing.py); sent again by the sweep
        until answered (the market maker answers a repeat with its first answer)."""
        fix = self._fix()
        order = await self.ledger.get_order(user, oid)
        if order is None or Status(order["status"]) not in OPEN or not replacing.pending(order):
            return
        await fix.send_replace(ReplaceRequest(
            cl_ord_id=str(order["replaced_by"]), orig_cl_ord_id=str(oid), symbol=order["symbol"], side=order["side"],
            qty=int(order["pending_qty"]), limit_price=int(order["pending_limit"]), tif=order["pending_tif"]))
        self.counters["replaces_sent"] += 1

    async def on_cancel_reject(self, reject: CancelReject) -> None:
        """A refused replace leaves the order as it was (its extra hold released); a refused cancel changes
        nothing here (the order's own reports say what happened to it)."""
        if not reject.replace:
            log.info("cancel %s of %s refused: %s", reject.cl_ord_id, reject.orig_cl_ord_id, reject.text)
            return
        try:
            old, new = uuid.UUID(reject.orig_cl_ord_id), uuid.UUID(reject.cl_ord_id)
        except ValueError:
            return
        order = await self.ledger.find_order(old)
        if order is not None:
            await replacing.refuse(self.ledger, order["user_id"], old, new)
            self.counters["replaces_refused"] += 1

    def _fix(self) -> FixClient:
        if self.fix is None or not self.fix.connected:
            raise Retry("no FIX session")
        return self.fix

    async def _dead_letter(self, reason: str, detail: str, **what: Any) -> None:
        self.counters["dead_lettered"] += 1
        log.error("dead-lettered (%s): %s %s", reason, detail, what, extra={"reason": reason, **log_fields(what)})
        body = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in what.items() if k != "entry"}
        if "entry" in what:
            body.update({k.decode(): v.decode() for k, v in what["entry"].items()})
        await self.redis.xadd(DEAD_LETTER, {"reason": reason, "detail": detail, "worker": self.name,
                                            "body": orjson.dumps(body, default=str)}, maxlen=100_000)

    # ---------------------------------------------------------------- execution reports

    async def on_report(self, report: ExecutionReport) -> None:
        """Apply one execution report to the ledger (idempotent); anything the ledger refuses is dead-lettered."""
        self.counters["reports"] += 1
        self._applying += 1
        self.acks.answered(report.cl_ord_id)
        try:
            await self._apply(report)
        except FillRefused as e:
            # a counterparty fault (beyond the limit, wrong symbol or side, overfill, ExecID reused): the reason
            # is the rule's code, for whoever takes it up with the market maker
            self.counters["fills_refused"] += 1
            await self._dead_letter(e.code, e.detail, report=report_fields(report))
        except (LookupError, ValueError) as e:
            await self._dead_letter("report_refused", str(e), report=report_fields(report))
        finally:
            self._applying -= 1

    async def _apply(self, r: ExecutionReport) -> None:
        # a cancel's and a replace's reports name the order they act on as OrigClOrdID
        target = r.orig_cl_ord_id if r.exec_type in ("4", "5") and r.orig_cl_ord_id else r.cl_ord_id
        oid = order_of(target)
        if not _unknown_answer(r):
            # the counterparty's own word on the order: whatever "unknown" said before no longer stands
            self._unknown_since.pop(oid, None)
            self._given_up.discard(oid)
        user = self._users.get(oid)
        if user is None:
            order = await self.ledger.find_order(oid)
            if order is None:
                raise LookupError(f"execution report for unknown order {oid}")
            user = self._users[oid] = order["user_id"]
        if r.exec_type == "F":
            fill = await self.ledger.fill(user, oid, r.exec_id, int(r.last_qty), int(r.last_px), symbol=r.symbol,
                                          side=r.side)
            self.counters["fills" if fill is not None else "duplicate_fills"] += 1
        elif r.exec_type == "5":
            if await replacing.confirm(self.ledger, user, oid, uuid.UUID(r.cl_ord_id), int(r.leaves_qty)):
                self.counters["replaced"] += 1
        elif r.exec_type == "4":
            await self.ledger.cancelled(user, oid, r.text or "cancelled by the market maker")
        elif r.exec_type == "C":
            await self.ledger.expire(user, oid, r.text or "expired at the end of its session")
        elif r.exec_type == "8":
            if r.order_id == "NONE":
                # A refused duplicate ClOrdID with different terms: about that message, not the live order.
                raise ValueError(f"market maker refused a re-send of {oid}: {r.text}")
            await self.ledger.reject(user, oid, r.text or "rejected by the market maker")
        elif r.exec_type == "I":
            await self._reconciled(user, oid, r)

    async def _reconciled(self, user: str, oid: uuid.UUID, r: ExecutionReport) -> None:
        order = await self.ledger.get_order(user, oid)
        if order is None or Status(order["status"]) not in OPEN:
            return
        if _unknown_answer(r):
            self.counters["unknown_answers"] += 1
            # It may be sent now if it never was (the client refused it before writing a byte), or if it was
            # sent to this very incarnation of the market maker, which forgets no open order: it never arrived
            # (a connection dropped under it). With the session gone again meanwhile, the next reconnect asks
            # once more.
            fix = self.fix
            if fix is None or not fix.connected:
                return
            incarnation = fix.peer_incarnation
            if order["sent_at"] is None or (incarnation is not None and order["sent_to"] == incarnation):
                routed, go = await self.ledger.mark_sending(user, oid, to=incarnation, again_if_to=incarnation)
                if routed is not None and go:
                    await self._write_new(fix, user, routed)
                    self.counters["resent"] += 1
                return
            await self._unknown_after_sending(user, oid, order)
            return
        elif r.ord_status == "4":
            await self.ledger.cancelled(user, oid, r.text or "cancelled by the market maker")
        elif r.ord_status == "C":
            await self.ledger.expire(user, oid, r.text or "expired at the end of its session")
        elif r.ord_status == "8":
            await self.ledger.reject(user, oid, r.text or "rejected by the market maker")
        elif r.ord_status == "2" and int(r.cum_qty) != int(order["filled_qty"]):
            # The answer re-sends every trade before it, but trades of a session that has just dropped may
            # still be on their way into the ledger: only a mismatch that outlives a few reconciliations (or
            # a ledger ahead of the market maker) needs a person.
            seen = self._mismatches[oid] = self._mismatches.get(oid, 0) + 1
            if int(r.cum_qty) < int(order["filled_qty"]) or seen >= MISMATCHES_BEFORE_DEAD_LETTER:
                self._mismatches.pop(oid, None)
                raise ValueError(f"market maker says {oid} is filled ({r.cum_qty}) but the ledger has "
                                 f"{order['filled_qty']}")
            log.info("status of %s: filled %s at the market maker, %s in the ledger; asked again at the next "
                     "reconciliation", oid, r.cum_qty, order["filled_qty"],
                     extra={"order_id": str(oid), "user_id": user, "symbol": r.symbol})
            return
        self._mismatches.pop(oid, None)

    async def _unknown_after_sending(self, user: str, oid: uuid.UUID, order: Row) -> None:
        """The market maker does not know an order we sent. Re-sending it could fill it twice (it may have been
        filled before a restart, the report lost), so: keep asking at each reconciliation, and once it has stayed
        unknown for ``unknown_grace`` seconds with no report about it, dead-letter it, once, open and held."""
        now = time.monotonic()
        since = self._unknown_since.setdefault(oid, now)
        if now - since < self.unknown_grace or oid in self._given_up:
            return
        self._given_up.add(oid)
        self.counters["unknown_dead_lettered"] += 1
        await self._dead_letter(
            UNKNOWN_AT_COUNTERPARTY,
            f"order {oid} was sent at {order['sent_at']} but the market maker has answered 'unknown order' for "
            f"{now - since:.1f} s; not re-sent (it may have been filled and forgotten by a restart). Settle it with "
            f"the counterparty, then cancel or correct it in the ledger.",
            order_id=str(oid), user_id=user, symbol=order["symbol"], side=order["side"], qty=int(order["qty"]),
            filled_qty=int(order["filled_qty"]))

    # ---------------------------------------------------------------- reconciliation

    async def _reconcile_loop(self) -> None:
        while not self._stop.is_set():
            await self._sleep(self.reconcile_every)
            if self._connected.is_set():
                try:
                    await self._reconcile(older_than=self.reconcile_age)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, FixUnavailable, *UNAVAILABLE) as e:
                    log.warning("reconcile failed: %s", e)

    def _mine(self, user: str) -> bool:
        return stream_of(user, self.stream_partitions) in self.streams

    async def _reconcile(self, *, older_than: float) -> None:
        for order in await self.ledger.open_orders(older_than=older_than):
            user, oid = order["user_id"], order["order_id"]
            if not self._mine(user) or oid in self._given_up:
                continue
            self._users[oid] = user
            if order["status"] == Status.ACCEPTED:
                # Its stream entry is gone (Redis restarted) or never came: queue the work again.
                await self.redis.xadd(stream_of(user, self.stream_partitions),
                                      {"action": "new", "order_id": str(oid), "user_id": user, "requeued": "1"})
                self.counters["requeued"] += 1
            elif self.fix is not None and self.fix.connected:
                await self.fix.request_status(StatusRequest(cl_ord_id=str(oid), symbol=order["symbol"],
                                                            side=order["side"]))
                self.counters["status_requests"] += 1
                if order["cancel_requested"]:
                    await self._send_cancel(user, oid)
                if replacing.pending(order):
                    await self._send_replace(user, oid)
            await self.ledger.touch(user, oid)


def _unknown_answer(r: ExecutionReport) -> bool:
    """A status answer saying the market maker does not know the order at all."""
    return r.exec_type == "I" and r.ord_status == "8" and UNKNOWN_ORDER in (r.text or "").lower()
