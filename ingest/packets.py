"""Walking MoldUDP64 packets and length-prefixed message blocks (pure): framing checks and batch decoding.

The feed session's hot path lives here, apart from its state machine: one walk over a packet both checks its
framing and decodes its messages. Nothing raises on bad input. Broken framing is reported (``None``, or
a reason) so the caller drops the packet whole, since a miscounted packet would shift every later sequence
number. A bad message inside good framing is counted in ``counters`` (the session's) and skipped.
"""

from __future__ import annotations

from collections.abc import Callable

import numba

from .itch import DECODERS, STRUCTS, decode_directory
from .messages import Message, StockDirectory
from .moldudp64 import HEADER_SIZE
from .partition import PartitionFilter

_DIRECTORY, _SYSTEM_EVENT = ord("R"), ord("S")
_DIRECTORY_SIZE = STRUCTS[b"R"].size


def _decode_directory(data: bytes, off: int) -> StockDirectory:
    return decode_directory(STRUCTS[b"R"].unpack_from(data, off))


def skip_messages(payload: bytes, n: int) -> bytes:
    """``payload`` (well-framed length-prefixed messages) without its first ``n`` messages."""
    pos = 0
    for _ in range(n):
        pos += 2 + ((payload[pos] << 8) | payload[pos + 1])
    return payload[pos:]


def framing_error(data: bytes | bytearray, count: int) -> str | None:
    """None if ``data`` (a whole packet) holds exactly ``count`` length-prefixed messages, else why not."""
    pos = _framed_end(data, count) if type(data) is bytes else _framed_end_py(data, count)
    if pos < 0:
        return "truncated_block"
    return None if pos == len(data) else "count_mismatch"


@numba.njit(cache=True, nogil=True)
def _framed_end(data: bytes | bytearray | memoryview, count: int) -> int:
    """Where ``count`` length-prefixed messages after the header end, or -1 if they run past the packet.
    Compiled: every datagram of the batched path is framed here before it is sequenced, ~30 messages each,
    and the interpreted loop cost about 8x more (``bench_framing.py``: 113 against 13.5 ns a message)."""
    pos = HEADER_SIZE
    end = len(data)
    for _ in range(count):
        if pos + 2 > end:
            return -1
        pos += 2 + ((data[pos] << 8) | data[pos + 1])
        if pos > end:
            return -1
    return pos


# the same walk, interpreted, for any other buffer (a bytearray or memoryview a caller may hand in)
_framed_end_py: Callable[[bytes | bytearray | memoryview, int], int] = _framed_end.py_func  # (compiled for bytes only)


def count_decoded(counters: dict[str, int], good: int, bad_type: int, truncated: int) -> None:
    counters["messages"] += good
    if bad_type:
        counters["unknown_message_types"] += bad_type
    if truncated:
        counters["truncated_messages"] += truncated


def decode_blocks(payload: bytes, counters: dict[str, int], partition: PartitionFilter | None) -> list[Message]:
    """Decode well-framed length-prefixed messages (a packet's, checked when it came), keeping only the
    partition's symbols if there is a partition (every other one counted as ``other_partition``)."""
    out: list[Message] = []
    append = out.append
    decoders = DECODERS
    bad_type = truncated = 0
    accept = partition.accept if partition is not None else None
    pos, end = 0, len(payload)
    while pos < end:
        n = (payload[pos] << 8) | payload[pos + 1]
        off = pos + 2
        pos = off + n
        if accept is not None and n >= 3:
            t = payload[off]
            if t == _DIRECTORY:
                if n == _DIRECTORY_SIZE:
                    msg = _decode_directory(payload, off)
                    assert partition is not None
                    if partition.learn(msg.locate, msg.stock):
                        append(msg)
                    else:
                        counters["other_partition"] += 1
                else:
                    truncated += 1
                continue
            if t != _SYSTEM_EVENT and not accept[(payload[off + 1] << 8) | payload[off + 2]]:
                counters["other_partition"] += 1
                continue
        entry = decoders.get(payload[off]) if n else None
        if entry is None:
            if n:
                bad_type += 1
            else:
                truncated += 1
            continue
        unpack, size, build = entry
        if n != size:
            truncated += 1
            continue
        append(build(unpack(payload, off)))
    count_decoded(counters, len(out), bad_type, truncated)
    return out


def walk_packet(data: bytes, count: int, skip: int, counters: dict[str, int]) -> list[Message] | None:
    """Frame and decode a packet's messages in one pass, skipping the first ``skip`` (already applied).

    Returns None, with nothing counted, if the packet's framing is broken (the caller then drops it whole);
    a bad message inside good framing is counted and skipped, as in ``decode_blocks``.
    """
    pos = HEADER_SIZE
    end = len(data)
    for _ in range(skip):
        if pos + 2 > end:
            return None
        pos += 2 + ((data[pos] << 8) | data[pos + 1])
    out: list[Message] = []
    append = out.append
    decoders = DECODERS
    bad_type = truncated = 0
    for _ in range(count - skip):
        if pos + 2 > end:
            return None
        n = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if pos + n > end:
            return None
        entry = decoders.get(data[pos]) if n else None
        if entry is None:
            if n:
                bad_type += 1
            else:
                truncated += 1
        elif n != entry[1]:
            truncated += 1
        else:
            append(entry[2](entry[0](data, pos)))
        pos += n
    if pos != end:
        return None
    count_decoded(counters, len(out), bad_type, truncated)
    return out

