"""Bearer tokens shared by the order API and the WebSocket stream: HS256 JWTs whose ``sub`` is the user id.

The signing key is configuration (``TICKFAN_JWT_SECRET``); the built-in development key is only for the demo
and tests, and :func:`signing_key` says so loudly when it is used.
"""

from __future__ import annotations

import logging
import os
import re
import time

import jwt

ALGORITHM = "HS256"
DEV_SECRET = "tickfan-dev-secret-change-me-in-production"
USER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
log = logging.getLogger("vocab.auth")
_warned = False


class AuthError(Exception):
    """A missing, malformed, expired or wrongly signed token; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def signing_key(explicit: str | None = None) -> str:
    """The HS256 key: an explicit one, else ``TICKFAN_JWT_SECRET``, else the development key (with a warning)."""
    global _warned
    key = explicit or os.environ.get("TICKFAN_JWT_SECRET")
    if key:
        return key
    if not _warned:
        log.warning("TICKFAN_JWT_SECRET is not set: using the development signing key (never in production)")
        _warned = True
    return DEV_SECRET


def mint_token(user_id: str, *, key: str | None = None, ttl: float = 24 * 3600.0, now: float | None = None) -> str:
    """A bearer token for ``user_id`` valid for ``ttl`` seconds (what `tickfan token USER` prints)."""
    if not USER_ID.match(user_id):
        raise ValueError(f"bad user id {user_id!r}: 1-64 of letters, digits, '_', '.', '-'")
    issued = int(now if now is not None else time.time())
    return jwt.encode({"sub": user_id, "iat": issued, "exp": issued + int(ttl)}, signing_key(key), algorithm=ALGORITHM)


def verify_token(token: str, *, key: str | None = None) -> str:
    """The user id a valid token names; raises :class:`AuthError` otherwise.

    A client sends the same token with every request: a verified one is remembered (with its expiry, which is
    still checked every time), so the HMAC and JSON work is done once per token, not once per order."""
    signing = signing_key(key)
    hit = _verified.get((token, signing))
    if hit is not None:
        if hit[1] > time.time():
            return hit[0]
        del _verified[(token, signing)]
    user, expires = _verify(token, signing)
    if expires <= time.time():
        raise AuthError("token_expired", "the bearer token has expired")
    if len(_verified) >= _CACHE_SIZE:
        _verified.pop(next(iter(_verified)))  # oldest first: a dict keeps insertion order
    _verified[(token, signing)] = (user, expires)
    return user


_CACHE_SIZE = 65_536
_verified: dict[tuple[str, str], tuple[str, float]] = {}


def _verify(token: str, key: str) -> tuple[str, float]:
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError as e:
        raise AuthError("token_expired", "the bearer token has expired") from e
    except jwt.InvalidTokenError as e:
        raise AuthError("invalid_token", f"invalid bearer token: {e}") from e
    sub = claims.get("sub")
    if not isinstance(sub, str) or not USER_ID.match(sub):
        raise AuthError("invalid_token", "the token's subject is not a valid user id")
    return sub, float(claims["exp"])


def bearer(header: str | None) -> str:
    """The token inside an ``Authorization: Bearer ...`` header value; raises :class:`AuthError` otherwise."""
    if not header:
        raise AuthError("unauthenticated", "missing Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("unauthenticated", "the Authorization header must be 'Bearer <token>'")
    return token.strip()
