"""Fuzz target: ITCH 5.0 messages into the decoder and the packet walker.

Contract: ``itch.decode`` returns a message that encodes back to the same type and length, or raises
``ItchError``; the session's packet walk (``packets.decode_blocks``) never raises and counts every message
it cannot decode. Run: ``python -m tests.fuzz.run --seconds 15 itch``.
"""

from __future__ import annotations

from ingest import itch
from ingest.itch import LENGTHS, ItchError
from ingest.packets import decode_blocks
from ingest.sample import every_kind
from vocab.framing import frame_all

SEEDS: list[bytes] = [itch.encode(m) for m in every_kind()] + [b"", b"A", b"G" + b"1" * 20]


def one_input(data: bytes) -> None:
    try:
        message = itch.decode(data)
    except ItchError:
        pass
    else:
        raw = itch.encode(message)
        assert raw[0] == data[0] and len(raw) == len(data) == LENGTHS[data[0]]
    if data:
        try:
            itch.decode(data, data[0] % (len(data) + 3) - 1, data[-1] % 60)
        except ItchError:
            pass
    if len(data) > 0xFFFF:
        return
    counters = {"messages": 0, "unknown_message_types": 0, "truncated_messages": 0, "other_partition": 0}
    half = len(data) // 2
    for parts in ([data], [data[:half], data[half:]]):  # as the session sees a packet's payload
        before = sum(counters.values())
        out = decode_blocks(frame_all(parts), counters, None)
        assert sum(counters.values()) - before == len(parts), "a message neither decoded nor counted"
        assert len(out) <= len(parts)

if __name__ == "__main__":
    from tests.fuzz.harness import fuzz

    fuzz(one_input)
