"""Fuzz target: the WebSocket client protocol (``fanout.protocol.ClientProtocol``), frame by frame.

``python -m tests.fuzz.run --seconds 15 client_protocol``. The input is a connection: its first byte picks
anonymous or authenticated, then frames follow, each ``[flags][length][payload]``: flags bit 0 text, bit 1 fin,
bit 2 continuation, bits 3-7 the seconds since the previous frame in eighths; the length is one byte. Every frame
goes through ``tests.fanout.hostile.check``: never raises, answers a complete message, an error for anything that
is not a success, the state changed only with an ack, the user never.
"""

from __future__ import annotations

from google.protobuf import json_format

from tests.fanout.hostile import Frame, check, fresh
from tests.fuzz.harness import fuzz
from tickfan_proto import stream_pb2 as pb


def frames(data: bytes) -> list[tuple[Frame, float]]:
    out: list[tuple[Frame, float]] = []
    i = 0
    while i + 2 <= len(data):
        flags, length = data[i], data[i + 1]
        payload = data[i + 2:i + 2 + length]
        i += 2 + length
        out.append((Frame(payload, bool(flags & 1), bool(flags & 2), bool(flags & 4)), (flags >> 3) / 8))
    return out


def one_input(data: bytes) -> None:
    if not data:
        return
    user = "alice" if data[0] & 1 else None
    p = fresh(user)
    now = 0.0
    for frame, dt in frames(data[1:]):
        now += dt
        check(p, frame, now, user)


def _frame(payload: bytes | str, *, fin: bool = True, continuation: bool = False, dt: int = 1) -> bytes:
    raw = payload.encode() if isinstance(payload, str) else payload
    flags = (isinstance(payload, str)) | fin << 1 | continuation << 2 | dt << 3
    return bytes([flags, len(raw)]) + raw


_SUB = pb.ClientMessage(subscribe=pb.Subscribe(symbols=["AAPL", "TSLA"], channels=["quotes", "depth"]))
_ORDERS = pb.ClientMessage(subscribe=pb.Subscribe(channels=["orders"]))
_UNSUB = pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=["AAPL"], channels=["depth"]))
_PING = pb.ClientMessage(ping=pb.Ping(nonce=7)).SerializeToString()

SEEDS: list[bytes] = [
    b"\x00" + _frame(_SUB.SerializeToString()) + _frame(_UNSUB.SerializeToString()),
    b"\x01" + _frame(json_format.MessageToJson(_ORDERS, indent=None)) + _frame(_SUB.SerializeToString()),
    b"\x00" + _frame(_PING[:2], fin=False) + _frame(b"", fin=False, continuation=True)
    + _frame(_PING[2:], continuation=True),
    b"\x01" + _frame('{"subscribe": {"symbols": ["msft", " aapl "], "channels": ["trades", "orders"]}}', dt=0)
    + _frame('{"unsubscribe": {"symbols": ["MSFT"]}}', dt=0) + _frame("[[[[[[1]]]]]]", dt=0),
]

if __name__ == "__main__":
    fuzz(one_input)
