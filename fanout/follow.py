"""Subscriptions that wait for their symbols: a book source fed from elsewhere (a Redis edge) fetches a
subscription's new symbols (subscribes to their partitions, seeds them) before the server answers it, so its
snapshots carry the books rather than rows not seeded yet.

``FollowGate`` is one connection's. A reply that subscribes to symbols the source must fetch first (its
``Follow`` returns an awaitable) is held, with every reply after it, in order, until the fetch is done or
``FOLLOW_TIMEOUT`` has passed (a slow or absent Redis: the snapshots then say what the books hold, and updates
follow); then each is applied in turn, and a later one may wait again. With no ``Follow`` (a node with its own
feed, or shared memory) every reply is applied at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("tickfan.fanout")

# a subscription's new (channel -> locates) -> None when the source holds them already, else what to await before
# their snapshots
Follow = Callable[[dict[str, list[int]]], Awaitable[None] | None]
FOLLOW_TIMEOUT = 5.0  # seconds a subscription's snapshots wait for the source to fetch its symbols, at most


class FollowGate:
    def __init__(self, follow: Follow | None, alive: Callable[[], bool], tasks: set[asyncio.Task[None]]) -> None:
        """``alive``: the connection can still be written to; ``tasks``: where the server keeps its tasks."""
        self.follow = follow
        self.alive = alive
        self.tasks = tasks
        self._held: list[tuple[dict[str, list[int]], Callable[[], None]]] | None = None

    def submit(self, subscribed: dict[str, list[int]], apply: Callable[[], None]) -> None:
        """``apply`` (one reply, subscribing to ``subscribed``) now, or once its symbols are fetched."""
        if self._held is not None:
            self._held.append((subscribed, apply))
            return
        pending = self.follow(subscribed) if self.follow is not None and subscribed else None
        if pending is None:
            apply()
            return
        self._held = [(subscribed, apply)]
        task = asyncio.create_task(self._after(pending))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _after(self, pending: Awaitable[None]) -> None:
        try:
            await asyncio.wait_for(pending, FOLLOW_TIMEOUT)
        except Exception:  # Redis slow or down: the snapshots go out as the books hold them, updates follow
            log.warning("fetching subscribed symbols failed; snapshots sent as held", exc_info=True)
        held, self._held = self._held or [], None
        for i, (subscribed, apply) in enumerate(held):
            if not self.alive():
                return
            if i == 0:
                apply()  # its symbols were just fetched (or given up on)
            else:
                self.submit(subscribed, apply)  # may wait again: the rest then queue behind it
