"""One client connection's protocol (pure, sans-I/O, in the style of h11/wsproto).

Everything that decides what a connection may do lives here; the socket adapter (``server``) only moves bytes
and applies what this returns. Nothing here touches a socket, the hub or Redis.

- ``parse_upgrade`` reads the upgrade request's target: the path, ``?format=json``, ``?ticket=``, ``?token=``.
- ``open`` takes the credentials once (a single-use ``ticket``, an ``Authorization: Bearer`` header, or the
  deprecated ``token`` query parameter) and decides who the connection is: a user, or anonymous (prices only).
- An authenticated connection lives as long as its token: ``next_deadline()`` is the token's expiry and
  ``tick(now)`` past it answers ``token_expired`` and closes with 4001, unless a ``Refresh`` message brought a
  newer token of the same user. ``revoke(before)`` closes (4003) a connection whose token was issued before the
  user logged out everywhere.
- ``receive_frame`` / ``receive`` take WebSocket frames / complete messages and return a ``Reply``: messages to
  send, subscription changes for the hub, orders-channel events for the relay, whether to close. Bad input is
  answered with an ``Error`` and leaves the subscription as it was.
- The orders channel is gated here: only an authenticated connection may subscribe, and only to its own user's
  updates. Subscribing is an event (``Reply.orders_subscribe``) for the relay; everything the connection asks
  after it is held until the relay confirms Redis' SUBSCRIBE (``orders_ready``), so the ``Subscribed`` ack means
  no later update can be missed. The held replies are bounded by the rate limit over the relay's confirmation
  timeout (at most ``burst`` + ``max_messages_per_second`` x that timeout).
- Abuse limits (``fanout.limits``): messages per second (an ``Error``), symbols subscribed plus unsubscribed per
  second (a ``symbol_rate_limited`` error, the request refused whole), the size of a message and of its
  fragments so far (close 1009), the number of fragments of one message (close 1009) and fragments per second
  (close 1008). ``closed_for`` says which limit closed the connection, for the adapter's metrics.
- The positions channel (the user's ``AccountUpdate``s) rides the same relay subscription as the orders channel
  (one Redis channel per user carries both): subscribing to either starts it, leaving both ends it. Once it is
  live, ``Reply.account_snapshot`` asks the adapter for the user's current account; account updates that come
  before that snapshot wait for it, and any whose version the connection already has is dropped, so the client
  sees the snapshot first and then every later version once, in order (``account_frame``). After an outage of
  the relay a new snapshot is asked for (updates published meanwhile are not replayed by Redis).
- Order updates are never dropped while the connection lives: ``order_frame`` queues them for the adapter to
  take while it can write (``take_order_frame``); past ``order_queue_max`` unread the connection must go.

States (``ConnectionState``; a call its state does not allow raises ``ClientProtocolError``)::

    CONNECTING --open()--> OPEN --orders subscribe--> AWAITING_ORDERS --orders_ready()--> ORDERS
    ORDERS --orders unsubscribe--> OPEN
    any state --close sent / connection_lost()--> CLOSED
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from sys import intern

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from tickfan_proto import stream_pb2 as pb
from vocab.auth import AuthError, Claims, bearer, default_verifier

from .config import FanoutConfig
from .limits import TokenBucket
from .messages import TRANSITIONS as TRANSITIONS
from .messages import ClientProtocolError as ClientProtocolError
from .messages import ConnectionState as ConnectionState
from .messages import Reply as Reply
from .messages import ResumeRequest as ResumeRequest
from .messages import Subscriptions
from .messages import Upgrade as Upgrade
from .messages import error_message as error_message
from .messages import parse_upgrade as parse_upgrade
from .messages import recovered_message as recovered_message
from .positions import AccountSequence
from .resume import NOT_RECOVERABLE, TokenCodec
from .tiers import BAD_RATE, rate_problem

CHANNELS = ("quotes", "trades", "depth", "bars:1s", "bars:1m", "status")  # per symbol, served by the hub
ORDERS = "orders"  # per user: the authenticated user's own order updates, served from Redis
POSITIONS = "positions"  # per user: the user's cash and positions (AccountUpdate), on the same Redis channel
USER_CHANNELS = (ORDERS, POSITIONS)
ALL_CHANNELS = (*CHANNELS, *USER_CHANNELS)
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_POLICY_VIOLATION = 1008
# why a limit closed a connection (``ClientProtocol.closed_for``; the ``reason`` label of its metric)
TOO_LARGE = "too_large"
TOO_MANY_FRAGMENTS = "too_many_fragments"
FRAGMENT_RATE = "fragment_rate"
CLOSE_TOKEN_EXPIRED = 4001  # the connection's token expired and was not refreshed
CLOSE_TOKEN_REVOKED = 4003  # the user logged out everywhere after the connection's token was issued
PROTOCOL_VERSION = 2  # Subscribed.protocol_version (proto/stream.proto's header says what changed)


class ClientProtocol:
    # slots, and what most connections never use (the fragments' bucket and buffer, the held replies, the order
    # frames' queue, the positions channel's sequence) made on first use: tens of thousands of these live at once
    # (benchmarks/RESULTS.md, "Memory per connection (item 3)")
    __slots__ = ("config", "tokens", "resolve", "verify", "redeem", "orders_enabled", "json_mode",
                 "max_message_bytes", "max_symbols", "order_queue_max", "state", "user", "claims", "orders",
                 "positions", "_account", "subscriptions", "closed", "rate", "burst", "_tokens", "_last",
                 "rate_limited", "max_fragments", "_fragments", "_symbols", "symbol_rate_limited", "closed_for",
                 "_now", "_held", "_order_out", "_parts", "_parts_size", "_parts_text")

    def __init__(self, resolve: Callable[[str], int | None], config: FanoutConfig | None = None, *,
                 json_mode: bool = False, verify: Callable[[str], Claims] | None = None,
                 redeem: Callable[[str], Claims] | None = None, orders_enabled: bool = False,
                 tokens: TokenCodec | None = None) -> None:
        """``resolve``: ticker -> locate (None: unknown). ``verify`` turns a bearer token into its ``Claims`` or
        raises ``AuthError`` (the process's configured verifier by default); ``redeem`` does the same for a
        single-use ticket (None: tickets are refused); ``orders_enabled`` says whether this node serves the orders
        channel at all (it needs Redis); ``tokens`` checks resume tokens (None: every token is not recoverable)."""
        config = config or FanoutConfig()
        self.config = config
        self.tokens = tokens
        self.resolve = resolve
        self.verify = verify or default_verifier().claims
        self.redeem = redeem
        self.orders_enabled = orders_enabled
        self.json_mode = json_mode
        self.max_message_bytes = config.max_message_bytes
        self.max_symbols = config.max_symbols
        self.order_queue_max = config.order_queue_max
        self.state = ConnectionState.CONNECTING
        self.user: str | None = None  # the authenticated user, None when anonymous
        self.claims: Claims | None = None  # what the connection's (latest) token proved
        self.orders = False  # subscribed to the orders channel (as the acks say)
        self.positions = False  # subscribed to the positions channel
        # the positions channel's snapshot and versions (while it is subscribed)
        self._account: AccountSequence | None = None
        self.subscriptions = Subscriptions()  # channel -> {symbol: locate}
        self.closed = False  # no more input is taken (too large, or closed)
        # token bucket: a client may send ``burst`` messages at once, then ``max_messages_per_second``
        self.rate = config.max_messages_per_second
        self.burst = config.burst
        self._tokens: float = self.burst
        self._last = 0.0
        self.rate_limited = 0
        # fragments: at most ``max_fragments`` per message, and a bucket of them per second (empty ones count)
        self.max_fragments = config.max_fragments
        self._fragments: TokenBucket | None = None  # made at the first fragment
        # subscribe churn: distinct symbols per subscribe/unsubscribe, against a bucket of them per second
        self._symbols = TokenBucket(config.max_symbols_per_second, config.symbol_burst)
        self.symbol_rate_limited = 0
        self.closed_for: str | None = None  # the limit that closed this connection (TOO_LARGE, ...), if one did
        self._now = 0.0
        self._held: list[Reply] | None = None  # replies behind an unconfirmed orders subscription, in order
        self._order_out: deque[bytes | str] | None = None  # order frames the adapter has not taken yet
        # a fragmented message being collected: its parts, their size, and whether it is text
        self._parts: list[bytes] | None = None
        self._parts_size = 0
        self._parts_text = False

    def _to(self, new: ConnectionState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise ClientProtocolError(f"illegal connection transition {self.state.value} -> {new.value}")
        self.state = new

    # ------------------------------------------------------------------ the connection's life
    def open(self, authorization: str | None = None, token: str | None = None, ticket: str | None = None) -> Reply:
        """The upgrade request's credentials, once, before any message: a ticket, else the header, else the
        (deprecated) query parameter.

        No credentials: anonymous, silently. Bad ones (malformed, forged, expired, a ticket used before): still
        connected and anonymous (prices only), told at once with an ``Error`` carrying the ``AuthError`` code
        (``invalid_token``, ``token_expired``, ``invalid_ticket``, ``ticket_used``, ``unauthenticated`` for a
        non-Bearer header, ...), so the client can fix its credentials.
        """
        self._to(ConnectionState.OPEN)
        reply = Reply()
        if authorization is None and token is None and ticket is None:
            return reply
        try:
            if ticket is not None:
                if self.redeem is None:
                    raise AuthError("invalid_ticket", "this node takes no tickets")
                claims = self.redeem(ticket)
            else:
                claims = self.verify(bearer(authorization) if authorization is not None else token or "")
        except AuthError as exc:
            reply.messages.append(error_message(exc.code, f"{exc}; connected anonymously (prices only)"[:300]))
            return reply
        self.user, self.claims = claims.user, claims
        return reply

    # ------------------------------------------------------------------ the token's life
    def next_deadline(self) -> float | None:
        """When ``tick`` must next be called (Unix seconds): the token's expiry; None for an anonymous connection."""
        if self.claims is None or self.state is ConnectionState.CLOSED or self.closed:
            return None
        return self.claims.expires

    def tick(self, now: float) -> Reply:
        """Time passed (``now``: Unix seconds): past the token's expiry, answer ``token_expired`` and close 4001."""
        claims = self.claims
        if claims is None or self.closed or now < claims.expires:
            return Reply()
        self.closed = True
        return self._emit(Reply(messages=[error_message(
            "token_expired", "the connection's token expired; reconnect with a new one (or send Refresh in time)")],
            close=(CLOSE_TOKEN_EXPIRED, "token expired")))

    def revoke(self, before: float) -> Reply:
        """The user logged out everywhere at ``before`` (Unix seconds): a connection whose token was issued earlier
        (or says not when) is told (``Revoked``) and closed with 4003; a newer one stays."""
        claims = self.claims
        if claims is None or self.closed or (claims.issued is not None and claims.issued >= before):
            return Reply()
        self.closed = True
        return self._emit(Reply(messages=[pb.ServerMessage(revoked=pb.Revoked(revoked_before_ns=int(before * 1e9)))],
                                close=(CLOSE_TOKEN_REVOKED, "token revoked")))

    def _refresh(self, refresh: pb.Refresh, reply: Reply) -> None:
        """A newer token for the same user: the connection lives until it expires. Refused: an error, and the
        token the connection has still counts (and still expires)."""
        if self.claims is None:
            reply.messages.append(error_message("unauthenticated", "refresh needs an authenticated connection"))
            return
        try:
            claims = self.verify(refresh.token)
        except AuthError as exc:
            reply.messages.append(error_message(exc.code, f"refresh refused: {exc}"[:300]))
            return
        if claims.user != self.user:
            reply.messages.append(error_message("wrong_user", "refresh refused: the token is for another user"))
            return
        self.claims = claims
        reply.messages.append(pb.ServerMessage(refreshed=pb.Refreshed(expires_at_ns=int(claims.expires * 1e9))))

    def connection_lost(self) -> str | None:
        """The socket is gone: drop what is held. Returns the user whose relay subscription to end (if any)."""
        if self.state is not ConnectionState.CLOSED:
            self._to(ConnectionState.CLOSED)
        self.closed = True
        self._held = self._order_out = self._account = self._parts = None
        self._parts_size = 0
        return self.user

    # ------------------------------------------------------------------ input
    def receive_frame(self, payload: bytes, *, text: bool, fin: bool = True, continuation: bool = False,
                      now: float = 0.0) -> Reply:
        """One WebSocket data frame (text or binary, or a continuation of one). A fragmented message is collected
        until its final fragment, and refused as soon as its fragments pass the size limit (never buffered whole),
        the fragment limit or the fragment rate: an empty fragment counts like any other."""
        if continuation or not fin:
            if self.closed:
                return Reply()
            if not continuation:
                self._parts_text = text
            parts = self._parts
            if parts is None:
                parts = self._parts = []
            if len(parts) >= self.max_fragments:
                self._parts, self._parts_size = None, 0
                return self.close_for(TOO_MANY_FRAGMENTS, CLOSE_MESSAGE_TOO_BIG, "too many fragments",
                                       f"a message in more than {self.max_fragments} fragments")
            bucket = self._fragments
            if bucket is None:
                bucket = self._fragments = TokenBucket(self.config.max_fragments_per_second, self.max_fragments)
            if not bucket.take(now):
                self._parts, self._parts_size = None, 0
                return self.close_for(FRAGMENT_RATE, CLOSE_POLICY_VIOLATION, "fragment rate limit",
                                       f"fragments over {bucket.rate:g}/s (burst {self.max_fragments})")
            parts.append(payload)
            self._parts_size += len(payload)
            if self._parts_size > self.max_message_bytes:
                size = self._parts_size
                self._parts, self._parts_size = None, 0
                return self.too_large(size)
            if not fin:
                return Reply()
            payload, text = b"".join(parts), self._parts_text
            self._parts, self._parts_size = None, 0
        if not text:
            return self.receive(payload, now)
        try:
            decoded = payload.decode("utf-8")
        except UnicodeDecodeError:
            return self._emit(Reply(messages=[error_message("bad_message", "text frame is not UTF-8")]))
        return self.receive(decoded, now)

    def receive(self, payload: bytes | str, now: float = 0.0) -> Reply:
        """Handle one client message received at ``now`` (seconds, any monotonic clock)."""
        if self.state is ConnectionState.CONNECTING:
            raise ClientProtocolError("a message before open()")
        if self.closed:
            return Reply()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            self.rate_limited += 1
            return self._emit(Reply(messages=[error_message(
                "rate_limited", f"over {self.rate:g} messages/s (burst {self.burst}); message ignored")]))
        self._tokens -= 1.0
        self._now = now
        size = len(payload.encode() if isinstance(payload, str) else payload)
        if size > self.max_message_bytes:
            return self.too_large(size)
        msg = pb.ClientMessage()
        reply = Reply()
        try:
            if isinstance(payload, str):
                json_format.Parse(payload, msg)
            else:
                msg.ParseFromString(payload)
        except (DecodeError, json_format.ParseError, ValueError) as exc:
            reply.messages.append(error_message("bad_message", f"not a ClientMessage: {exc}"[:300]))
            return self._emit(reply)
        kind = msg.WhichOneof("kind")
        if kind == "subscribe":
            self._subscribe(msg.subscribe, reply)
        elif kind == "unsubscribe":
            self._unsubscribe(msg.unsubscribe, reply)
        elif kind == "ping":
            reply.messages.append(pb.ServerMessage(pong=pb.Pong(nonce=msg.ping.nonce)))
        elif kind == "refresh":
            self._refresh(msg.refresh, reply)
        else:
            reply.messages.append(error_message("bad_message", "ClientMessage has none of subscribe, "
                                                               "unsubscribe, ping, refresh"))
        return self._emit(reply)

    def too_large(self, size: int) -> Reply:
        """A message (or the fragments of one so far) over the limit: answer, then close with 1009."""
        return self.close_for(TOO_LARGE, CLOSE_MESSAGE_TOO_BIG, "message too big",
                               f"message of {size} bytes is over the {self.max_message_bytes}-byte limit")

    def close_for(self, limit: str, code: int, reason: str, message: str) -> Reply:
        """A limit closes the connection: an ``Error`` (code ``limit``) saying why, then the close. The adapter
        calls it too, for the limits it holds across connections (authenticated connections per user)."""
        if self.closed:
            return Reply()
        self.closed = True
        self.closed_for = limit
        return self._emit(Reply(messages=[error_message(limit, message)], close=(code, reason)))

    def _spend_symbols(self, symbols: list[str], reply: Reply) -> bool:
        """Charge a subscribe/unsubscribe its distinct symbols; False (and an error) when the budget is short."""
        if not symbols or self._symbols.take(self._now, len(symbols)):
            return True
        self.symbol_rate_limited += 1
        reply.messages.append(error_message(
            "symbol_rate_limited", f"{len(symbols)} symbols asked: over {self._symbols.rate:g} symbols/s "
                                   f"subscribed or unsubscribed (burst {self._symbols.burst:g}); request ignored"))
        return False

    # ------------------------------------------------------------------ output gate
    def _emit(self, reply: Reply) -> Reply:
        """What the adapter may act on now: nothing while an orders subscription is unconfirmed (held, in order);
        for an orders subscription, only the relay event (the rest, with its ack, waits for ``orders_ready``)."""
        state = self.state
        if state is ConnectionState.AWAITING_ORDERS:
            self._hold(reply)
            return Reply()
        if state is ConnectionState.CLOSED:
            return Reply()
        if reply.orders_subscribe is not None:
            self._to(ConnectionState.AWAITING_ORDERS)
            user, reply.orders_subscribe = reply.orders_subscribe, None
            self._hold(reply)
            return Reply(orders_subscribe=user)
        if reply.orders_unsubscribe is not None and state is ConnectionState.ORDERS:
            self._to(ConnectionState.OPEN)
        if reply.close is not None:
            self._to(ConnectionState.CLOSED)
        return reply

    def _hold(self, reply: Reply) -> None:
        if self._held is None:
            self._held = []
        self._held.append(reply)

    def orders_ready(self, live: bool) -> list[Reply]:
        """The relay confirmed the user's channel (``live``), or cannot now (an ``orders_unavailable`` frame
        follows): release the held replies, in order, up to the next orders subscription (held again). When the
        channel is live again after an outage, the ``Subscribed`` ack is re-sent to say so."""
        state = self.state
        if state is ConnectionState.CLOSED:
            return []
        if state is not ConnectionState.AWAITING_ORDERS:
            if state is ConnectionState.ORDERS and live and (self.orders or self.positions):
                return [Reply(messages=[self.subscribed_message()], account_snapshot=self._snapshot_wanted())]
            return []
        self._to(ConnectionState.ORDERS)
        held, self._held = self._held or [], None
        out: list[Reply] = []
        for i, reply in enumerate(held):
            if self.state is ConnectionState.AWAITING_ORDERS:
                for later in held[i:]:  # a later orders subscription: the rest waits for its confirmation
                    self._hold(later)
                break
            released = self._emit(reply)
            if released != Reply():
                out.append(released)
        if live and self.positions and self.state is ConnectionState.ORDERS:
            out.append(Reply(account_snapshot=self._snapshot_wanted()))  # after the ack
        return out

    def order_frame(self, frame: bytes | str) -> str | None:
        """One orders-channel frame (an update or an orders error) for this connection, queued for the adapter
        (``take_order_frame``). Returns why the connection must be dropped when ``order_queue_max`` frames are
        already unread: an order update is never silently skipped."""
        if self.state is ConnectionState.CLOSED:
            return None
        queue = self._order_out
        if queue is None:
            queue = self._order_out = deque()
        elif len(queue) >= self.order_queue_max:
            return f"over {self.order_queue_max} order updates unread"
        queue.append(frame)
        return None

    def _snapshot_wanted(self) -> str | None:
        """The user whose account to fetch for a (new) positions snapshot, or None when positions is not wanted."""
        if not self.positions:
            return None
        self._account_sequence().await_snapshot()
        return self.user

    def _account_sequence(self) -> AccountSequence:
        if self._account is None:
            self._account = AccountSequence(self.order_queue_max)
        return self._account

    def account_frame(self, frame: bytes | str, version: int, *, snapshot: bool = False) -> str | None:
        """One account update (or, with ``snapshot``, the current account) for the positions channel: queued with
        the order frames, in version order, each version once, nothing before the snapshot. Returns why the
        connection must be dropped, as ``order_frame`` does."""
        if self.state is ConnectionState.CLOSED or not self.positions:
            return None
        frames = self._account_sequence().take(frame, version, snapshot=snapshot)
        if isinstance(frames, str):
            return frames
        for f in frames:
            drop = self.order_frame(f)
            if drop is not None:
                return drop
        return None

    def take_order_frame(self) -> bytes | str | None:
        """The oldest order frame not yet written, or None."""
        queue = self._order_out
        frame = queue.popleft() if queue else None
        if not queue:
            self._order_out = None  # most connections have no order frames most of the time
        return frame

    @property
    def order_frames_waiting(self) -> int:
        return len(self._order_out) if self._order_out is not None else 0

    # ------------------------------------------------------------------ subscriptions
    def _channels(self, requested: list[str], reply: Reply) -> list[str] | None:
        channels = requested or ["quotes"]
        bad = [c for c in channels if c not in ALL_CHANNELS]
        if bad:
            reply.messages.append(error_message(
                "unknown_channel", f"unknown channel(s) {', '.join(bad)}; channels are {', '.join(ALL_CHANNELS)}"))
            return None
        return list(dict.fromkeys(channels))

    def _subscribe(self, sub: pb.Subscribe, reply: Reply) -> None:
        if sub.HasField("max_rate_hz"):
            problem = rate_problem(sub.max_rate_hz)
            if problem is not None:
                reply.messages.append(error_message(BAD_RATE, problem + "; request ignored"))
                return
        channels = self._channels(list(sub.channels), reply)
        if channels is None:
            return
        # orders or positions alone: its symbols are ignored, and cost nothing
        mine = [c for c in channels if c in USER_CHANNELS]
        wanted = [] if len(mine) == len(channels) else list(dict.fromkeys(s.strip().upper() for s in sub.symbols))
        if not self._spend_symbols(wanted, reply):
            return
        if mine:
            # refused as a whole, like an unknown channel: nothing else in the message changes anything
            if self.user is None:
                reply.messages.append(error_message(
                    "unauthenticated", f"the {mine[0]} channel needs credentials on the WebSocket upgrade (a "
                                       "ticket from POST /v1/ws-ticket, or an Authorization: Bearer header)"))
                return
            if not self.orders_enabled:
                reply.messages.append(error_message(
                    "orders_unavailable", f"this node does not serve the {mine[0]} channel"))
                return
            relayed = self.orders or self.positions
            for channel in mine:
                channels.remove(channel)
            if ORDERS in mine:
                self.orders = True
            if POSITIONS in mine and not self.positions:
                self.positions = True
                if relayed and self.state is ConnectionState.ORDERS:
                    reply.account_snapshot = self._snapshot_wanted()  # the relay is live: fetch it now
                else:
                    self._account_sequence().await_snapshot()  # orders_ready asks for it
            if not relayed:
                reply.orders_subscribe = self.user  # the owner's channel only: the user the token proved
            if not channels:  # user channels alone: symbols are ignored
                self._acknowledge(sub, reply)
                return
        known: list[tuple[str, int]] = []
        unknown: list[str] = []
        for sym in wanted:
            loc = self.resolve(sym)
            if loc is None:
                unknown.append(sym)
            else:
                known.append((intern(sym), loc))  # one str per ticker kept, whatever the connections
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
            if new:
                current = self._symbols_of(channel)
                for s, loc in new:
                    current[s] = loc
                reply.subscribed[channel] = [loc for _, loc in new]
        if sub.resume_token:
            self._resume(sub.resume_token, reply)
        self._acknowledge(sub, reply)

    def _acknowledge(self, sub: pb.Subscribe, reply: Reply) -> None:
        """A Subscribe taken: its cap (if it named one) applies before the ack, which says the tier it gives."""
        if sub.HasField("max_rate_hz"):
            reply.max_rate_hz = sub.max_rate_hz
        reply.messages.append(self.subscribed_message())

    def _resume(self, token: str, reply: Reply) -> None:
        """Restore a valid token's subscriptions and ask the adapter to replay its trades; any other token (forged,
        foreign, oversized, unreadable) gets one ``not_recoverable`` verdict, after the ack."""
        state = self.tokens.decode(token) if self.tokens is not None else None
        if state is None:
            reply.after.append(recovered_message("", NOT_RECOVERABLE, reason="the resume token is not one this "
                                                 "service issued (forged, foreign, malformed or too long)"))
            return
        # restoring is subscribing: the token's symbols spend the same per-second budget (a refusal is the usual
        # symbol_rate_limited error, and the client may resume again later with the same token)
        if not self._spend_symbols(list(state.symbols), reply):
            return
        trades: dict[int, tuple[str, int]] = {}
        channels = self.tokens.channels if self.tokens is not None else ()
        for sym, (bits, seen) in state.symbols.items():
            sym, loc = intern(sym), self.resolve(sym)
            if loc is None:
                if bits & 1 << channels.index("trades"):
                    reply.after.append(recovered_message(sym, NOT_RECOVERABLE, reason="unknown symbol"))
                continue
            for i, channel in enumerate(channels):
                if not bits & 1 << i:
                    continue
                current = self.subscriptions[channel]
                if sym not in current:
                    if len(current) >= self.max_symbols:
                        continue
                    self._symbols_of(channel)[sym] = loc
                    reply.subscribed.setdefault(channel, []).append(loc)
                if channel == "trades":
                    trades[loc] = (sym, seen)
        reply.resume = ResumeRequest(state.feed_epoch, state.node_epoch, trades)

    def _unsubscribe(self, unsub: pb.Unsubscribe, reply: Reply) -> None:
        channels = self._channels(list(unsub.channels), reply)
        if channels is None:
            return
        mine = [c for c in channels if c in USER_CHANNELS]
        wanted = [] if len(mine) == len(channels) else list(dict.fromkeys(x.strip().upper() for x in unsub.symbols))
        if not self._spend_symbols(wanted, reply):
            return
        if mine:
            relayed = self.orders or self.positions
            for channel in mine:
                channels.remove(channel)
            if ORDERS in mine:
                self.orders = False
            if POSITIONS in mine:
                self.positions = False
                self._account = None
            if relayed and not (self.orders or self.positions):
                reply.orders_unsubscribe = self.user
        for channel in channels:
            current = self.subscriptions.get(channel, {})
            gone = [current.pop(s) for s in wanted if s in current]
            if gone:
                reply.unsubscribed[channel] = gone
            if not current:
                self.subscriptions.pop(channel, None)
        reply.messages.append(self.subscribed_message())

    def _symbols_of(self, channel: str) -> dict[str, int]:
        """``channel``'s subscriptions, to add to (made on first use; an unsubscribe that empties it drops it)."""
        return self.subscriptions.setdefault(channel, {})

    def subscribed_message(self) -> pb.ServerMessage:
        """The full current subscription (also re-sent when the orders channel is live again after an outage)."""
        symbols = sorted(set().union(*(set(v) for v in self.subscriptions.values())))
        channels = [c for c in CHANNELS if self.subscriptions[c]] + ([ORDERS] if self.orders else []) \
            + ([POSITIONS] if self.positions else [])
        return pb.ServerMessage(subscribed=pb.Subscribed(symbols=symbols, channels=channels,
                                                         protocol_version=PROTOCOL_VERSION))
