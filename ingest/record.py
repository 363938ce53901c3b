"""Recording a live feed (asyncio adapter): the feed handler with a capture file as its sink.

Listens like any consumer (lines A/B, gap recovery when a rewinder is given) and writes the messages in
sequence order as a capture (``ingest.capture``: plain length-prefixed ITCH 5.0), until ``stop`` is set or
the session ends. ``tickfan record`` (``tickfan.capture_cli``) is its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import BinaryIO

from . import itch
from .capture import CaptureWriter
from .handler import open_feeds
from .messages import Message
from .session import FeedSession


async def record(f: BinaryIO, lines: Sequence[tuple[str, int]], *, stop: asyncio.Event,
                 rewinder: tuple[str, int] | None = None, interface: str = "127.0.0.1",
                 tick: Callable[[CaptureWriter, FeedSession], None] | None = None,
                 tick_interval: float = 1.0) -> CaptureWriter:
    """Write the feed on ``lines`` to ``f`` until ``stop`` or End of Session; ``tick`` is called every
    ``tick_interval`` seconds (progress). Raises ``OSError`` if the lines cannot be listened on."""
    writer = CaptureWriter(f)
    encode = itch.encode

    def sink(messages: list[Message]) -> None:
        for m in messages:
            writer.write(encode(m))

    handler = await open_feeds(lines, sink, rewinder=rewinder, interface=interface)
    try:
        while not stop.is_set() and not handler.session.ended:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_interval)
            if tick is not None:
                tick(writer, handler.session)
    finally:
        handler.close()
    return writer
