"""Revocation of a user's tokens ("log out everywhere"), kept in the ledger database beside their money.

``logout_everywhere`` bumps the user's token generation and sets ``revoked_before`` (the next whole second: a
token's ``iat`` has one-second resolution, so a token issued in the same second as the logout is refused too),
and writes, in the same transaction, an outbox row that the relay publishes on the user's order channel: the
fan-out nodes close the user's WebSockets opened with older tokens. Delivery is the outbox's: at least once.

``check`` refuses a token issued before the user's ``revoked_before``. It reads the database at most once per
``cache_ttl`` seconds per user (1 s by default: other API processes learn of a revocation within that); the
process that served the logout knows at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from order_api.db import Ledger
from tickfan_proto import stream_pb2 as pb
from vocab.auth import AuthError, Claims

CACHE_TTL = 1.0
CACHE_MAX = 100_000  # users remembered; the oldest entry goes first


class Sessions:
    def __init__(self, ledger: Ledger, *, cache_ttl: float = CACHE_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self.cache_ttl = cache_ttl
        self.clock = clock
        self._cache: dict[str, tuple[int, float]] = {}  # user -> (revoked_before, read at)
        self.refused = 0  # requests refused with token_revoked

    async def revoked_before(self, user: str) -> int:
        """Unix second before which the user's tokens are refused (0: never logged out everywhere)."""
        now = self.clock()
        hit = self._cache.get(user)
        if hit is not None and now - hit[1] < self.cache_ttl:
            return hit[0]
        value = await self.ledger.pool_for(user).fetchval(
            "SELECT revoked_before FROM token_generations WHERE user_id = $1", user)
        self._remember(user, int(value or 0), now)
        return int(value or 0)

    def _remember(self, user: str, revoked_before: int, now: float) -> None:
        self._cache.pop(user, None)
        if len(self._cache) >= CACHE_MAX:
            self._cache.pop(next(iter(self._cache)))
        self._cache[user] = (revoked_before, now)

    async def check(self, claims: Claims) -> None:
        """Raise ``AuthError("token_revoked")`` when the token was issued before the user logged out everywhere."""
        before = await self.revoked_before(claims.user)
        if before and (claims.issued is None or claims.issued < before):
            self.refused += 1
            raise AuthError("token_revoked", "this token was revoked (the user logged out everywhere); "
                                             "sign in again for a new one")

    async def logout_everywhere(self, user: str, now: float | None = None) -> tuple[int, int]:
        """Revoke every token of ``user`` issued until now; returns (generation, revoked_before)."""
        before = math.floor(time.time() if now is None else now) + 1
        async with self.ledger.pool_for(user).acquire() as conn, conn.transaction():
            generation = await conn.fetchval(
                "INSERT INTO token_generations (user_id, generation, revoked_before) VALUES ($1, 1, $2) "
                "ON CONFLICT (user_id) DO UPDATE SET generation = token_generations.generation + 1, "
                "revoked_before = GREATEST(token_generations.revoked_before, $2), updated_at = now() "
                "RETURNING generation", user, before)
            frame = pb.ServerMessage(revoked=pb.Revoked(revoked_before_ns=before * 1_000_000_000))
            await conn.execute("INSERT INTO outbox (user_id, topic, payload) VALUES ($1, 'session', $2)",
                               user, frame.SerializeToString())
        self.ledger.announce(user)
        self._remember(user, before, self.clock())
        return int(generation), before
