"""Failure handling helpers, pure (time passed in, randomness injectable): a circuit breaker and backoff.

:class:`CircuitBreaker`::

    CLOSED --N consecutive failures--> OPEN --reset_timeout elapsed--> HALF_OPEN --success--> CLOSED
                                         ^                                  |
                                         +------------- failure -----------+

While OPEN, ``allow()`` is False: callers fail fast instead of queueing on a dead dependency. HALF_OPEN lets
``half_open_max_calls`` trial calls through; the first result decides.

:class:`Backoff`: exponential delays ``base * factor**attempt`` capped at ``cap``, with jitter so that many
clients recovering together do not retry in lock step. ``jitter`` is the fraction of the delay that is
random: 1.0 is "full jitter" (uniform in [0, d]), 0.5 (default) keeps at least half of it, 0 none.
"""

from __future__ import annotations

import enum
import math
import random
import time


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 10.0, half_open_max_calls: int = 1) -> None:
        if failure_threshold < 1 or reset_timeout < 0 or half_open_max_calls < 1:
            raise ValueError("failure_threshold >= 1, reset_timeout >= 0, half_open_max_calls >= 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self._state = CircuitState.CLOSED
        self.failures = 0  # consecutive, while CLOSED
        self.opened_at = 0.0
        self._trials = 0  # calls let through while HALF_OPEN
        self.times_opened = 0

    def state(self, now: float | None = None) -> CircuitState:
        """The state at ``now`` (an OPEN breaker whose cool-down has passed reads as HALF_OPEN)."""
        now = time.monotonic() if now is None else now
        if self._state is CircuitState.OPEN and now - self.opened_at >= self.reset_timeout:
            self._state = CircuitState.HALF_OPEN
            self._trials = 0
        return self._state

    def allow(self, now: float | None = None) -> bool:
        """May a call go ahead now? In HALF_OPEN this takes one of the trial slots."""
        st = self.state(now)
        if st is CircuitState.CLOSED:
            return True
        if st is CircuitState.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return True
        return False

    def record_success(self, now: float | None = None) -> None:
        self.state(now)
        self._state = CircuitState.CLOSED
        self.failures = 0
        self._trials = 0

    def record_failure(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        st = self.state(now)
        if st is CircuitState.HALF_OPEN:
            self._open(now)
        elif st is CircuitState.CLOSED:
            self.failures += 1
            if self.failures >= self.failure_threshold:
                self._open(now)
        # already OPEN: a late failure of a call let through earlier does not extend the cool-down

    def _open(self, now: float) -> None:
        self._state = CircuitState.OPEN
        self.opened_at = now
        self.failures = 0
        self._trials = 0
        self.times_opened += 1


class Backoff:
    def __init__(self, base: float = 0.1, cap: float = 10.0, factor: float = 2.0, jitter: float = 0.5,
                 rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("base > 0, cap >= base, factor >= 1, 0 <= jitter <= 1")
        self.base, self.cap, self.factor, self.jitter = base, cap, factor, jitter
        self.rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay of attempt ``attempt`` (0-based)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # compare logarithms rather than computing a power that may overflow
        if self.factor > 1 and attempt * math.log(self.factor) >= math.log(self.cap / self.base):
            return self.cap
        return min(self.cap, self.base * self.factor ** attempt)

    def delay(self, attempt: int) -> float:
        """The delay before retry number ``attempt`` (0-based): in [(1 - jitter) * d, d], d = ceiling."""
        d = self.ceiling(attempt)
        return d - self.jitter * d * self.rng.random()

    def next(self) -> float:
        """The next delay of a running sequence (see :meth:`reset`)."""
        d = self.delay(self.attempt)
        self.attempt += 1
        return d

    def reset(self) -> None:
        self.attempt = 0
