"""Hostile alphabets for the feed parsers (hypothesis strategies): not only valid values.

Arbitrary bytes; ITCH messages of every known type with arbitrary field bytes (locates 0xFFFF, prices
2**32-1, refs that collide), with wrong lengths and unknown types; length prefixes that lie (0, 0xFFFF,
past the end); valid streams mutated (flipped, truncated, spliced bytes); MoldUDP64 headers with huge counts
and sequence numbers. Shared by the property tests, the stateful machine and the bounds-checked kernel run.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ingest import moldudp64
from ingest.itch import LENGTHS
from venue.simulator import ExchangeSimulator

TYPES = sorted(LENGTHS)
_VALID = ExchangeSimulator(20, seed=11).generate_encoded(300)


def framed(messages: list[bytes]) -> bytes:
    """Length-prefixed, as in a MoldUDP64 payload or a capture (a length over 0xFFFF is cut: it lies)."""
    return b"".join((len(m) & 0xFFFF).to_bytes(2, "big") + m for m in messages)


@st.composite
def itch_message(draw: st.DrawFn) -> bytes:
    """One message body: a known type with arbitrary fields (mostly the right length), or anything."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=60))
    t = draw(st.sampled_from(TYPES))
    size = LENGTHS[t]
    if kind == 1:
        size = draw(st.integers(1, 60))  # a known type at a wrong length
    body = draw(st.binary(min_size=size - 1, max_size=size - 1))
    if kind >= 6 and size >= 3:  # a plausible locate: a book the kernel actually touches
        body = draw(st.integers(0, 3)).to_bytes(2, "big") + body[2:]
    return bytes([t]) + body


def valid_messages(draw: st.DrawFn) -> list[bytes]:
    start = draw(st.integers(0, len(_VALID) - 1))
    return _VALID[start:start + draw(st.integers(0, 80))]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few hostile edits: bytes flipped or set to extremes, cut, spliced, duplicated."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == 0 and out:
            out[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80])) if draw(st.booleans()) else out[pos] ^ 0x55
        elif op == 1:
            del out[pos:]
        elif op == 2:
            out[pos:pos] = draw(st.binary(max_size=8))
        elif op == 3 and out:
            out[pos:pos] = out[pos:pos + draw(st.integers(1, 30))]
        else:
            out[pos:pos + 2] = draw(st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x00\x01", b"\x80\x00"]))
    return bytes(out)


@st.composite
def itch_stream(draw: st.DrawFn) -> bytes:
    """A buffer of length-prefixed messages, hostile in every way the framer and the kernel can see."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=3000))
    if kind == 1:
        return framed(draw(st.lists(itch_message(), max_size=60)))
    messages = valid_messages(draw) + draw(st.lists(itch_message(), max_size=20))
    messages = draw(st.permutations(messages)) if kind == 3 else messages
    return draw(mutated(framed(messages)))


@st.composite
def mold_packet(draw: st.DrawFn, session: str = "TICKFAN001") -> bytes:
    """A MoldUDP64 datagram: arbitrary bytes, or a header (any session, sequence, count up to 0xFFFF) over a
    payload that may or may not frame."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=200))
    name = draw(st.sampled_from([session, "OTHER", "\u00e9t\u00e9"]))
    raw = name.encode("utf-8").ljust(10, b" ")[:10]
    seq = draw(st.one_of(st.integers(0, 1000), st.sampled_from([(1 << 64) - 1, 1 << 63, 2_000_001])))
    messages = draw(st.lists(itch_message(), max_size=6))
    count = draw(st.one_of(st.just(len(messages)), st.sampled_from([0, 0xFFFF, 0xFFFE]), st.integers(0, 10)))
    data = moldudp64.HEADER.pack(raw, seq, count) + framed(messages)
    return draw(mutated(data)) if draw(st.booleans()) else data
