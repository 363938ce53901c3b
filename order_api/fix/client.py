"""A thin asyncio FIX 4.4 initiator for the execution workers: one TCP connection, one :class:`FixSession`.

The session logic (logon, sequence numbers, heartbeats, dead-peer detection) is in ``session``, the byte and
timer loops in ``connection`` (shared with the market maker's acceptor); this module connects, sends and runs
the callbacks. What the caller can rely on:

- ``await connect()`` returns once the market maker has answered the Logon, or raises :class:`FixUnavailable`
  (refused, unreachable, timed out, logon refused). A client connects once; make a new one to reconnect.
- ``send_*`` return once the message is handed to the kernel: that is no proof of receipt. After a lost
  connection, reconcile with ``request_status`` (the market maker re-sends the order's executions under
  their original ExecIDs, flagged ``poss_resend``, then an ExecType I status report).
- ``on_report`` is awaited for every ExecutionReport, in arrival order, one at a time (so a slow ledger
  slows reading, never reorders). If it raises, the error is logged and counted and reading goes on: the
  order's next status request brings the report back.
- When the session ends other than by ``close()`` (connection lost, peer Logout, dead peer, protocol error)
  the client marks itself disconnected and calls ``on_disconnect(reason)`` once (sync or async). Reconnects,
  backoff and circuit breaking are the caller's (see ``order_api.resilience``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .codec import FixMessage
from .connection import FixConnection
from .messages import (
    CancelReject,
    CancelRequest,
    ExecutionReport,
    FixFieldError,
    NewOrder,
    ReplaceRequest,
    StatusRequest,
    parse_app,
)
from .session import Closed, FixSession, LoggedOn, RejectReceived, Role, SessionState

log = logging.getLogger("tickfan.fix")


class FixUnavailable(Exception):
    """The market maker cannot be reached or the session is not (or no longer) up."""


class FixNotSent(FixUnavailable):
    """A ``send_*`` refused before writing a byte (no session): the message is certainly not on the wire.
    (A plain :class:`FixUnavailable` from a ``send_*`` means the write failed part way: it may have gone out.)"""


class FixClient:
    def __init__(self, host: str, port: int, *, sender_comp_id: str = "TICKFAN", target_comp_id: str = "MM1",
                 on_report: Callable[[ExecutionReport], Awaitable[None]],
                 on_disconnect: Callable[[str], Any] | None = None,
                 on_cancel_reject: Callable[[CancelReject], Awaitable[None]] | None = None,
                 heartbeat_interval: int = 10, connect_timeout: float = 5.0, logout_timeout: float = 1.0,
                 clock: Callable[[], float] = time.time, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: connect over TLS with this context (``vocab.tls.client_context``: the market maker's certificate
        verified for ``host``; a client certificate presented for mutual TLS, whose CN must be our
        ``sender_comp_id``); None: plain TCP."""
        self.host, self.port = host, port
        self.tls = tls
        self.sender_comp_id, self.target_comp_id = sender_comp_id, target_comp_id
        self.on_report = on_report
        self.on_disconnect = on_disconnect
        self.on_cancel_reject = on_cancel_reject
        self.heartbeat_interval = heartbeat_interval
        self.connect_timeout = connect_timeout
        self.logout_timeout = logout_timeout
        self.clock = clock
        self.session: FixSession | None = None
        self.counters = {"reports": 0, "report_errors": 0, "cancel_rejects": 0, "session_rejects": 0,
                         "bad_messages": 0}
        self.close_reason: str | None = None
        # the market maker's order-memory incarnation from its Logon (None if it does not say)
        self.peer_incarnation: str | None = None
        self._conn: FixConnection | None = None
        self._logged_on: asyncio.Future[None] | None = None
        self._done = asyncio.Event()
        self._closing = False
        self._torn_down = False
        self._was_active = False

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.active and not self._torn_down and not self._closing

    async def connect(self) -> None:
        if self.session is not None:
            raise FixUnavailable("this client has already connected once; create a new one")
        loop = asyncio.get_running_loop()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port, ssl=self.tls),
                                                    self.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise FixUnavailable(f"cannot connect to {self.host}:{self.port}: {e or type(e).__name__}") from e
        self.session = FixSession(Role.INITIATOR, self.sender_comp_id, self.target_comp_id,
                                  heartbeat_interval=self.heartbeat_interval, logon_timeout=self.connect_timeout,
                                  logout_timeout=self.logout_timeout, clock=self.clock)
        self._conn = FixConnection(self.session, reader, writer, self, eof_reason="connection closed by the market "
                                   "maker", tick_cap=1.0, name="fix")
        self._logged_on = loop.create_future()
        self._conn.start()
        try:
            await asyncio.wait_for(asyncio.shield(self._logged_on), self.connect_timeout + 1)
        except (FixUnavailable, TimeoutError, asyncio.CancelledError) as e:
            await self._teardown(f"logon failed: {e or type(e).__name__}", notify=False)
            if isinstance(e, asyncio.CancelledError):
                raise
            raise FixUnavailable(f"logon to {self.host}:{self.port} failed: {e or 'timed out'}") from e

    async def send_new_order(self, order: NewOrder) -> None:
        await self._send_app(order.to_fix())

    async def send_cancel(self, request: CancelRequest) -> None:
        await self._send_app(request.to_fix())

    async def send_replace(self, request: ReplaceRequest) -> None:
        await self._send_app(request.to_fix())

    async def request_status(self, request: StatusRequest) -> None:
        await self._send_app(request.to_fix())

    async def close(self) -> None:
        """Log out (waiting briefly for the answer) and close. Does not call ``on_disconnect``."""
        if self.session is None or self._conn is None or self._torn_down:
            return
        self._closing = True
        if self.session.state is SessionState.ACTIVE:
            with contextlib.suppress(OSError, RuntimeError):
                self._conn.logout("client closing")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), self.logout_timeout)
        await self._teardown("closed by the client", notify=False)

    async def wait_closed(self) -> str:
        """Wait until the session has ended; returns why."""
        await self._done.wait()
        return self.close_reason or ""

    # ------------------------------------------------------------------ internals

    async def _send_app(self, message: FixMessage) -> None:
        if not self.connected or self._conn is None:
            raise FixNotSent(f"no FIX session with {self.host}:{self.port}"
                                 + (f" ({self.close_reason})" if self.close_reason else ""))
        try:
            self._conn.send(message)
            await self._conn.drain()
        except (OSError, RuntimeError) as e:
            await self._teardown(f"write failed: {e}", notify=self._was_active)
            raise FixUnavailable(f"send to {self.host}:{self.port} failed: {e}") from e

    # ------------------------------------------------------------------ session events (SessionHandler)

    async def on_logged_on(self, event: LoggedOn) -> None:
        self._was_active = True
        self.peer_incarnation = event.peer_incarnation
        if self._logged_on is not None and not self._logged_on.done():
            self._logged_on.set_result(None)

    async def on_reject(self, event: RejectReceived) -> None:
        self.counters["session_rejects"] += 1
        log.warning("market maker rejected our message %d: %s", event.reject.ref_seq_num, event.reject.text)

    async def on_closed(self, event: Closed) -> None:
        if self._logged_on is not None and not self._logged_on.done():
            self._logged_on.set_exception(FixUnavailable(event.reason))
            self._logged_on.exception()  # retrieved here: connect() may already have given up
        # a session that never logged on ends in connect()'s FixUnavailable, not in on_disconnect
        await self._teardown(event.reason, notify=self._was_active and not self._closing)

    async def on_message(self, message: FixMessage) -> None:
        assert self._conn is not None
        try:
            value = parse_app(message, (ExecutionReport, CancelReject))
        except FixFieldError as e:
            self.counters["bad_messages"] += 1
            log.warning("bad message from the market maker: %s (%r)", e.text, message)
            self._conn.reject(message, e)
            return
        if isinstance(value, ExecutionReport):
            self.counters["reports"] += 1
            try:
                await self.on_report(value)
            except Exception:
                self.counters["report_errors"] += 1
                log.exception("on_report failed for %s (ExecID %s); a status request will bring it back",
                              value.cl_ord_id, value.exec_id)
            return
        assert isinstance(value, CancelReject)
        self.counters["cancel_rejects"] += 1
        if self.on_cancel_reject is None:
            log.info("cancel %s of %s refused: %s", value.cl_ord_id, value.orig_cl_ord_id, value.text)
            return
        try:
            await self.on_cancel_reject(value)
        except Exception:
            log.exception("on_cancel_reject failed for %s", value.cl_ord_id)

    async def _teardown(self, reason: str, *, notify: bool) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        self.close_reason = reason
        if self._conn is not None:
            await self._conn.close(reason)
        self._done.set()
        if notify and self.on_disconnect is not None:
            log.warning("FIX session with %s:%d ended: %s", self.host, self.port, reason)
            try:
                result = self.on_disconnect(reason)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_disconnect failed")


__all__ = ["FixClient", "FixNotSent", "FixUnavailable"]
