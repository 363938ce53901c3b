"""Length-prefixed framing: a 2-byte big-endian length, then the message.

The one framing of ITCH 5.0 files (Nasdaq's historical captures), MoldUDP64 message blocks and GLIMPSE-style
snapshot streams. Decoders that must be fast over whole buffers (``ingest.batch``, ``ingest.session``) walk
the same layout in numpy or in place; everything that builds or splits frames one at a time uses these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

PREFIX = 2          # bytes of the length prefix
MAX_MESSAGE = 0xFFFF


def frame(message: bytes | bytearray | memoryview) -> bytes:
    """One message with its length prefix."""
    if len(message) > MAX_MESSAGE:
        raise ValueError(f"message of {len(message)} bytes does not fit a 2-byte length")
    return len(message).to_bytes(PREFIX, "big") + bytes(message)


def frame_all(messages: Iterable[bytes | bytearray | memoryview]) -> bytes:
    """Many messages, each with its length prefix, back to back."""
    return b"".join(frame(m) for m in messages)


def split_frames(buf: bytes | bytearray | memoryview, start: int = 0) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of each complete message in ``buf`` from ``start``; stops at a truncated tail."""
    end = len(buf)
    pos = start
    while pos + PREFIX <= end:
        n = (buf[pos] << 8) | buf[pos + 1]
        if pos + PREFIX + n > end:
            return
        yield pos + PREFIX, n
        pos += PREFIX + n


def messages_of(buf: bytes | bytearray | memoryview) -> list[bytes]:
    """Every complete message of a framed buffer, as bytes."""
    view = memoryview(buf)
    return [bytes(view[off:off + n]) for off, n in split_frames(view)]
