"""The replay sender: a capture file (or a Nasdaq ITCH 5.0 file) played back onto UDP as MoldUDP64.

Packs the file's messages into MoldUDP64 packets and paces them by their ITCH timestamps divided by
``speed`` (or as fast as possible with ``speed=0``), then announces End of Session. ``tickfan replay``
(``tickfan.capture_cli``) is its command line; recording a feed is a consumer's job (``ingest.record``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from ingest.capture import iter_messages, timestamp_of
from ingest.moldudp64 import MAX_PAYLOAD, PacketBuilder, end_of_session
from ingest.udp import send_packet, sender_socket


async def replay(path: Path, targets: list[tuple[str, int]], *, speed: float = 1.0, session: str = "REPLAY0001",
                 interface: str = "127.0.0.1", max_payload: int = MAX_PAYLOAD,
                 progress: Callable[[int, float], None] | None = None) -> int:
    """Send a capture as MoldUDP64; returns the number of messages sent. ``progress(sent, rate)`` is called
    about once a second. A malformed file raises ``ingest.capture.CaptureError`` (what was before it is sent)."""
    socks = [sender_socket(host, port, interface=interface) for host, port in targets]

    def send(packet: bytes) -> None:
        for s in socks:
            send_packet(s, packet)

    builder = PacketBuilder(session, max_payload=max_payload)
    sent = 0
    start_wall = time.monotonic()
    first_ts: int | None = None
    last_report = start_wall
    try:
        with open(path, "rb") as f:
            for message in iter_messages(f):
                if speed > 0:
                    ts = timestamp_of(message)
                    if first_ts is None:
                        first_ts = ts
                    due = start_wall + (ts - first_ts) / 1e9 / speed
                    wait = due - time.monotonic()
                    if wait > 0.001:
                        tail = builder.flush()  # what is due now goes out before we wait
                        if tail is not None:
                            send(tail)
                        await asyncio.sleep(wait)
                packet = builder.add(message)
                if packet is not None:
                    send(packet)
                sent += 1
                if sent % 4096 == 0:
                    await asyncio.sleep(0)
                    now = time.monotonic()
                    if progress is not None and now - last_report >= 1.0:
                        progress(sent, sent / (now - start_wall))
                        last_report = now
            tail = builder.flush()
            if tail is not None:
                send(tail)
            send(end_of_session(session, builder.next_seq))
    finally:
        for s in socks:
            s.close()
    return sent
