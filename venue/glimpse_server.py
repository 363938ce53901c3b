"""The GLIMPSE-style snapshot server: over TCP, the simulated exchange's whole current state, then where the
feed stands (``ingest.glimpse.end_of_snapshot``), so a consumer whose books went stale can rebuild them.

One connection, one snapshot: the server writes it and closes. The snapshot is taken when the connection
is accepted, on the event loop that runs the feed, i.e. between two ticks of the send loop, when every
generated message has been sent: the state and the next sequence number agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ingest import glimpse
from vocab.framing import frame_all

from .simulator import ExchangeSimulator


async def start_snapshot_server(simulator: ExchangeSimulator, next_seq: Callable[[], int],
                                host: str, port: int, *, session: str | None = None) -> asyncio.Server:
    """Serve snapshots of ``simulator`` on ``host:port``; ``next_seq()`` is the feed's next sequence number,
    ``session`` its MoldUDP64 session (named in the End of Snapshot, so a node can pin it)."""

    async def send_snapshot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(frame_all(simulator.snapshot()))
            writer.write(glimpse.end_of_snapshot(next_seq(), session))
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(send_snapshot, host, port)
