"""Capture files (pure): plain length-prefixed ITCH 5.0, as in Nasdaq's own historical ITCH files.

Each message is a 2-byte big-endian length followed by the message bytes, nothing else: no file header,
no MoldUDP64 framing. So a real Nasdaq ITCH 5.0 file (e.g. ``01302019.NASDAQ_ITCH50``) is a capture, and a
capture is a valid ITCH file. Nasdaq publishes them gzipped (``01302019.NASDAQ_ITCH50.gz``): ``open_capture``
reads either, the gzip one as a stream (a day is several GB unpacked; nothing is loaded whole).

ITCH stamps count from midnight of the trading day, and the file carries no date but its name:
``file_date`` reads it from Nasdaq's names (``MMDDYYYY.NASDAQ_ITCH50``, ``MMDDYYYY.BX_ITCH_50.gz``, and the older
``SMMDDYY-v50.txt.gz``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
from collections.abc import Iterator
from pathlib import Path
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


GZIP_MAGIC = b"\x1f\x8b"
# Nasdaq's file names: 01302019.NASDAQ_ITCH50(.gz), 01302019.BX_ITCH_50.gz, 01302019.PSX_ITCH_50.gz; S013019-v50.txt.gz
_MMDDYYYY = re.compile(r"(\d{2})(\d{2})(\d{4})\.[A-Za-z]")
_SMMDDYY = re.compile(r"S(\d{2})(\d{2})(\d{2})-")


def open_capture(path: str | Path) -> BinaryIO:
    """A capture or Nasdaq ITCH file for reading, gzipped (by its first bytes, whatever its name) or not."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rb")  # type: ignore[return-value]  # decompresses as it is read
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def file_date(path: str | Path) -> dt.date | None:
    """The trading day a Nasdaq ITCH file's name carries, or None (a capture of ours, a renamed file)."""
    name = Path(path).name
    try:
        if m := _MMDDYYYY.match(name):
            return dt.date(int(m[3]), int(m[1]), int(m[2]))
        if m := _SMMDDYY.match(name):
            return dt.date(2000 + int(m[3]), int(m[1]), int(m[2]))
    except ValueError:  # 13302019.NASDAQ_ITCH50: digits, but no date
        return None
    return None
