"""The order API's abuse limits: bodies read with a cap, and a per-user request rate.

**Bodies.** A declared ``Content-Length`` over the cap is refused (413 ``body_too_large``) before a byte of the
body is read; a body without one (chunked) is read chunk by chunk and abandoned as soon as it passes the cap.
The 413 carries ``Connection: close``, so the server drops the connection rather than reading the rest of the
body to keep it alive. The old code read the whole body first: 256 MiB sent grew the process by 257 MiB.

**Rate.** Every authenticated request counts against its user's window (``rate`` requests per ``window``
seconds, a fixed window opened by the user's first request; 200 a minute by default, as Alpaca's API), refused
ones included; past it a request is answered 429 ``rate_limited`` before any work. Every response carries
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix seconds when the window
ends); a 429 also ``Retry-After`` (seconds). The count is kept in this process (see README, "Abuse limits on
the HTTP API", for why not in Redis). The limiter is pure apart from its clock (tests pass one in);
``read_body`` is the one adapter here.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from order_api.model import ApiError
from vocab.digits import parse_ascii_int

MAX_BODY = 16 * 1024
RATE = 200  # requests per window per user (Alpaca: 200 a minute per account)
WINDOW = 60.0
MAX_TRACKED_USERS = 100_000  # windows kept; past it, ended windows are dropped (they count nothing any more)


class BodyTooLarge(ApiError):
    def __init__(self, cap: int) -> None:
        super().__init__(413, "body_too_large", f"request bodies are at most {cap} bytes")


@dataclass
class HttpLimits:
    """The order API's limits (``tickfan api --max-body --rate-limit --rate-window``). ``rate`` 0: no limit."""

    max_body: int = MAX_BODY
    rate: int = RATE
    window: float = WINDOW


@dataclass
class BodyCounters:
    too_large: int = 0  # bodies refused, by their Content-Length or while being read


async def read_body(request: Request, cap: int, counters: BodyCounters | None = None) -> bytes:
    """The request body, at most ``cap`` bytes; :class:`BodyTooLarge` (413) as soon as it is known to be larger."""
    return await read_capped(request.headers.get("content-length"), request.stream(), cap, counters)


async def read_capped(declared: str | None, chunks: AsyncIterator[bytes], cap: int,
                      counters: BodyCounters | None = None) -> bytes:
    """A body from its ``Content-Length`` (None: not declared) and its chunks, at most ``cap`` bytes: refused by the
    declared length before a chunk is read, or as soon as the chunks pass the cap."""
    if declared is not None:
        try:
            length = parse_ascii_int(declared.strip())
        except ValueError as e:
            raise ApiError(400, "invalid_content_length", f"Content-Length: {e}") from e
        if length > cap:
            if counters is not None:
                counters.too_large += 1
            raise BodyTooLarge(cap)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            # the rest of the stream is never read: the server drops it with the connection (Connection: close)
            if counters is not None:
                counters.too_large += 1
            raise BodyTooLarge(cap)
        parts.append(chunk)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One request's place in its user's window: allowed or not, and what the headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_in: float  # seconds until the window ends

    def headers(self, wall: float) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(math.ceil(wall + self.reset_in))}
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.reset_in)))
        return out


@dataclass
class RateLimiter:
    """Fixed windows per user, in process: ``rate`` requests per ``window`` seconds, every request counted."""

    rate: int = RATE
    window: float = WINDOW
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)  # user -> (window start, requests)
    limited: int = 0  # requests refused with 429 (a metric)

    def hit(self, user: str) -> Verdict:
        now = self.clock()
        start, count = self._windows.get(user, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        count += 1
        if user not in self._windows and len(self._windows) >= MAX_TRACKED_USERS:
            self._forget_ended(now)
        self._windows[user] = (start, count)
        allowed = count <= self.rate
        if not allowed:
            self.limited += 1
        return Verdict(allowed, self.rate, max(0, self.rate - count), start + self.window - now)

    def _forget_ended(self, now: float) -> None:
        ended = [u for u, (start, _) in self._windows.items() if now - start >= self.window]
        for u in ended:
            del self._windows[u]
        if len(self._windows) >= MAX_TRACKED_USERS:
            # every window still open: drop the oldest half rather than grow without end (they start afresh)
            for u, _ in sorted(self._windows.items(), key=lambda kv: kv[1][0])[: len(self._windows) // 2]:
                del self._windows[u]

    @property
    def tracked(self) -> int:
        return len(self._windows)
