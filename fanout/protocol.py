"""One client connection's protocol state (pure, sans-I/O, in the style of h11/wsproto).

``open`` takes the upgrade request's credentials once (an ``Authorization: Bearer`` header or a ``token`` query
parameter) and decides who the connection is: a user, or anonymous. ``receive`` takes one complete WebSocket
message (bytes in binary mode, str in JSON mode) and returns a ``Reply``: messages to send, subscription changes
for the hub to apply, the orders-channel events for the adapter to act on, and whether to close. Nothing here
touches a socket or Redis. Bad input is answered with an ``Error`` and leaves the subscription as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from tickfan_proto import stream_pb2 as pb
from vocab.auth import AuthError, bearer, verify_token

CHANNELS = ("quotes", "trades", "depth")  # per symbol, served by the hub
ORDERS = "orders"  # per user: the authenticated user's own order updates, served from Redis
ALL_CHANNELS = (*CHANNELS, ORDERS)
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_POLICY_VIOLATION = 1008


@dataclass
class Reply:
    messages: list[pb.ServerMessage] = field(default_factory=list)
    # channel -> locates newly added / removed by this message
    subscribed: dict[str, list[int]] = field(default_factory=dict)
    unsubscribed: dict[str, list[int]] = field(default_factory=dict)
    # the orders channel: start / stop delivering this user's order updates to this connection
    orders_subscribe: str | None = None
    orders_unsubscribe: str | None = None
    close: tuple[int, str] | None = None


def error_message(code: str, message: str, symbols: list[str] | None = None) -> pb.ServerMessage:
    return pb.ServerMessage(error=pb.Error(code=code, message=message, symbols=symbols or []))


class ClientProtocol:
    def __init__(self, resolve: Callable[[str], int | None], *, json_mode: bool = False,
                 max_message_bytes: int = 65_536, max_symbols: int = 1_000,
                 max_messages_per_second: float = 20.0, burst: int = 40,
                 verify: Callable[[str], str] = verify_token, orders_enabled: bool = False) -> None:
        """``verify`` turns a bearer token into a user id or raises ``AuthError``; ``orders_enabled`` says whether
        this node serves the orders channel at all (it needs Redis)."""
        self.resolve = resolve
        self.verify = verify
        self.orders_enabled = orders_enabled
        self.user: str | None = None  # the authenticated user, None when anonymous
        self.orders = False  # subscribed to the orders channel
        self.json_mode = json_mode
        self.max_message_bytes = max_message_bytes
        self.max_symbols = max_symbols
        # channel -> {symbol: locate}
        self.subscriptions: dict[str, dict[str, int]] = {c: {} for c in CHANNELS}
        self.closed = False
        # token bucket: a client may send ``burst`` messages at once, then ``max_messages_per_second``
        self.rate = max_messages_per_second
        self.burst = burst
        self._tokens = float(burst)
        self._last = 0.0
        self.rate_limited = 0

    def open(self, authorization: str | None = None, token: str | None = None) -> Reply:
        """The upgrade request's credentials, once, before any message. The header wins over the query parameter.

        No credentials: anonymous, silently. Bad ones (malformed, forged, expired): still connected and anonymous
        (prices only), told at once with an ``Error`` carrying the ``AuthError`` code (``invalid_token``,
        ``token_expired``, ``unauthenticated`` for a non-Bearer header), so the client can fix its token.
        """
        reply = Reply()
        if authorization is None and token is None:
            return reply
        try:
            self.user = self.verify(bearer(authorization) if authorization is not None else token or "")
        except AuthError as exc:
            reply.messages.append(error_message(exc.code, f"{exc}; connected anonymously (prices only)"[:300]))
        return reply

    def receive(self, payload: bytes | str, now: float = 0.0) -> Reply:
        """Handle one client message received at ``now`` (seconds, any monotonic clock)."""
        reply = Reply()
        if self.closed:
            return reply
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            self.rate_limited += 1
            reply.messages.append(error_message(
                "rate_limited", f"over {self.rate:g} messages/s (burst {self.burst}); message ignored"))
            return reply
        self._tokens -= 1.0
        size = len(payload.encode() if isinstance(payload, str) else payload)
        if size > self.max_message_bytes:
            return self.too_large(size)
        msg = pb.ClientMessage()
        try:
            if isinstance(payload, str):
                json_format.Parse(payload, msg)
            else:
                msg.ParseFromString(payload)
        except (DecodeError, json_format.ParseError, ValueError) as exc:
            reply.messages.append(error_message("bad_message", f"not a ClientMessage: {exc}"[:300]))
            return reply
        kind = msg.WhichOneof("kind")
        if kind == "subscribe":
            self._subscribe(msg.subscribe, reply)
        elif kind == "unsubscribe":
            self._unsubscribe(msg.unsubscribe, reply)
        elif kind == "ping":
            reply.messages.append(pb.ServerMessage(pong=pb.Pong(nonce=msg.ping.nonce)))
        else:
            reply.messages.append(error_message("bad_message", "ClientMessage has none of subscribe, "
                                                               "unsubscribe, ping"))
        return reply

    def too_large(self, size: int) -> Reply:
        """A message (or the fragments of one so far) over the limit: answer, then close with 1009.

        The adapter calls this directly for a fragmented message as soon as its fragments pass the limit,
        so an oversized message is never buffered whole.
        """
        reply = Reply()
        if self.closed:
            return reply
        reply.messages.append(error_message(
            "too_large", f"message of {size} bytes is over the {self.max_message_bytes}-byte limit"))
        reply.close = (CLOSE_MESSAGE_TOO_BIG, "message too big")
        self.closed = True
        return reply

    def _channels(self, requested: list[str], reply: Reply) -> list[str] | None:
        channels = requested or ["quotes"]
        bad = [c for c in channels if c not in ALL_CHANNELS]
        if bad:
            reply.messages.append(error_message(
                "unknown_channel", f"unknown channel(s) {', '.join(bad)}; channels are {', '.join(ALL_CHANNELS)}"))
            return None
        return list(dict.fromkeys(channels))

    def _subscribe(self, sub: pb.Subscribe, reply: Reply) -> None:
        channels = self._channels(list(sub.channels), reply)
        if channels is None:
            return
        if ORDERS in channels:
            # refused as a whole, like an unknown channel: nothing else in the message changes anything
            if self.user is None:
                reply.messages.append(error_message(
                    "unauthenticated", "the orders channel needs a bearer token (Authorization header or "
                                       "`token` query parameter on the WebSocket upgrade)"))
                return
            if not self.orders_enabled:
                reply.messages.append(error_message(
                    "orders_unavailable", "this node does not serve the orders channel"))
                return
            channels.remove(ORDERS)
            if not self.orders:
                self.orders = True
                reply.orders_subscribe = self.user
            if not channels:  # orders alone: symbols are ignored
                reply.messages.append(self.subscribed_message())
                return
        wanted = list(dict.fromkeys(s.strip().upper() for s in sub.symbols))
        known: list[tuple[str, int]] = []
        unknown: list[str] = []
        for sym in wanted:
            loc = self.resolve(sym)
            if loc is None:
                unknown.append(sym)
            else:
                known.append((sym, loc))
        if unknown:
            reply.messages.append(error_message("unknown_symbol", f"unknown symbol(s): {', '.join(unknown)}",
                                                unknown))
        for channel in channels:
            current = self.subscriptions[channel]
            new = [(s, loc) for s, loc in known if s not in current]
            if len(current) + len(new) > self.max_symbols:
                reply.messages.append(error_message(
                    "too_many_symbols", f"at most {self.max_symbols} symbols per channel; "
                                        f"{len(current)} already on {channel!r}", [s for s, _ in new]))
                continue
            for s, loc in new:
                current[s] = loc
            if new:
                reply.subscribed[channel] = [loc for _, loc in new]
        reply.messages.append(self.subscribed_message())

    def _unsubscribe(self, unsub: pb.Unsubscribe, reply: Reply) -> None:
        channels = self._channels(list(unsub.channels), reply)
        if channels is None:
            return
        if ORDERS in channels:
            channels.remove(ORDERS)
            if self.orders:
                self.orders = False
                reply.orders_unsubscribe = self.user
        for channel in channels:
            current = self.subscriptions[channel]
            gone = [current.pop(s) for s in dict.fromkeys(x.strip().upper() for x in unsub.symbols)
                    if s in current]
            if gone:
                reply.unsubscribed[channel] = gone
        reply.messages.append(self.subscribed_message())

    def subscribed_message(self) -> pb.ServerMessage:
        """The full current subscription (also re-sent when the orders channel is live again after an outage)."""
        symbols = sorted(set().union(*(set(v) for v in self.subscriptions.values())))
        channels = [c for c in CHANNELS if self.subscriptions[c]] + ([ORDERS] if self.orders else [])
        return pb.ServerMessage(subscribed=pb.Subscribed(symbols=symbols, channels=channels))
