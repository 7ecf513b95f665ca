"""The retry policy: exponential, capped, jittered delays and the retry count (no sleeping)."""

from __future__ import annotations

import time

import pytest

from podium.retry import compute_backoff, should_retry
from podium.spec.models import RetryPolicy

ALMOST_ONE = 1 - 1e-12


def policy(**kw: float) -> RetryPolicy:
    return RetryPolicy.model_validate(kw)


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 2.0), (2, 6.0), (3, 18.0), (4, 54.0)],
)
def test_backoff_grows_exponentially(failures: int, expected: float) -> None:
    """Without jitter the n-th delay is ``delay * backoff ** (n - 1)``."""
    p = policy(delay=2, backoff=3, max_delay=1000, jitter=0)
    assert compute_backoff(p, failures) == pytest.approx(expected)


def test_backoff_of_one_keeps_the_delay_constant() -> None:
    """``backoff: 1`` means a fixed delay between attempts."""
    p = policy(delay=5, backoff=1, jitter=0)
    assert [compute_backoff(p, n) for n in range(1, 6)] == [5.0] * 5


def test_zeroth_failure_is_treated_as_the_first() -> None:
    """A failure count below one never shrinks the delay below ``delay``."""
    p = policy(delay=4, backoff=2, jitter=0)
    assert compute_backoff(p, 0) == compute_backoff(p, 1) == 4.0


@pytest.mark.parametrize("failures", [6, 7, 10, 50, 101])
def test_backoff_is_capped_at_max_delay(failures: int) -> None:
    """Once ``delay * backoff ** n`` passes max_delay the delay stays at max_delay."""
    p = policy(delay=1, backoff=2, max_delay=30, jitter=0)
    assert compute_backoff(p, failures) == 30.0


def test_backoff_never_overflows_for_huge_failure_counts() -> None:
    """A very large failure count still yields max_delay instead of an overflow."""
    p = policy(delay=1, backoff=10, max_delay=60, jitter=0.5)
    assert compute_backoff(p, 10_000, rand=0.5) == 60.0
    assert compute_backoff(p, 10**9, rand=0.0) == 30.0


@pytest.mark.parametrize(
    ("rand", "factor"),
    [(0.0, 0.8), (0.5, 1.0), (0.25, 0.9), (ALMOST_ONE, 1.2)],
)
def test_jitter_spreads_the_delay_by_plus_minus_jitter(rand: float, factor: float) -> None:
    """``rand`` 0 gives base*(1-jitter), 0.5 the base itself, ≈1 base*(1+jitter)."""
    p = policy(delay=10, backoff=2, max_delay=1000, jitter=0.2)
    base = 20.0  # second failure
    assert compute_backoff(p, 2, rand=rand) == pytest.approx(base * factor)


def test_jitter_applies_around_the_capped_delay() -> None:
    """At the cap, jitter spreads around max_delay (the cap is taken before jitter)."""
    p = policy(delay=1, backoff=2, max_delay=30, jitter=0.1)
    assert compute_backoff(p, 20, rand=0.0) == pytest.approx(27.0)
    assert compute_backoff(p, 20, rand=ALMOST_ONE) == pytest.approx(33.0)


def test_full_jitter_never_goes_negative() -> None:
    """With jitter 1.0 the smallest delay is zero, never below."""
    p = policy(delay=3, jitter=1.0)
    assert compute_backoff(p, 1, rand=0.0) == 0.0
    assert compute_backoff(p, 1, rand=ALMOST_ONE) == pytest.approx(6.0)


def test_random_jitter_stays_within_bounds_and_does_not_sleep() -> None:
    """Omitting ``rand`` draws jitter inside [base*(1-j), base*(1+j)] and returns at once."""
    p = policy(delay=100, backoff=2, max_delay=10_000, jitter=0.25)
    started = time.monotonic()
    delays = [compute_backoff(p, 3) for _ in range(500)]
    assert time.monotonic() - started < 1.0
    assert all(300.0 <= d <= 500.0 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("count", "failures", "expected"),
    [
        (0, 1, False),
        (1, 1, True),
        (1, 2, False),
        (3, 1, True),
        (3, 3, True),
        (3, 4, False),
    ],
)
def test_should_retry_allows_count_retries(count: int, failures: int, expected: bool) -> None:
    """``retries: N`` allows N retries: attempt N+1 is the last one."""
    assert should_retry(policy(count=count), failures) is expected


def test_retries_shorthand_is_the_count() -> None:
    """``retries: 2`` in a task means two retries with the default delays."""
    from podium.spec.models import task_model

    task = task_model().model_validate({"id": "t", "run": "true", "retries": 2})
    attempts = 1
    while should_retry(task.retries, attempts):
        attempts += 1
    assert attempts == 3
    assert compute_backoff(task.retries, 1, rand=0.5) == pytest.approx(1.0)
