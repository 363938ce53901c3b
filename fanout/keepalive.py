"""WebSocket keepalive pings for every connection from one timer.

picows' own auto-ping runs a task per connection (a coroutine, its task and a sleeping future: ~2 kB of every
connection; benchmarks/RESULTS.md, "Memory per connection (item 3)"). The rule here is picows' ``PING_WHEN_IDLE``
as it was: a connection that sent nothing for ``idle`` seconds is pinged; if no pong comes within ``reply``
seconds it is sent a GOING_AWAY close and aborted. Time is counted in ticks of ``period`` seconds (a quarter of
the shorter timeout), so a ping goes out between ``idle`` and ``idle + period`` after the last frame heard, and a
silent peer is dropped between ``reply`` and ``reply + period`` after its ping. A connection records the current
tick (one int shared by all) when it hears a frame: nothing is allocated per frame.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from typing import Protocol

from picows import WSCloseCode, WSTransport

log = logging.getLogger("tickfan.fanout")
ABORT_DELAY = 0.01  # seconds between the close sent to a silent peer and the abort (picows' own delay)
NOT_PINGED = 0
GIVEN_UP = -1  # closed for want of a pong: not pinged again


class Pinged(Protocol):
    """A connection as the keepalive sees it."""

    transport: WSTransport | None
    heard: int  # the tick a frame from the peer was last heard
    pinged: int  # the tick a ping went out unanswered (NOT_PINGED, GIVEN_UP)


class Keepalive:
    def __init__(self, idle: float, reply: float) -> None:
        self.idle, self.reply = idle, reply
        self.period = max(min(idle, reply) / 4, 0.01)
        self.idle_ticks = max(1, math.ceil(idle / self.period))
        self.reply_ticks = max(1, math.ceil(reply / self.period))
        self.tick = 1
        self.pings_sent = 0
        self.dropped = 0  # connections closed for want of a pong

    def sweep(self, connections: Iterable[Pinged]) -> None:
        """One tick: ping the connections idle for ``idle``, close those that left a ping unanswered ``reply``."""
        self.tick = tick = self.tick + 1
        idle, reply = self.idle_ticks, self.reply_ticks
        for c in connections:
            transport = c.transport
            if transport is None or transport.is_disconnected:
                continue
            pinged = c.pinged
            if pinged > 0:
                if tick - pinged >= reply:
                    c.pinged = GIVEN_UP
                    self.dropped += 1
                    log.info("closing a connection: no pong within %s s", self.reply)
                    transport.send_close(WSCloseCode.GOING_AWAY, f"peer has not replied to ping/heartbeat request "
                                                                 f"within {self.reply} second(s)".encode())
                    asyncio.get_running_loop().call_later(ABORT_DELAY, transport.underlying_transport.abort)
            elif pinged == NOT_PINGED and tick - c.heard >= idle:
                c.pinged = tick
                self.pings_sent += 1
                transport.send_ping()

    async def run(self, connections: Callable[[], Iterable[Pinged]]) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                self.sweep(list(connections()))
            except Exception:  # one bad connection must not end every connection's keepalive
                log.exception("keepalive sweep failed")
