"""The market maker's acceptor: TCP connections, one FIX session each, over the shared connection adapter.

Each connection is a :class:`~order_api.fix.connection.FixConnection` (the same read and timer loops the
execution workers' initiator runs) with a :class:`_Peer` as its handler: application messages go to the
:class:`~venue.marketmaker.engine.MatchingEngine`, and its reports come back through a paced writer (the
latency and jitter faults), to the session that last sent a message about the order. If that session is gone
they stay with the order and are re-sent on the next OrderStatusRequest. Each connection holds at most
``MAX_QUEUED_REPORTS`` unsent reports; beyond that it is dropped (the reports stay with their orders).

Who may log on (:meth:`MarketMaker.logon_refusal`, the one place to add a rule): only a SenderCompID the market
maker is configured to accept (exact names, or prefixes ending in ``*``; default ``TICKFAN`` and ``TF-*``, the
FIX client's default and the execution workers' ``TF-<name>``), and only one session per CompID at a time: a
second Logon under a CompID already logged on is refused with a Logout, and the first session keeps running
(before, it replaced and dropped the first: anyone could evict a worker).

Faults (:class:`~venue.marketmaker.engine.Faults`, changeable at runtime on ``MarketMaker.faults``;
``set_down``/``drop_connections`` are methods): latency (+ jitter) before each report, a reject rate,
partial-fill behaviour, refusing connections, dropping a connection after N reports, and "slow" (no heartbeats
and no TestRequest answers, so the client's dead-peer detection fires).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence

from order_api.fix import (
    CancelRequest,
    Closed,
    FixFieldError,
    FixMessage,
    FixSession,
    LoggedOn,
    NewOrder,
    RejectReceived,
    ReplaceRequest,
    Role,
    StatusRequest,
    parse_app,
)
from order_api.fix.connection import FixConnection

from .engine import MAX_ORDERS, PHASE_AFTER, SYMBOL_RE, Faults, MatchingEngine, Report
from .identity import bound_comp_id
from .quotes import PrimableQuoteProvider, QuoteProvider

log = logging.getLogger("tickfan.marketmaker")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9878
DEFAULT_COMP_ID = "MM1"
DEFAULT_ACCEPTED_COMP_IDS = ("TICKFAN", "TF-*")
MAX_QUEUED_REPORTS = 100_000


class _Peer:
    """One accepted connection: its FIX connection (session, reader, timer) and a paced writer of reports."""

    def __init__(self, mm: MarketMaker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.mm = mm
        # Under mutual TLS the peer's CompID is its certificate's CN: the session refuses (Logout, "CompID
        # problem") a Logon whose SenderCompID is another; without a client certificate it adopts the Logon's.
        # Either way the market maker's own rules (``logon_refusal``) are asked next. The engine's random id prefix
        # names this process's order memory: a restart shows as a new incarnation.
        self.session = FixSession(Role.ACCEPTOR, mm.comp_id, bound_comp_id(writer), logon_timeout=mm.logon_timeout,
                                  clock=mm.clock, incarnation=mm.engine.id_prefix, admit=self._admit)
        # the "slow" fault is read before every timer step, so it can be switched on a live session
        self.conn = FixConnection(self.session, reader, writer, self, eof_reason="connection closed by the client",
                                  tick_cap=0.25, before_tick=self._apply_slow, name="mm")
        self.peer: str | None = None
        self.queue: deque[tuple[float, Report]] = deque()
        self._wake = asyncio.Event()
        self.app_sent = 0
        self.closed_reason: str | None = None
        self.address = self.conn.address

    def _admit(self, comp_id: str) -> str | None:
        """The session asks, on a valid Logon: refused (a reason) or admitted (the CompID is ours from now on)."""
        refusal = self.mm.logon_refusal(comp_id, self)
        if refusal is not None:
            self.mm.counters["logons_refused"] += 1
            log.warning("logon from %s (%s) refused: %s", comp_id, self.address, refusal)
            return refusal
        self.peer = comp_id
        self.mm.sessions[comp_id] = self  # claimed now, in the same step as the check: no second logon between
        return None

    def _apply_slow(self) -> None:
        self.session.muted = self.mm.faults.slow

    # ---------------------------------------------------------------- plumbing

    def enqueue(self, report: Report) -> None:
        if len(self.queue) >= MAX_QUEUED_REPORTS:
            self.abort("client too slow: report queue full")
            return
        f = self.mm.faults
        delay = (f.latency_ms + (f.jitter_ms * self.mm.rng.random() if f.jitter_ms > 0 else 0.0)) / 1000
        self.queue.append((asyncio.get_running_loop().time() + delay, report))
        self._wake.set()

    def abort(self, reason: str) -> None:
        """Drop the connection at once (no Logout): a crash as the client sees it."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self.mm.counters["drops"] += 1
        log.info("dropping %s (%s): %s", self.peer or "?", self.address, reason)
        self.conn.abort(reason)

    def logout(self, reason: str) -> None:
        self.conn.logout(reason)

    # ---------------------------------------------------------------- tasks

    async def run(self) -> None:
        self.conn.start(self._write_loop())
        try:
            await self.conn.wait_ended()
        finally:
            reason = self.closed_reason or self.session.close_reason or "closed"
            await self.conn.close(reason)
            await self.conn.wait_stopped()
            self.mm._unregister(self)
            log.info("session %s (%s) ended: %s", self.peer or "?", self.address, reason)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.session.closed:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, report = self.queue[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.queue.popleft()
            if not self.session.active:
                continue  # kept with its order; a status request brings it back
            self.conn.send(report.to_fix())
            self.app_sent += 1
            self.mm.counters["reports_sent"] += 1
            drop_after = self.mm.faults.drop_after
            if drop_after is not None and self.app_sent >= drop_after:
                self.abort(f"fault injection: drop after {drop_after} messages")
                return
            with contextlib.suppress(OSError, RuntimeError):
                await self.conn.drain()

    # ---------------------------------------------------------------- session events (SessionHandler)

    async def on_logged_on(self, event: LoggedOn) -> None:
        self.peer = event.peer_comp_id
        self.mm._register(self)
        log.info("session %s (%s) logged on, heartbeat %d s", self.peer, self.address, event.heartbeat_interval)

    async def on_reject(self, event: RejectReceived) -> None:
        self.mm.counters["session_rejects_in"] += 1

    async def on_closed(self, event: Closed) -> None:
        if self.closed_reason is None:
            self.closed_reason = event.reason

    async def on_message(self, message: FixMessage) -> None:
        engine, loop = self.mm.engine, asyncio.get_running_loop()
        owner = self.peer or ""
        try:
            value = parse_app(message, (NewOrder, CancelRequest, ReplaceRequest, StatusRequest))
            if isinstance(value, NewOrder):
                await self.mm._prime(value.symbol)
                reports = engine.new_order(owner, value, loop.time())
            elif isinstance(value, CancelRequest):
                reports = engine.cancel(owner, value, loop.time())
            elif isinstance(value, ReplaceRequest):
                reports = engine.replace_order(owner, value, loop.time())
            else:
                assert isinstance(value, StatusRequest)
                reports = engine.status(owner, value)
        except FixFieldError as e:
            self.mm.counters["session_rejects_out"] += 1
            self.conn.reject(message, e)
            return
        for r in reports:
            self.enqueue(r)
        self.mm._kick.set()


class MarketMaker:
    """The asyncio acceptor. ``await start()``, then ``faults``, ``set_down``, ``drop_connections`` at will."""

    def __init__(self, quotes: QuoteProvider, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 comp_id: str = DEFAULT_COMP_ID, accept_comp_ids: Sequence[str] = DEFAULT_ACCEPTED_COMP_IDS,
                 faults: Faults | None = None, seed: int | None = None,
                 max_orders: int = MAX_ORDERS, fill_interval: float = 0.005, recheck_interval: float = 0.05,
                 logon_timeout: float = 10.0, prime_timeout: float = 1.0,
                 clock: Callable[[], float] = time.time, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: accept FIX over TLS with this server context (``vocab.tls.server_context``; with a client CA,
        mutual TLS: a client without a certificate signed by it fails the handshake, and one with a certificate
        may log on only as its CN). None: plain TCP."""
        self.quotes = quotes
        self.tls = tls
        self.host, self.port = host, port
        self.comp_id = comp_id
        self.accept_comp_ids = tuple(accept_comp_ids)
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.engine = MatchingEngine(quotes, self.faults, rng=random.Random(None if seed is None else seed + 1),
                                     max_orders=max_orders, fill_interval=fill_interval,
                                     recheck_interval=recheck_interval)
        self.logon_timeout = logon_timeout
        self.prime_timeout = prime_timeout
        self.clock = clock
        self.down = False
        self.connections: set[_Peer] = set()
        self.sessions: dict[str, _Peer] = {}
        self.counters = dict.fromkeys(("connections", "refused", "drops", "reports_sent", "session_rejects_out",
                                       "session_rejects_in", "logons_refused"), 0)
        self._server: asyncio.Server | None = None
        self._matcher: asyncio.Task[None] | None = None
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._kick = asyncio.Event()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self._listen()
        self._matcher = asyncio.create_task(self._match_loop(), name="mm-matcher")

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port, reuse_address=True,
                                                  ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._matcher is not None:
            self._matcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._matcher
            self._matcher = None
        await self._close_listener()
        for conn in list(self.connections):
            conn.logout("market maker shutting down")
        for t in list(self._conn_tasks):
            t.cancel()
        await asyncio.gather(*self._conn_tasks, return_exceptions=True)

    async def __aenter__(self) -> MarketMaker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # ---------------------------------------------------------------- faults

    async def set_down(self, down: bool) -> None:
        """Down: stop listening (connections are refused) and drop every connection. Up: listen again."""
        if down == self.down:
            return
        self.down = down
        if down:
            await self._close_listener()
            self.drop_connections("fault injection: market maker down")
        else:
            await self._listen()
        log.warning("market maker %s", "DOWN: refusing connections" if down else "up again")

    def drop_connections(self, reason: str = "fault injection: connection dropped") -> int:
        """Abort every connection now (no Logout). Returns how many."""
        conns = list(self.connections)
        for conn in conns:
            conn.abort(reason)
        return len(conns)

    # ---------------------------------------------------------------- the session

    def session_event(self, event: str) -> int:
        """Drive the venue's day (``venue.schedule``): "open" (the opening cross fills OPG orders), "close" (the
        closing cross fills at-the-close orders), "rollover" (the day ends: open day orders expire, gtc ones rest
        on), "premarket" (extended-hours orders taken); each moves the engine's trading hours (``enter``: the
        regular session between open and close, the extended ones before and after). Reports go to each order's
        session; returns how many. ValueError for another event."""
        if event not in PHASE_AFTER:
            raise ValueError(f"unknown session event {event!r} (premarket, open, close, rollover)")
        if event in ("open", "close"):
            reports = self.engine.cross("open" if event == "open" else "close")
        elif event == "rollover":
            reports = self.engine.rollover()
        else:
            reports = []  # the feed's start of system hours: extended-hours orders are taken from now on
        self.engine.enter(PHASE_AFTER[event])  # after the cross or the expiries (the crosses take any phase)
        for owner, report in reports:
            conn = self.sessions.get(owner)
            if conn is not None:
                conn.enqueue(report)
        log.info("session event %s: %d report(s)", event, len(reports))
        return len(reports)

    # ---------------------------------------------------------------- connections

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            self.counters["refused"] += 1
            writer.transport.abort()
            return
        self.counters["connections"] += 1
        conn = _Peer(self, reader, writer)
        self.connections.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        try:
            await conn.run()
        except asyncio.CancelledError:
            # Shutting down. A start_server handler task that ends cancelled is reported by asyncio (3.11)
            # as an "Exception in callback" with a traceback; ending normally is what stop() means.
            pass
        finally:
            self.connections.discard(conn)
            if task is not None:
                self._conn_tasks.discard(task)

    def logon_refusal(self, comp_id: str, conn: _Peer) -> str | None:
        """Why a Logon under ``comp_id`` on ``conn`` is refused, or None to admit it. Every rule about who may log
        on lives here (``conn`` gives the transport, e.g. for a client certificate)."""
        if not comp_id_accepted(comp_id, self.accept_comp_ids):
            return f"SenderCompID {comp_id!r} is not accepted here"
        current = self.sessions.get(comp_id)
        if current is not None and current is not conn and not current.session.closed:
            return f"SenderCompID {comp_id!r} is already logged on"
        return None

    def _register(self, conn: _Peer) -> None:
        assert conn.peer is not None
        self.sessions[conn.peer] = conn

    def _unregister(self, conn: _Peer) -> None:
        if conn.peer is not None and self.sessions.get(conn.peer) is conn:
            del self.sessions[conn.peer]

    async def _prime(self, symbol: str) -> None:
        if isinstance(self.quotes, PrimableQuoteProvider) and SYMBOL_RE.match(symbol) \
                and self.quotes.quote(symbol) is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.quotes.prime(symbol), self.prime_timeout)

    # ---------------------------------------------------------------- executions over time

    async def _match_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for owner, report in self.engine.step(loop.time()):
                conn = self.sessions.get(owner)
                if conn is not None:
                    conn.enqueue(report)
            wake = self.engine.next_wakeup()
            self._kick.clear()
            timeout = None if wake is None else max(wake - loop.time(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout)

    # ---------------------------------------------------------------- status

    def status_line(self) -> str:
        e = self.engine.counters
        return (f"market-maker {self.host}:{self.port} {'DOWN' if self.down else 'up'} | "
                f"sessions {len(self.sessions)} (connections {self.counters['connections']}, "
                f"drops {self.counters['drops']}) | orders {e['orders']} (open {self.engine.open_count}) | "
                f"fills {e['fills']} ({e['filled_qty']} sh) | rejects {e['rejects']} | cancels {e['cancels']} | "
                f"status requests {e['status_requests']} | reports sent {self.counters['reports_sent']}")


def comp_id_accepted(comp_id: str, accepted: Sequence[str]) -> bool:
    """Whether ``comp_id`` is one of ``accepted``: exact names, or prefixes written with a trailing ``*``."""
    return any(comp_id.startswith(a[:-1]) if a.endswith("*") else comp_id == a for a in accepted)


__all__ = ["DEFAULT_ACCEPTED_COMP_IDS", "DEFAULT_COMP_ID", "DEFAULT_HOST", "DEFAULT_PORT", "MAX_QUEUED_REPORTS",
           "MarketMaker", "comp_id_accepted"]
