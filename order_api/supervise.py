"""Keep a worker's long-lived loops alive: a loop that ends on an exception nobody expected is logged with its
traceback and started again, so one unforeseen error (a client library's internals during a Redis failover)
cannot silently leave a stream partition without a reader while the process still looks healthy. (Seen: redis-py
8.1's asyncio cluster client lets ``AttributeError: 'NoneType' object has no attribute 'writelines'`` escape
from a write racing a connection's teardown during a master's failover, redis/redis-py#4287 and #3546, instead
of its ``ConnectionError``.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from vocab.redisconn import cancel_swallowed

RESTART_PAUSE = 0.5  # seconds before a crashed loop starts again: a loop crashing at once must not spin


async def supervised(name: str, loop: Callable[[], Awaitable[None]], stopping: Callable[[], bool],
                     log: logging.Logger, crashes: dict[str, int] | None = None) -> None:
    """Run ``loop()`` until it returns while ``stopping()``; restart it after any other exit. ``crashes``
    (a counter dict) gets ``loop_restarts`` incremented each time, for metrics and tests."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s ended on an unexpected error; starting it again", name)
        else:
            if stopping():
                return
            log.error("%s returned while the worker runs; starting it again", name)
        if cancel_swallowed():  # a client library ate our cancellation: do not restart what is being stopped
            raise asyncio.CancelledError
        if crashes is not None:
            crashes["loop_restarts"] = crashes.get("loop_restarts", 0) + 1
        if stopping():
            return
        await asyncio.sleep(RESTART_PAUSE)
