"""Retry delays as a small pure policy: exponential, capped, jittered."""

from __future__ import annotations

import random

from podium.spec.models import RetryPolicy


def compute_backoff(policy: RetryPolicy, failures: int, rand: float | None = None) -> float:
    """Seconds to wait before the attempt after the ``failures``-th failure (1-based).

    ``delay * backoff ** (failures - 1)``, capped at ``max_delay``, then spread by
    ``±jitter`` (``rand`` in [0, 1) picks the point; random when omitted).
    """
    try:
        grown = policy.delay * policy.backoff ** max(failures - 1, 0)
    except OverflowError:  # a huge failure count: far past any cap
        grown = policy.max_delay if policy.delay > 0 else 0.0
    base = min(policy.max_delay, grown)
    r = random.random() if rand is None else rand  # noqa: S311 - jitter, not crypto
    return max(0.0, base * (1 + policy.jitter * (2 * r - 1)))


def should_retry(policy: RetryPolicy, failures: int) -> bool:
    """True when another attempt is allowed after ``failures`` failed attempts."""
    return failures <= policy.count


__all__ = ["compute_backoff", "should_retry"]
