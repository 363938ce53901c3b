"""Bearer tokens shared by the order API and the WebSocket stream: JWTs whose ``sub`` is the user id.

There is no built-in key. A server is configured with an HS256 secret of at least 32 bytes
(``TICKFAN_JWT_SECRET``), or public keys for RS256/ES256 (``TICKFAN_JWT_JWKS``: a JWKS URL or file), or both;
:func:`load_verifier` refuses to build a verifier otherwise (``KeyConfigError``, whose message names
``TICKFAN_JWT_SECRET``). Every token must carry ``sub``, ``iss``, ``aud`` and ``exp``; the issuer and audience
must be the configured ones (``TICKFAN_JWT_ISSUER``, ``TICKFAN_JWT_AUDIENCE``, both "tickfan" by default) and
its lifetime (``exp - iat``, or ``exp - now`` without ``iat``) at most ``TICKFAN_JWT_MAX_LIFETIME`` seconds
(24 h by default). Anything else is an :class:`AuthError` with a machine-readable code, never another exception.

WebSocket tickets (:func:`mint_ticket`) are short-lived HS256 tokens with their own audience, carrying the
bearer token's user, expiry and issue time; :class:`UsedTickets` makes each one single-use in a process.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

SECRET_ENV = "TICKFAN_JWT_SECRET"
JWKS_ENV = "TICKFAN_JWT_JWKS"
ISSUER_ENV = "TICKFAN_JWT_ISSUER"
AUDIENCE_ENV = "TICKFAN_JWT_AUDIENCE"
MAX_LIFETIME_ENV = "TICKFAN_JWT_MAX_LIFETIME"
TICKET_SECRET_ENV = "TICKFAN_WS_TICKET_SECRET"
HS256 = "HS256"
PUBLIC_KEY_ALGORITHMS = ("RS256", "ES256")
MIN_SECRET_BYTES = 32
DEFAULT_ISSUER = "tickfan"
DEFAULT_AUDIENCE = "tickfan"
DEFAULT_MAX_LIFETIME = 24 * 3600.0
TICKET_TTL = 30.0
LEEWAY = 5.0  # seconds of clock skew allowed for iat/nbf between the minting and the verifying host
MAX_TOKEN_CHARS = 8192  # a JWT longer than this is refused before it is parsed
USER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# SHA-256 of the development key this module once published in its source: refused as a secret, so a
# configuration copied from an old README cannot bring it back.
_PUBLISHED = frozenset({"9b7b782f49c7a3440a0c5524095f3c17ed353b7acceead20f4cf6a66923d6970"})
log = logging.getLogger("vocab.auth")


class AuthError(Exception):
    """A missing, malformed, expired, revoked or wrongly signed token; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class KeyConfigError(ValueError):
    """The server has no usable key: no secret of at least 32 bytes and no public keys."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token proves: the user, until when (Unix seconds), and since when (None: no ``iat``)."""

    user: str
    expires: float
    issued: float | None = None


def check_secret(secret: str, name: str = SECRET_ENV) -> bytes:
    """The secret as bytes, if it is one a server may use; else :class:`KeyConfigError` naming ``name``."""
    raw = secret.encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise KeyConfigError(f"{name} must be at least {MIN_SECRET_BYTES} bytes (it is {len(raw)}); make one with: "
                             f"python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    if hashlib.sha256(raw).hexdigest() in _PUBLISHED:
        raise KeyConfigError(f"{name} is the development key once published in tickfan's source: choose your own")
    return raw


def new_secret() -> str:
    """A fresh random secret (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


class JwksKeys:
    """Public keys for RS256/ES256 from a JWKS file, or a URL fetched with PyJWT's ``PyJWKClient``.

    A URL is fetched once at construction (a bad URL fails at start), then in a background thread: every
    ``refresh`` seconds, and soon (at most every ``min_refetch`` seconds) after a token names an unknown key id.
    A verification never waits for the network: it sees the keys of the last successful fetch."""

    def __init__(self, source: str, *, refresh: float = 300.0, min_refetch: float = 10.0, timeout: float = 10.0
                 ) -> None:
        self.source = source
        self._client: jwt.PyJWKClient | None = None
        self._wanted = threading.Event()
        self.refresh, self.min_refetch = refresh, min_refetch
        try:
            if source.startswith(("http://", "https://")):
                self._client = jwt.PyJWKClient(source, cache_keys=False, cache_jwk_set=False, timeout=int(timeout))
                self._keys = self._client.get_jwk_set()
                threading.Thread(target=self._refresher, name="jwks-refresh", daemon=True).start()
            else:
                with open(source, encoding="utf-8") as f:
                    self._keys = jwt.PyJWKSet.from_json(f.read())
        except (OSError, jwt.PyJWTError, ValueError) as e:
            raise KeyConfigError(f"{JWKS_ENV}: cannot load public keys from {source}: {e}") from e

    def key(self, kid: object, algorithm: str) -> Any:
        """The key a token's header names (its ``kid``; without one, the only key of that algorithm)."""
        fitting = [k for k in self._keys.keys if k.algorithm_name == algorithm]
        if isinstance(kid, str):
            for k in fitting:
                if k.key_id == kid:
                    return k.key
            self._wanted.set()  # perhaps the issuer rotated its keys: fetch again soon
            raise AuthError("invalid_token", "the token's key id is not one of the configured public keys")
        if len(fitting) == 1:
            return fitting[0].key
        raise AuthError("invalid_token", "the token names no key id and the public keys are ambiguous")

    def _refresher(self) -> None:
        assert self._client is not None
        while True:
            self._wanted.wait(self.refresh)
            time.sleep(self.min_refetch if self._wanted.is_set() else 0)
            self._wanted.clear()
            try:
                self._keys = self._client.get_jwk_set(refresh=True)
            except Exception as e:  # the network or the issuer: keep the keys we have
                log.warning("%s: cannot refresh public keys from %s: %s", JWKS_ENV, self.source, e)


class Verifier:
    """Verifies bearer tokens and WebSocket tickets against one configuration; remembers verified tokens (with
    their expiry, still checked every time), so the signature and JSON work is done once per token."""

    def __init__(self, *, secret: str | None = None, jwks: JwksKeys | None = None, issuer: str = DEFAULT_ISSUER,
                 audience: str = DEFAULT_AUDIENCE, max_lifetime: float = DEFAULT_MAX_LIFETIME,
                 ticket_secret: str | None = None) -> None:
        self.secret = check_secret(secret) if secret else None
        if self.secret is None and jwks is None:
            raise KeyConfigError(f"no token key: set {SECRET_ENV} (a secret of at least {MIN_SECRET_BYTES} bytes) "
                                 f"or {JWKS_ENV} (a JWKS URL or file of RS256/ES256 public keys)")
        self.jwks = jwks
        self.issuer, self.audience, self.max_lifetime = issuer, audience, max_lifetime
        # tickets are signed by the order API and checked by the nodes: a shared secret, the bearer one by default
        self.ticket_secret = (check_secret(ticket_secret, TICKET_SECRET_ENV) if ticket_secret else self.secret)
        self._verified: dict[str, Claims] = {}

    # ------------------------------------------------------------------ bearer tokens
    def claims(self, token: str, now: float | None = None) -> Claims:
        """The claims of a valid bearer token; :class:`AuthError` otherwise (and never any other exception)."""
        now = time.time() if now is None else now
        hit = self._verified.get(token) if isinstance(token, str) else None
        if hit is None:
            hit = self._decode(token, self.audience, now)
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))  # oldest first: a dict keeps insertion order
            self._verified[token] = hit
        if hit.expires <= now:
            self._verified.pop(token, None)
            raise AuthError("token_expired", "the bearer token has expired")
        return hit

    def __call__(self, token: str) -> Claims:
        return self.claims(token)

    def user(self, token: str) -> str:
        return self.claims(token).user

    def _key(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except Exception as e:  # PyJWT's own errors, and whatever a hostile header makes it raise
            raise AuthError("invalid_token", f"invalid bearer token: {_short(e)}") from None
        alg = header.get("alg")
        if alg == HS256 and self.secret is not None:
            return self.secret, alg
        if isinstance(alg, str) and alg in PUBLIC_KEY_ALGORITHMS and self.jwks is not None:
            return self.jwks.key(header.get("kid"), alg), alg
        raise AuthError("invalid_token", f"tokens signed with {str(alg)[:20]!r} are not accepted here")

    def _decode(self, token: object, audience: str, now: float, key: Any = None) -> Claims:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthError("invalid_token", f"a bearer token is a JWT of at most {MAX_TOKEN_CHARS} characters")
        alg = HS256
        if key is None:
            key, alg = self._key(token)
        try:
            payload: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=audience, issuer=self.issuer, leeway=LEEWAY,
                options={"require": ["sub", "iss", "aud", "exp"], "verify_exp": False})
        except jwt.InvalidAudienceError as e:
            raise AuthError("invalid_audience", f"the token is not for {audience!r}: {_short(e)}") from None
        except jwt.InvalidIssuerError as e:
            raise AuthError("invalid_issuer", f"the token is not issued by {self.issuer!r}: {_short(e)}") from None
        except Exception as e:  # forged, malformed, missing claims, hostile values
            raise AuthError("invalid_token", f"invalid bearer token: {_short(e)}") from None
        sub, exp, iat = payload.get("sub"), _number(payload.get("exp")), _number(payload.get("iat"))
        if not isinstance(sub, str) or not USER_ID.match(sub):
            raise AuthError("invalid_token", "the token's subject is not a valid user id")
        if exp is None or ("iat" in payload and iat is None):
            raise AuthError("invalid_token", "the token's exp and iat must be numbers")
        if exp - (iat if iat is not None else now) > self.max_lifetime + LEEWAY:
            raise AuthError("token_lifetime", f"the token is valid for longer than the {self.max_lifetime:g} s "
                                              f"this server accepts")
        if exp <= now:
            raise AuthError("token_expired", "the bearer token has expired")
        return Claims(sub, exp, iat)

    # ------------------------------------------------------------------ WebSocket tickets
    def mint_ticket(self, claims: Claims, *, ttl: float = TICKET_TTL, now: float | None = None) -> str:
        """A single-use ticket for a WebSocket upgrade, valid ``ttl`` seconds, for the bearer token ``claims``."""
        if self.ticket_secret is None:
            raise KeyConfigError(f"tickets need a shared secret: set {TICKET_SECRET_ENV} or {SECRET_ENV}")
        issued = now if now is not None else time.time()
        body = {"sub": claims.user, "iss": self.issuer, "aud": self.ticket_audience, "iat": int(issued),
                "exp": int(issued + ttl), "jti": secrets.token_urlsafe(16), "tok_exp": claims.expires,
                **({"tok_iat": claims.issued} if claims.issued is not None else {})}
        return jwt.encode(body, self.ticket_secret, algorithm=HS256)

    @property
    def ticket_audience(self) -> str:
        return f"{self.audience}:ws-ticket"  # a ticket is never a bearer token, nor a bearer token a ticket

    def ticket(self, ticket: str, now: float | None = None) -> tuple[Claims, str, float]:
        """A valid ticket's bearer claims, its id and its own expiry; :class:`AuthError` otherwise."""
        now = time.time() if now is None else now
        if self.ticket_secret is None:
            raise AuthError("invalid_ticket", "this server takes no tickets")
        try:
            own = self._decode(ticket, self.ticket_audience, now, key=self.ticket_secret)
            payload = jwt.decode(ticket, self.ticket_secret, algorithms=[HS256], audience=self.ticket_audience,
                                 options={"verify_exp": False})
        except AuthError as e:
            raise AuthError("token_expired" if e.code == "token_expired" else "invalid_ticket", str(e)) from None
        except Exception as e:
            raise AuthError("invalid_ticket", f"invalid ticket: {_short(e)}") from None
        jti, tok_exp, tok_iat = payload.get("jti"), _number(payload.get("tok_exp")), _number(payload.get("tok_iat"))
        if not isinstance(jti, str) or tok_exp is None:
            raise AuthError("invalid_ticket", "the ticket lacks its id or its token's expiry")
        return Claims(own.user, tok_exp, tok_iat), jti, own.expires


_CACHE_SIZE = 65_536


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _short(e: BaseException) -> str:
    return str(e)[:200]


class UsedTickets:
    """Ticket ids already used in this process, each forgotten once its ticket has expired (bounded by the rate
    at which tickets are minted times their 30 s life)."""

    def __init__(self) -> None:
        self._used: dict[str, float] = {}

    def use(self, jti: str, expires: float, now: float) -> bool:
        """True the first time ``jti`` is used; False ever after (while it could still be presented)."""
        if len(self._used) > 1024:
            self._used = {j: e for j, e in self._used.items() if e > now}
        if jti in self._used:
            return False
        self._used[jti] = expires
        return True

    def __len__(self) -> int:
        return len(self._used)


# ---------------------------------------------------------------------- configuration and minting


def load_verifier(environ: Mapping[str, str] | None = None) -> Verifier:
    """The verifier the environment configures; :class:`KeyConfigError` (naming ``TICKFAN_JWT_SECRET``) when it
    configures no usable key."""
    env = os.environ if environ is None else environ
    jwks_source = env.get(JWKS_ENV) or None
    try:
        lifetime = float(env.get(MAX_LIFETIME_ENV) or DEFAULT_MAX_LIFETIME)
    except ValueError as e:
        raise KeyConfigError(f"{MAX_LIFETIME_ENV} must be a number of seconds") from e
    if not lifetime > 0:
        raise KeyConfigError(f"{MAX_LIFETIME_ENV} must be positive")
    return Verifier(secret=env.get(SECRET_ENV) or None, jwks=JwksKeys(jwks_source) if jwks_source else None,
                    issuer=env.get(ISSUER_ENV) or DEFAULT_ISSUER, audience=env.get(AUDIENCE_ENV) or DEFAULT_AUDIENCE,
                    max_lifetime=lifetime, ticket_secret=env.get(TICKET_SECRET_ENV) or None)


_default: Verifier | None = None


def default_verifier() -> Verifier:
    """The process's verifier from its environment, built once (``KeyConfigError`` when there is no key)."""
    global _default
    if _default is None:
        _default = load_verifier()
    return _default


def mint_token(user_id: str, *, key: str | None = None, ttl: float = 24 * 3600.0, now: float | None = None,
               issuer: str | None = None, audience: str | None = None, claims: Mapping[str, Any] | None = None
               ) -> str:
    """An HS256 bearer token for ``user_id`` valid for ``ttl`` seconds (what `tickfan token USER` prints), signed
    with ``key`` or ``TICKFAN_JWT_SECRET``; ``claims`` adds or overrides claims (tests forge with it)."""
    if not USER_ID.match(user_id):
        raise ValueError(f"bad user id {user_id!r}: 1-64 of letters, digits, '_', '.', '-'")
    secret = key or os.environ.get(SECRET_ENV) or ""
    if not secret:
        raise KeyConfigError(f"no signing key: set {SECRET_ENV}")
    issued = int(now if now is not None else time.time())
    body: dict[str, Any] = {
        "sub": user_id, "iat": issued, "exp": issued + int(ttl),
        "iss": issuer or os.environ.get(ISSUER_ENV) or DEFAULT_ISSUER,
        "aud": audience or os.environ.get(AUDIENCE_ENV) or DEFAULT_AUDIENCE, **(claims or {})}
    return jwt.encode(body, secret, algorithm=HS256)


def verify_token(token: str, *, key: str | None = None) -> str:
    """The user id a valid token names (HS256 with ``key``, else the process's configuration); raises
    :class:`AuthError` otherwise."""
    verifier = default_verifier() if key is None else _keyed(key)
    return verifier.claims(token).user


_by_key: dict[str, Verifier] = {}


def _keyed(key: str) -> Verifier:
    v = _by_key.get(key)
    if v is None:
        v = _by_key[key] = Verifier(secret=key)
    return v


def bearer(header: str | None) -> str:
    """The token inside an ``Authorization: Bearer ...`` header value; raises :class:`AuthError` otherwise."""
    if not header:
        raise AuthError("unauthenticated", "missing Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("unauthenticated", "the Authorization header must be 'Bearer <token>'")
    return token.strip()
