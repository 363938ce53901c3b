"""Circuit breaker and backoff: pure, time and randomness passed in."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_api.resilience import Backoff, CircuitBreaker, CircuitState


def test_opens_after_n_consecutive_failures() -> None:
    b = CircuitBreaker(failure_threshold=3, reset_timeout=10.0)
    b.record_failure(0.0)
    b.record_failure(0.0)
    assert b.state(0.0) is CircuitState.CLOSED and b.allow(0.0)
    b.record_failure(1.0)
    assert b.state(1.0) is CircuitState.OPEN and not b.allow(1.0)
    assert b.times_opened == 1


def test_a_success_resets_the_count() -> None:
    b = CircuitBreaker(failure_threshold=2)
    b.record_failure(0.0)
    b.record_success(0.0)
    b.record_failure(0.0)
    assert b.state(0.0) is CircuitState.CLOSED


def test_half_open_after_the_cool_down_lets_one_trial_through() -> None:
    b = CircuitBreaker(failure_threshold=1, reset_timeout=5.0)
    b.record_failure(0.0)
    assert not b.allow(4.9)
    assert b.state(5.0) is CircuitState.HALF_OPEN
    assert b.allow(5.0)
    assert not b.allow(5.0)  # one trial at a time
    b.record_success(5.1)
    assert b.state(5.1) is CircuitState.CLOSED and b.allow(5.1)


def test_a_failed_trial_opens_again_for_a_full_cool_down() -> None:
    b = CircuitBreaker(failure_threshold=1, reset_timeout=5.0)
    b.record_failure(0.0)
    assert b.allow(6.0)
    b.record_failure(6.0)
    assert b.state(6.0) is CircuitState.OPEN
    assert not b.allow(10.9) and b.allow(11.0)
    assert b.times_opened == 2


def test_late_failures_while_open_do_not_extend_the_cool_down() -> None:
    b = CircuitBreaker(failure_threshold=1, reset_timeout=5.0)
    b.record_failure(0.0)
    b.record_failure(4.0)
    assert b.state(5.0) is CircuitState.HALF_OPEN


def test_no_time_argument_uses_the_monotonic_clock() -> None:
    b = CircuitBreaker(failure_threshold=1, reset_timeout=3600)
    b.record_failure()
    assert not b.allow()
    b.record_success()
    assert b.allow()


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"reset_timeout": -1}, {"half_open_max_calls": 0}])
def test_breaker_refuses_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


def test_backoff_grows_exponentially_to_the_cap() -> None:
    b = Backoff(base=0.1, cap=2.0, factor=2.0, jitter=0.0)
    assert [b.delay(i) for i in range(7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert b.delay(10_000) == 2.0  # no overflow


def test_backoff_sequence_and_reset() -> None:
    b = Backoff(base=1.0, cap=100.0, jitter=0.0)
    assert [b.next(), b.next(), b.next()] == [1.0, 2.0, 4.0]
    b.reset()
    assert b.next() == 1.0


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    b = Backoff(base=1.0, cap=8.0, jitter=1.0, rng=random.Random(7))
    samples = [b.delay(3) for _ in range(2000)]
    assert 0.0 <= min(samples) < 0.5 and 7.5 < max(samples) <= 8.0


@given(st.floats(0.001, 10), st.floats(1, 100), st.floats(1, 4), st.floats(0, 1), st.integers(0, 200),
       st.integers(0, 2**32))
def test_backoff_delay_is_within_its_band(base: float, cap_mult: float, factor: float, jitter: float, attempt: int,
                                          seed: int) -> None:
    cap = base * cap_mult
    b = Backoff(base=base, cap=cap, factor=factor, jitter=jitter, rng=random.Random(seed))
    ceiling = b.ceiling(attempt)
    assert ceiling <= cap + 1e-9
    assert attempt == 0 or ceiling >= b.ceiling(attempt - 1)
    d = b.delay(attempt)
    assert (1 - jitter) * ceiling - 1e-9 <= d <= ceiling + 1e-9


@pytest.mark.parametrize("kwargs", [{"base": 0}, {"base": 2, "cap": 1}, {"factor": 0.5}, {"jitter": 1.5}])
def test_backoff_refuses_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]
