"""MoldUDP64 codec (pure): downstream packets, heartbeats, end of session, and request packets.

Downstream packet: Session (10 bytes, ASCII) | Sequence Number (uint64, of the first message) |
Message Count (uint16) | Message Count x [Message Length (uint16) | Message Data]. A count of 0 is a
heartbeat (its sequence is the next one expected); 0xFFFF marks the end of the session.
Request packet (to the re-request server): Session (10) | Sequence Number (8) | Requested Message Count (2).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

from vocab.framing import frame, frame_all

HEADER = struct.Struct(">10sQH")
HEADER_SIZE = HEADER.size  # 20
REQUEST = struct.Struct(">10sQH")
HEARTBEAT_COUNT = 0
END_OF_SESSION_COUNT = 0xFFFF
MAX_PAYLOAD = 1400  # keeps a packet inside one Ethernet frame with IP/UDP headers


class MoldError(ValueError):
    """A packet that cannot be decoded; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Packet(NamedTuple):
    session: str
    seq: int
    message_count: int
    # (offset, length) of each message inside ``data``
    blocks: list[tuple[int, int]]
    data: bytes

    @property
    def is_heartbeat(self) -> bool:
        return self.message_count == HEARTBEAT_COUNT

    @property
    def is_end_of_session(self) -> bool:
        return self.message_count == END_OF_SESSION_COUNT

    def message(self, i: int) -> bytes:
        off, n = self.blocks[i]
        return self.data[off:off + n]


def session_bytes(session: str) -> bytes:
    raw = session.encode("ascii")
    if len(raw) > 10:
        raise ValueError(f"MoldUDP64 session names are at most 10 characters: {session!r}")
    return raw.ljust(10, b" ")


def encode_packet(session: str, seq: int, messages: Iterable[bytes]) -> bytes:
    msgs = list(messages)
    return HEADER.pack(session_bytes(session), seq, len(msgs)) + frame_all(msgs)


def heartbeat(session: str, next_seq: int) -> bytes:
    return HEADER.pack(session_bytes(session), next_seq, HEARTBEAT_COUNT)


def end_of_session(session: str, next_seq: int) -> bytes:
    return HEADER.pack(session_bytes(session), next_seq, END_OF_SESSION_COUNT)


def decode_packet(data: bytes) -> Packet:
    """Split a downstream packet into its message blocks. Raises MoldError on any inconsistency."""
    if len(data) < HEADER_SIZE:
        raise MoldError("truncated_header", f"packet of {len(data)} bytes is shorter than the 20-byte header")
    raw_session, seq, count = HEADER.unpack_from(data)
    try:
        session = raw_session.decode("ascii").rstrip(" ")
    except UnicodeDecodeError:
        raise MoldError("bad_session", "session name is not ASCII") from None
    blocks: list[tuple[int, int]] = []
    if count in (HEARTBEAT_COUNT, END_OF_SESSION_COUNT):
        if len(data) != HEADER_SIZE:
            raise MoldError("count_mismatch", f"count {count:#x} packet carries {len(data) - 20} extra bytes")
        return Packet(session, seq, count, blocks, data)
    pos = HEADER_SIZE
    end = len(data)
    append = blocks.append
    for _ in range(count):
        if pos + 2 > end:
            raise MoldError("truncated_block", "message length runs past the end of the packet")
        n = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if pos + n > end:
            raise MoldError("truncated_block", f"message of {n} bytes runs past the end of the packet")
        append((pos, n))
        pos += n
    if pos != end:
        raise MoldError("count_mismatch", f"{end - pos} bytes left after {count} messages")
    return Packet(session, seq, count, blocks, data)


def encode_request(session: str, seq: int, count: int) -> bytes:
    return REQUEST.pack(session_bytes(session), seq, count)


def decode_request(data: bytes) -> tuple[str, int, int]:
    if len(data) != REQUEST.size:
        raise MoldError("bad_request", f"request packet must be 20 bytes, got {len(data)}")
    raw, seq, count = REQUEST.unpack(data)
    return raw.decode("ascii", "replace").rstrip(" "), seq, count


class PacketBuilder:
    """Packs encoded messages into MTU-safe packets and numbers them.

    ``add`` returns a finished packet when the next message would not fit, else None; ``flush`` returns
    the pending packet, if any. ``next_seq`` is the sequence number the next message will get.
    """

    def __init__(self, session: str, *, first_seq: int = 1, max_payload: int = MAX_PAYLOAD) -> None:
        self.session = session
        self._session = session_bytes(session)
        self.next_seq = first_seq
        self.max_payload = max_payload
        self._pending: list[bytes] = []
        self._size = HEADER_SIZE
        self._first = first_seq

    def add(self, message: bytes) -> bytes | None:
        out = None
        need = 2 + len(message)
        if self._pending and self._size + need > self.max_payload:
            out = self.flush()
        if not self._pending:
            self._first = self.next_seq
        self._pending.append(frame(message))
        self._size += need
        self.next_seq += 1
        return out

    def flush(self) -> bytes | None:
        if not self._pending:
            return None
        count = len(self._pending)
        packet = HEADER.pack(self._session, self._first, count) + b"".join(self._pending)
        self._pending.clear()
        self._size = HEADER_SIZE
        return packet

    @property
    def pending(self) -> int:
        return len(self._pending)
