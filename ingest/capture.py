"""Capture files (pure): plain length-prefixed ITCH 5.0, as in Nasdaq's own historical ITCH files.

Each message is a 2-byte big-endian length followed by the message bytes, nothing else: no file header,
no MoldUDP64 framing. So a real Nasdaq ITCH 5.0 file (e.g. ``01302019.NASDAQ_ITCH50``, uncompressed) is a
capture, and a capture is a valid ITCH file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from vocab.framing import frame

CHUNK = 1 << 20


class CaptureError(ValueError):
    pass


def iter_messages(f: BinaryIO, chunk: int = CHUNK) -> Iterator[bytes]:
    """Yield each message's bytes in file order, reading in large chunks (files can be many GB)."""
    buf = b""
    pos = 0
    while True:
        data = f.read(chunk)
        if not data:
            if pos != len(buf):
                raise CaptureError(f"capture ends inside a message ({len(buf) - pos} stray bytes)")
            return
        buf = buf[pos:] + data
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            n = (buf[pos] << 8) | buf[pos + 1]
            if end - pos - 2 < n:
                break
            yield buf[pos + 2:pos + 2 + n]
            pos += 2 + n


class CaptureWriter:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.messages = 0
        self.bytes = 0

    def write(self, message: bytes) -> None:
        self.f.write(frame(message))
        self.messages += 1
        self.bytes += 2 + len(message)


def timestamp_of(message: bytes) -> int:
    """The ITCH timestamp (ns since midnight) of any message: bytes 5..10 of the common header."""
    return int.from_bytes(message[5:11], "big") if len(message) >= 11 else 0
