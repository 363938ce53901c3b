"""A server's WebSocket frames, made once (pure): the flush writes them straight to each client's transport.

A frame from server to client is never masked (RFC 6455, 5.1), so its bytes are the same for every client it
goes to: the opcode, the payload's length, the payload. The flush frames each message itself and hands the
bytes to the connection's stream transport, which writes them at once when nothing is queued (one system
call) and queues them in order behind anything that is; picows writes its own frames (pings, pongs, closes,
and every other message of ours) through the same transport, so the stream stays one valid sequence of frames.
"""

from __future__ import annotations

from collections.abc import Iterable

OP_TEXT = 0x81  # FIN + text
OP_BINARY = 0x82  # FIN + binary


def frame_header(opcode: int, n: int) -> bytes:
    """The header of an unmasked frame with ``n`` bytes of payload."""
    if n < 126:
        return bytes((opcode, n))
    if n < 1 << 16:
        return bytes((opcode, 126)) + n.to_bytes(2, "big")
    return bytes((opcode, 127)) + n.to_bytes(8, "big")


class _Headers(dict[int, bytes]):
    """Payload length -> frame header, memoised (``__missing__``: a hit is a plain dict lookup, in C)."""

    __slots__ = ("opcode",)

    def __init__(self, opcode: int) -> None:
        super().__init__()
        self.opcode = opcode

    def __missing__(self, n: int) -> bytes:
        h = frame_header(self.opcode, n)
        if len(self) < 1 << 16:  # lengths are bounded by frame sizes in practice; the bound keeps it so
            self[n] = h
        return h


BINARY_HEADERS = _Headers(OP_BINARY)
TEXT_HEADERS = _Headers(OP_TEXT)


def ws_frame(message: bytes | str) -> bytes:
    """One whole server frame: binary for bytes, text (UTF-8) for a str."""
    if isinstance(message, str):
        data = message.encode()
        return TEXT_HEADERS[len(data)] + data
    return BINARY_HEADERS[len(message)] + message


def ws_frames(messages: Iterable[bytes | str]) -> tuple[bytes, int]:
    """Several messages' frames as one buffer (one write), and their payloads' bytes."""
    parts = []
    payload = 0
    for m in messages:
        data = m.encode() if isinstance(m, str) else m
        payload += len(data)
        parts.append((TEXT_HEADERS if isinstance(m, str) else BINARY_HEADERS)[len(data)])
        parts.append(data)
    return b"".join(parts), payload
