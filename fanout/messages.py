"""The values of the client protocol that need no connection state: the upgrade request's target, errors and
resume verdicts, what the protocol core hands its adapter (``Reply``, ``ResumeRequest``), the connection's states
and their transitions, and the shape of its subscriptions (``Subscriptions``). Split from ``fanout.protocol``,
which re-exports them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import cast
from urllib.parse import parse_qs, urlsplit

from tickfan_proto import stream_pb2 as pb


def recovered_message(symbol: str, verdict: str, *, missing: tuple[int, int] | None = None,
                      epoch_changed: bool = False, reason: str = "") -> pb.ServerMessage:
    first, last = missing or (0, 0)
    return pb.ServerMessage(recovered=pb.Recovered(
        symbol=symbol, verdict=verdict, missing_from_trade_seq=first, missing_to_trade_seq=last,
        epoch_changed=epoch_changed, reason=reason))


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What the upgrade request's target asks for."""

    json_mode: bool
    token: str | None  # deprecated: tokens in URLs end up in logs; use a ticket or the Authorization header
    ticket: str | None = None


def parse_upgrade(target: str, path: str) -> Upgrade | None:
    """The request target (``/v1/stream?format=json&token=...``) of an upgrade; None when not ``path`` (404)."""
    url = urlsplit(target)
    if url.path != path:
        return None
    query = parse_qs(url.query, keep_blank_values=True)
    return Upgrade(json_mode=query.get("format", ["protobuf"])[0] == "json", token=query.get("token", [None])[0],
                   ticket=query.get("ticket", [None])[0])


def error_message(code: str, message: str, symbols: list[str] | None = None) -> pb.ServerMessage:
    return pb.ServerMessage(error=pb.Error(code=code, message=message, symbols=symbols or []))


@dataclass
class Reply:
    messages: list[pb.ServerMessage] = field(default_factory=list)
    # channel -> locates newly added / removed by this message
    subscribed: dict[str, list[int]] = field(default_factory=dict)
    unsubscribed: dict[str, list[int]] = field(default_factory=dict)
    # the orders channel: start / stop delivering this user's order updates to this connection
    orders_subscribe: str | None = None
    orders_unsubscribe: str | None = None
    # the positions channel is live: fetch this user's current account for the snapshot (``account_frame``)
    account_snapshot: str | None = None
    close: tuple[int, str] | None = None
    # a Subscribe with a valid resume token: what the adapter replays (after the snapshots)
    resume: ResumeRequest | None = None
    # messages for after the snapshots (a resume's verdicts that need no replay)
    after: list[pb.ServerMessage] = field(default_factory=list)
    # a Subscribe's max_rate_hz (0: no cap), for the adapter's conflation tiers (``fanout.tiers``) before the ack
    max_rate_hz: float | None = None


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """What a valid token asks the adapter to replay: per locate of the trades channel, (ticker, the last
    trade_seq the old connection was sent), and the epochs the token names."""

    feed_epoch: int
    node_epoch: int
    trades: dict[int, tuple[str, int]]


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"            # upgraded; credentials not taken yet
    OPEN = "open"                        # prices; the orders channel not delivered
    AWAITING_ORDERS = "awaiting_orders"  # orders subscription sent to the relay, unconfirmed: replies held
    ORDERS = "orders"                    # prices and the user's order updates
    CLOSED = "closed"                    # close sent or connection lost: nothing more in or out


_S = ConnectionState
TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    _S.CONNECTING: frozenset({_S.OPEN, _S.CLOSED}),
    _S.OPEN: frozenset({_S.AWAITING_ORDERS, _S.CLOSED}),
    _S.AWAITING_ORDERS: frozenset({_S.ORDERS, _S.CLOSED}),
    _S.ORDERS: frozenset({_S.OPEN, _S.CLOSED}),
    _S.CLOSED: frozenset(),
}


class ClientProtocolError(Exception):
    """The protocol was driven in a way its state does not allow (a bug in the adapter, h11's LocalProtocolError)."""


class Subscriptions(dict[str, dict[str, int]]):
    """channel -> {symbol: locate}, holding a channel only while it has a symbol: a channel not subscribed reads as
    an empty mapping that refuses writes (``ClientProtocol._symbols_of`` makes the one to add to)."""

    __slots__ = ()

    def __missing__(self, channel: str) -> dict[str, int]:
        return _NO_SYMBOLS


_NO_SYMBOLS = cast(dict[str, int], MappingProxyType({}))
