"""The replay sender: a capture file (or a Nasdaq ITCH 5.0 file) played back onto UDP as MoldUDP64.

Packs the file's messages into MoldUDP64 packets and paces them by their ITCH timestamps divided by
``speed`` (or as fast as possible with ``speed=0``), then announces End of Session. ``tickfan replay``
(``tickfan.capture_cli``) is its command line; recording a feed is a consumer's job (``ingest.record``).

The file keeps its date: ITCH stamps count from midnight US Eastern of the trading day, which only the file's
name says (``ingest.capture.file_date``; ``day`` when it does not). The replay's MoldUDP64 session is named
after that date (``vocab.clock.dated_session``: ``20190130RP``), so a node accepting that session, with no
``--session-date`` of its own, converts the stamps to epoch times of that day, not of today. Gzipped files
are read as a stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from ingest.capture import file_date, iter_messages, open_capture, timestamp_of
from ingest.moldudp64 import MAX_PAYLOAD, PacketBuilder, end_of_session
from ingest.udp import send_packet, sender_socket
from vocab.clock import dated_session

UNDATED_SESSION = "REPLAY0001"


def replay_date(path: Path, day: dt.date | None = None) -> dt.date | None:
    """The trading day a replay of ``path`` carries: ``day`` if given, else the one its name says, else None."""
    return day if day is not None else file_date(path)


def replay_session(path: Path, day: dt.date | None = None) -> str:
    """The MoldUDP64 session name a replay of ``path`` uses by default: its date's, or ``REPLAY0001``."""
    known = replay_date(path, day)
    return dated_session(known) if known is not None else UNDATED_SESSION


async def replay(path: Path, targets: list[tuple[str, int]], *, speed: float = 1.0, session: str | None = None,
                 day: dt.date | None = None, interface: str = "127.0.0.1", max_payload: int = MAX_PAYLOAD,
                 progress: Callable[[int, float], None] | None = None) -> int:
    """Send a capture (gzipped or not) as MoldUDP64; returns the number of messages sent. ``session``: default
    ``replay_session(path, day)``. ``progress(sent, rate)`` is called about once a second. A malformed file
    raises ``ingest.capture.CaptureError`` (what was before it is sent)."""
    if session is None:
        session = replay_session(path, day)
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
        with open_capture(path) as f:
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
