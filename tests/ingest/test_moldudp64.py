"""MoldUDP64 packets written by hand from the specification's layout."""

from __future__ import annotations

import pytest

from ingest import moldudp64 as mold
from ingest.moldudp64 import MoldError, PacketBuilder

SESSION = b"TICKFAN001"  # exactly 10 bytes


def test_downstream_packet_vector() -> None:
    m1, m2 = b"S" + b"\0" * 11, b"D" + b"\1" * 18
    raw = SESSION + (42).to_bytes(8, "big") + (2).to_bytes(2, "big") + b"\x00\x0c" + m1 + b"\x00\x13" + m2
    assert mold.encode_packet("TICKFAN001", 42, [m1, m2]) == raw
    p = mold.decode_packet(raw)
    assert (p.session, p.seq, p.message_count) == ("TICKFAN001", 42, 2)
    assert [p.message(0), p.message(1)] == [m1, m2]


def test_short_session_names_are_space_padded() -> None:
    raw = mold.heartbeat("ABC", 7)
    assert raw == b"ABC       " + (7).to_bytes(8, "big") + b"\x00\x00"
    p = mold.decode_packet(raw)
    assert p.session == "ABC" and p.is_heartbeat and not p.is_end_of_session


def test_end_of_session_vector() -> None:
    raw = SESSION + (99).to_bytes(8, "big") + b"\xff\xff"
    assert mold.end_of_session("TICKFAN001", 99) == raw
    assert mold.decode_packet(raw).is_end_of_session


def test_request_packet_vector() -> None:
    raw = SESSION + (1000).to_bytes(8, "big") + (25).to_bytes(2, "big")
    assert mold.encode_request("TICKFAN001", 1000, 25) == raw
    assert mold.decode_request(raw) == ("TICKFAN001", 1000, 25)
    with pytest.raises(MoldError):
        mold.decode_request(raw[:-1])


@pytest.mark.parametrize("raw,code", [
    (b"short", "truncated_header"),
    (SESSION + (1).to_bytes(8, "big") + b"\x00\x01" + b"\x00", "truncated_block"),
    (SESSION + (1).to_bytes(8, "big") + b"\x00\x01" + b"\x00\x05abc", "truncated_block"),
    (SESSION + (1).to_bytes(8, "big") + b"\x00\x01" + b"\x00\x01a" + b"extra", "count_mismatch"),
    (SESSION + (1).to_bytes(8, "big") + b"\x00\x00" + b"x", "count_mismatch"),
    (b"\xff" * 10 + (1).to_bytes(8, "big") + b"\x00\x00", "bad_session"),
])
def test_malformed_packets(raw: bytes, code: str) -> None:
    with pytest.raises(MoldError) as err:
        mold.decode_packet(raw)
    assert err.value.code == code


def test_builder_numbers_messages_and_respects_the_payload_limit() -> None:
    b = PacketBuilder("S1", first_seq=10, max_payload=20 + 3 * 12)
    msgs = [bytes([65 + i]) * 10 for i in range(7)]
    packets = [p for m in msgs if (p := b.add(m)) is not None]
    tail = b.flush()
    assert tail is not None
    packets.append(tail)
    decoded = [mold.decode_packet(p) for p in packets]
    assert [(p.seq, p.message_count) for p in decoded] == [(10, 3), (13, 3), (16, 1)]
    assert all(len(p) <= 56 for p in packets)
    assert [p.message(i) for p in decoded for i in range(p.message_count)] == msgs
    assert b.next_seq == 17 and b.flush() is None
