"""What the Python peers need of our wire format, with no dependency beyond the standard library.

- ``subscribed_symbols``: the tickers of a ``tickfan.v1.ClientMessage{subscribe: Subscribe{symbols}}``
  (field 1 of field 1), parsed by hand so a peer's own virtualenv needs no protobuf;
- ``unpack_updates``: the feed's batch of updates, repeated (u8 symbol length, symbol, u32 frame length,
  frame); each frame is already a complete ``ServerMessage`` of one quote.
"""

from __future__ import annotations

import struct


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def subscribed_symbols(data: bytes) -> list[str]:
    """Symbols of a Subscribe message; [] for anything else."""
    out: list[str] = []
    try:
        if not data or data[0] != 0x0A:
            return out
        n, pos = _varint(data, 1)
        end = pos + n
        while pos < end:
            tag = data[pos]
            k, pos = _varint(data, pos + 1)
            if tag == 0x0A:
                out.append(data[pos:pos + k].decode())
            pos += k
    except (IndexError, UnicodeDecodeError):
        return []
    return out


def unpack_updates(data: bytes) -> list[tuple[str, bytes]]:
    out, pos, n = [], 0, len(data)
    while pos < n:
        k = data[pos]
        sym = data[pos + 1:pos + 1 + k].decode()
        pos += 1 + k
        (m,) = struct.unpack_from("<I", data, pos)
        pos += 4
        out.append((sym, data[pos:pos + m]))
        pos += m
    return out
