"""The asyncio adapter around one :class:`~order_api.fix.session.FixSession`, for either role.

The session decides everything (logon, sequence numbers, heartbeats, dead peer, logout); this module only moves
bytes and time, the way websockets' one ``Connection`` serves its client and its server:

- a **read loop** feeds what the socket gives to ``receive_data`` and, at end of stream or on a socket error,
  tells the session the connection is lost;
- a **timer loop** sleeps until ``next_deadline()`` (at most ``tick_cap`` seconds) and calls ``tick``;
- after every call into the session, what ``data_to_send()`` holds is written, in order;
- the events each call returns are dispatched to the :class:`SessionHandler`, one at a time, in order
  (``on_message`` is awaited before the next byte is read, so a slow handler slows reading, never reorders).

Teardown (:meth:`FixConnection.close`) cancels the loops, writes what the session still holds (a final Logout)
and closes the socket. A read loop inside ``on_message`` is not cancelled: it finishes the callback and then
stops, because the session is closed by then. The initiator (``order_api.fix.client``) and the acceptor
(``venue.marketmaker.server``) differ only in their handlers and in what they do around this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from vocab.digits import is_ascii_digits

from .codec import MSG_SEQ_NUM, FixMessage
from .messages import FixFieldError
from .session import Closed, Event, FixSession, LoggedOn, Received, RejectReceived, SessionState

READ_SIZE = 64 * 1024
log = logging.getLogger("tickfan.fix")


class SessionHandler(Protocol):
    """What a role does with its session's events (each awaited in order)."""

    async def on_logged_on(self, event: LoggedOn) -> None: ...

    async def on_message(self, message: FixMessage) -> None: ...

    async def on_reject(self, event: RejectReceived) -> None: ...

    async def on_closed(self, event: Closed) -> None: ...


class FixConnection:
    """One stream (reader, writer) driving one session. ``start()`` runs the loops; ``close()`` ends them."""

    def __init__(self, session: FixSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 handler: SessionHandler, *, eof_reason: str, tick_cap: float = 1.0,
                 before_tick: Callable[[], None] | None = None, name: str = "fix") -> None:
        self.session = session
        self.reader, self.writer = reader, writer
        self.handler = handler
        self.eof_reason = eof_reason          # the Closed reason when the peer closes the stream
        self.tick_cap = tick_cap              # longest timer sleep: how soon a change of ``before_tick`` shows
        self.before_tick = before_tick        # e.g. the acceptor's "slow" fault, read before every timer step
        self.name = name
        self.tasks: list[asyncio.Task[None]] = []
        self.in_callback = False
        self.closed = False
        # ``internal_errors``: an exception escaped the session or a handler while reading (a bug, never the
        # peer's fault by contract); the session was ended with a Logout instead of the read loop dying silently
        self.counters = {"internal_errors": 0}
        peer = writer.get_extra_info("peername")
        self.address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    # ------------------------------------------------------------------ lifecycle

    def start(self, *extra: Coroutine[Any, Any, None]) -> None:
        """Start the session (an initiator's Logon goes out now) and its loops, plus ``extra`` ones (e.g. a
        paced writer) that :meth:`close` cancels with them."""
        self.session.start(self._now())
        self.write_pending()
        self.tasks = [asyncio.create_task(self._read_loop(), name=f"{self.name}-read"),
                      asyncio.create_task(self._timer_loop(), name=f"{self.name}-timer"),
                      *(asyncio.create_task(c, name=f"{self.name}-extra") for c in extra)]

    async def wait_ended(self) -> None:
        """Until the first loop ends (each ends once the session is closed or the stream is gone)."""
        if self.tasks:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)

    async def close(self, reason: str) -> None:
        """Cancel the loops (not the caller's, not a reader inside ``on_message``), write what the session still
        holds, close the socket, and close the session if it is not yet. Idempotent."""
        if self.closed:
            return
        self.closed = True
        me = asyncio.current_task()
        for t in self.tasks:
            if t is not me and not (t is self.tasks[0] and self.in_callback):
                t.cancel()
        with contextlib.suppress(OSError, RuntimeError):
            self.write_pending()  # a final Logout, if the session produced one
            self.writer.close()
        if not self.session.closed:
            self.session.connection_lost(self._now(), reason)

    async def wait_stopped(self) -> None:
        """Until every loop has finished (after :meth:`close`; not from inside a loop)."""
        me = asyncio.current_task()
        await asyncio.gather(*(t for t in self.tasks if t is not me), return_exceptions=True)

    def abort(self, reason: str) -> None:
        """Drop the connection at once, without a Logout: a crash, as the peer sees it."""
        self.writer.transport.abort()
        if not self.session.closed:
            self.session.connection_lost(self._now(), reason)

    # ------------------------------------------------------------------ output

    def write_pending(self) -> None:
        data = self.session.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def send(self, message: FixMessage) -> None:
        """Queue an application message in the session and write it (not waiting for the kernel's buffer)."""
        self.session.send(message, self._now())
        self.write_pending()

    async def drain(self) -> None:
        await self.writer.drain()

    def logout(self, reason: str) -> None:
        """Ask the peer to end the session (an acceptor still awaiting a Logon ends it now); the loops see the
        answer and end."""
        if self.session.state in (SessionState.ACTIVE, SessionState.AWAITING_LOGON):
            self.session.logout(reason, self._now())
            self.write_pending()

    def reject(self, message: FixMessage, error: FixFieldError) -> bool:
        """Answer the peer's ``message`` with a session Reject naming ``error``'s tag, if the session can still
        speak. Returns whether it was sent."""
        if self.session.state not in (SessionState.ACTIVE, SessionState.LOGOUT_SENT):
            return False
        seq = message.get(MSG_SEQ_NUM, "0") or "0"
        self.session.reject(int(seq) if is_ascii_digits(seq) else 0, error.reason, error.text, self._now(),
                            ref_tag=error.tag, ref_msg_type=message.msg_type)
        self.write_pending()
        return True

    # ------------------------------------------------------------------ loops

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _read_loop(self) -> None:
        session = self.session
        try:
            while not session.closed:
                data = await self.reader.read(READ_SIZE)
                if session.closed:  # aborted or torn down while we waited
                    break
                if not data:
                    await self._dispatch(session.connection_lost(self._now(), self.eof_reason))
                    break
                events = session.receive_data(data, self._now())
                self.write_pending()
                await self._dispatch(events)
        except (OSError, RuntimeError) as e:
            if not session.closed:
                await self._dispatch(session.connection_lost(self._now(), f"connection error: {e}"))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            # "Never raises" is the codec's and the session's contract; if it is ever broken, a read loop that
            # died here would leave the session looking up until the heartbeat timers noticed, seconds later,
            # with every report in between unread. End the session now, loudly, so the peer reconnects.
            self.counters["internal_errors"] += 1
            log.exception("%s: error while reading from %s; ending the session", self.name, self.address)
            if not session.closed:
                events = session.fail(f"internal error reading input ({type(e).__name__})", self._now())
                self.write_pending()
                with contextlib.suppress(Exception):
                    await self._dispatch(events)

    async def _timer_loop(self) -> None:
        session = self.session
        with contextlib.suppress(OSError, RuntimeError):
            while not session.closed:
                if self.before_tick is not None:
                    self.before_tick()
                deadline = session.next_deadline()
                delay = self.tick_cap if deadline is None else min(max(deadline - self._now(), 0.0), self.tick_cap)
                await asyncio.sleep(delay)
                if session.closed:
                    break
                if self.before_tick is not None:
                    self.before_tick()
                events = session.tick(self._now())
                self.write_pending()
                await self._dispatch(events)

    async def _dispatch(self, events: Sequence[Event]) -> None:
        for ev in events:
            if isinstance(ev, Received):
                self.in_callback = asyncio.current_task() is self.tasks[0]
                try:
                    await self.handler.on_message(ev.message)
                finally:
                    self.in_callback = False
            elif isinstance(ev, LoggedOn):
                await self.handler.on_logged_on(ev)
            elif isinstance(ev, RejectReceived):
                await self.handler.on_reject(ev)
            elif isinstance(ev, Closed):
                await self.handler.on_closed(ev)


__all__ = ["READ_SIZE", "FixConnection", "SessionHandler"]
