"""The client protocol's hostile-input oracle, shared by the property tests and the fuzz target (issue 10).

``check(p, frame, now, user)`` feeds one WebSocket frame to a ``ClientProtocol`` and asserts the contract: it
never raises; what it answers can be encoded in both wire formats; a complete message is answered (a pong, a
``Subscribed`` ack, an error, or a close); anything that is not a success is an ``Error``; the subscription
changes only with an ack, and only to known symbols within the caps; the user never changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from fanout.config import FanoutConfig
from fanout.protocol import CHANNELS, ClientProtocol, ConnectionState, Reply
from vocab.auth import Claims

KNOWN = {"AAPL": 1, "TSLA": 2, "MSFT": 3}
CONFIG = FanoutConfig(max_symbols=2, max_message_bytes=8192, max_fragments=8, symbol_burst=5000,
                      max_symbols_per_second=100)


@dataclass(frozen=True)
class Frame:
    payload: bytes
    text: bool
    fin: bool = True
    continuation: bool = False


def whole(payload: bytes | str) -> Frame:
    return Frame(payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload,
                 isinstance(payload, str))


def state_of(p: ClientProtocol) -> tuple[Any, ...]:
    return copy.deepcopy(p.subscriptions), p.orders, p.user


def deliver(p: ClientProtocol, frame: Frame, now: float) -> list[Reply]:
    """What the adapter acts on for one frame: the reply, and when it subscribes the orders channel, what the
    relay's confirmation releases."""
    reply = p.receive_frame(frame.payload, text=frame.text, fin=frame.fin, continuation=frame.continuation, now=now)
    replies = [reply]
    if reply.orders_subscribe is not None:
        assert reply.orders_subscribe == p.user  # only ever the connection's own user
        replies += p.orders_ready(True)
    return replies


def check(p: ClientProtocol, frame: Frame, now: float, user: str | None) -> None:
    before = state_of(p)
    was_closed = p.closed
    replies = deliver(p, frame, now)
    out = [m for r in replies for m in r.messages]
    for m in out:  # whatever is answered can be written in either wire format
        m.SerializeToString()
        json_format.MessageToJson(m, indent=None)
    kinds = [m.WhichOneof("kind") for m in out]
    closes = [r.close for r in replies if r.close is not None]
    if was_closed:
        assert not out and not closes  # nothing more in or out
    elif frame.fin:  # a whole message, or the last fragment of one
        assert out or closes, f"a complete message got no answer: {frame!r}"
    if out and "subscribed" not in kinds and "pong" not in kinds:
        assert "error" in kinds
    if "subscribed" not in kinds or closes:
        assert state_of(p) == before, f"state changed without an ack: {frame!r}"
    assert p.user == user
    for chan, subs in p.subscriptions.items():
        assert chan in CHANNELS and len(subs) <= CONFIG.max_symbols
        assert all(KNOWN.get(s) == loc for s, loc in subs.items())
    assert not p.orders or (user is not None)
    assert len(p._parts or ()) <= CONFIG.max_fragments  # None: no fragmented message being collected
    assert p.state in (ConnectionState.OPEN, ConnectionState.ORDERS, ConnectionState.CLOSED)


def fresh(user: str | None) -> ClientProtocol:
    p = ClientProtocol(KNOWN.get, CONFIG, verify=lambda token: Claims(token, float("inf")), orders_enabled=True)
    p.open(token=user)
    return p


