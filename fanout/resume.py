"""Resume after a reconnect (pure): the signed token, and the plan of what to replay.

The token is what a client keeps (from ``Subscribed`` and each ``Heartbeat``) and sends back in ``Subscribe``
after a reconnect. It is opaque to the client and names:

- the feed epoch: the trade_seq numbering it refers to (one ``Books``' life; a Redis publisher's, shared by
  every node that reads it), and the node epoch (the fan-out process that issued it);
- the subscriptions to restore (per symbol, a bit per channel), and, per symbol of the trades channel, the
  last ``trade_seq`` the connection was sent.

Format (then base64url, no padding): version byte, feed epoch (8 bytes), node epoch (8), a varint count, per
symbol (ticker length, ticker, channel bits, varint trade_seq), then the first 16 bytes of
HMAC-SHA256(key, everything before). At most ``max_symbols`` symbols (the rest of a larger subscription is
not in the token), so a token is at most ``max_token_chars(max_symbols)`` characters. Anything else (too
long, not base64url, a bad MAC: forged, or signed with another key: foreign, a version or channel this
node does not know) decodes to None: the caller answers ``not_recoverable``, never an error.

The key must be the same on every node behind one load balancer (a client reconnects wherever it lands), so a
random per-process key is not enough: ``resume_key`` takes the configured secret, else ``TICKFAN_RESUME_SECRET``,
else derives one from ``TICKFAN_JWT_SECRET`` (HMAC with a label of its own, so a resume token can never be a
JWT signature); only with none of them is it random (resume then works only on the node that issued the
token, within its life).

``plan_replay`` decides, for one symbol, which prints to replay and what could not be: pure arithmetic on
trade_seq numbers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .encode import varint

TOKEN_VERSION = 1
MAC_BYTES = 16
RESUME_SECRET_ENV = "TICKFAN_RESUME_SECRET"
JWT_SECRET_ENV = "TICKFAN_JWT_SECRET"
_LABEL = b"tickfan resume token v1"
MAX_TICKER = 16

COMPLETE = "complete"
PARTIAL = "partial"
NOT_RECOVERABLE = "not_recoverable"


def resume_key(configured: str = "", environ: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """(key, where it came from): the configured secret, ``TICKFAN_RESUME_SECRET``, one derived from
    ``TICKFAN_JWT_SECRET``, or (none of them) a random key good for this process only."""
    env = os.environ if environ is None else environ
    if configured:
        return hmac.new(configured.encode(), _LABEL, hashlib.sha256).digest(), "configured"
    if env.get(RESUME_SECRET_ENV):
        return hmac.new(env[RESUME_SECRET_ENV].encode(), _LABEL, hashlib.sha256).digest(), RESUME_SECRET_ENV
    if env.get(JWT_SECRET_ENV):
        return hmac.new(env[JWT_SECRET_ENV].encode(), _LABEL, hashlib.sha256).digest(), JWT_SECRET_ENV
    return secrets.token_bytes(32), "random (this process only)"


@dataclass(frozen=True, slots=True)
class ResumeState:
    feed_epoch: int
    node_epoch: int
    # ticker -> (channel bits, last trade_seq sent: 0 when none or not on the trades channel)
    symbols: dict[str, tuple[int, int]]


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7


def max_token_chars(max_symbols: int) -> int:
    """The longest token ``encode_token`` makes for ``max_symbols`` symbols."""
    raw = 1 + 8 + 8 + 10 + max_symbols * (1 + MAX_TICKER + 10 + 10) + MAC_BYTES
    return (raw * 4 + 2) // 3


class TokenCodec:
    """Signs and checks resume tokens with one key; ``channels`` names the channel bits (bit i: channels[i])."""

    def __init__(self, key: bytes, channels: Sequence[str], max_symbols: int) -> None:
        if max_symbols < 1:
            raise ValueError(f"resume tokens must hold at least one symbol, not {max_symbols}")
        self._key = key
        self.channels = tuple(channels)
        self.max_symbols = max_symbols
        self.max_chars = max_token_chars(max_symbols)
        self._all_bits = (1 << len(self.channels)) - 1

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:MAC_BYTES]

    def encode(self, state: ResumeState) -> str:
        """The token (base64url); symbols past ``max_symbols`` (in sorted order) are left out."""
        parts = [bytes([TOKEN_VERSION]), (state.feed_epoch & (2**64 - 1)).to_bytes(8, "big"),
                 (state.node_epoch & (2**64 - 1)).to_bytes(8, "big")]
        items = sorted(state.symbols.items())[: self.max_symbols]
        parts.append(varint(len(items)))
        for ticker, (bits, trade_seq) in items:
            name = ticker.encode()[:MAX_TICKER]
            parts += [bytes([len(name)]), name, varint(bits & self._all_bits), varint(trade_seq)]
        body = b"".join(parts)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode()

    def decode(self, token: str) -> ResumeState | None:
        """The state a token names, or None: oversized, malformed, forged, foreign, or of another version."""
        if not token or len(token) > self.max_chars:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 1 + 16 + 1 + MAC_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
            return None  # too short, or not the one spelling this codec writes (base64's spare bits set)
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)) or body[0] != TOKEN_VERSION:
            return None
        try:
            feed_epoch = int.from_bytes(body[1:9], "big")
            node_epoch = int.from_bytes(body[9:17], "big")
            count, pos = _read_varint(body, 17)
            if count > self.max_symbols:
                return None
            symbols: dict[str, tuple[int, int]] = {}
            for _ in range(count):
                n = body[pos]
                name = body[pos + 1:pos + 1 + n].decode("ascii")
                if len(name) != n or not 0 < n <= MAX_TICKER or not name.isprintable() or " " in name:
                    return None
                bits, pos = _read_varint(body, pos + 1 + n)
                trade_seq, pos = _read_varint(body, pos)
                if bits & ~self._all_bits:
                    return None
                symbols[name] = (bits, trade_seq)
        except (IndexError, ValueError, UnicodeDecodeError):
            return None
        if pos != len(body):
            return None
        return ResumeState(feed_epoch, node_epoch, symbols)


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """For one symbol: replay the prints with trade_seq in [replay_from, upto]; ``missing`` could not be."""

    replay_from: int
    upto: int
    missing: tuple[int, int] | None  # (first, last) trade_seq, inclusive

    @property
    def verdict(self) -> str:
        return COMPLETE if self.missing is None else PARTIAL


def plan_replay(seen: int, upto: int, available: Sequence[int]) -> ReplayPlan:
    """The client was sent every print up to ``seen``; the stream is at ``upto`` (the newest print live delivery
    has passed); ``available``: the trade_seq numbers the history still holds in (seen, upto], ascending.

    Replayed: the run of consecutive numbers that ends at ``upto``. Everything from ``seen + 1`` to the run's
    start is missing (one exact range, which may include older prints the history holds before a hole: they
    are not sent, so a client never has to merge around a hole)."""
    if upto <= seen:
        return ReplayPlan(upto + 1, upto, None)
    start = upto + 1
    for n in reversed(available):
        if n == start - 1 and n > seen:
            start = n
        elif n < start - 1:
            break
    missing = (seen + 1, start - 1) if start > seen + 1 else None
    return ReplayPlan(start, upto, missing)
