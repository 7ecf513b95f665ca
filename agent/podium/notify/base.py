"""The notifier boundary and the outbox drain.

Events are written to the store's outbox in the same transaction as the state
change they describe; :func:`drain` delivers them to notifiers with retries and
exponential backoff. Delivery is at-least-once; each item carries an idempotency
key (``OutboxItem.key``) so a notifier can de-duplicate. A failing notifier never
fails or blocks a run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from podium.log import get_logger
from podium.store import Store
from podium.store.records import OutboxItem

log = get_logger("podium.notify")

MAX_BACKOFF = 300.0


class Notifier(Protocol):
    """Delivers one event. Raises on failure (the outbox retries later)."""

    name: str

    def send(self, item: OutboxItem) -> None: ...


class RetryLater(Exception):
    """Raised by a notifier that was told when to come back (e.g. HTTP 429 Retry-After)."""

    def __init__(self, seconds: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.seconds = seconds


def backoff(attempts: int) -> float:
    return float(min(MAX_BACKOFF, 2 ** max(attempts, 0)))


def drain(
    store: Store,
    notifiers: Mapping[str, Notifier],
    now: float | None = None,
    limit: int = 200,
) -> int:
    """Deliver due outbox items; returns how many were delivered."""
    delivered = 0
    current = time.time() if now is None else now
    blocked: set[str] = set()
    for item in store.due_outbox(current, limit):
        notifier = notifiers.get(item.notifier)
        if notifier is None or item.notifier in blocked:
            if notifier is None:
                store.mark_failed(
                    item.id, f"notifier {item.notifier} not enabled", current + MAX_BACKOFF
                )
            continue
        try:
            notifier.send(item)
        except RetryLater as exc:
            blocked.add(item.notifier)  # keep order: later items of this notifier wait too
            store.mark_failed(item.id, str(exc), current + max(exc.seconds, 0.0))
            log.info("notification_deferred", notifier=item.notifier, seconds=exc.seconds)
        except Exception as exc:
            blocked.add(item.notifier)
            store.mark_failed(
                item.id, f"{type(exc).__name__}: {exc}", current + backoff(item.attempts)
            )
            log.warning(
                "notification_failed",
                notifier=item.notifier,
                key=item.key,
                attempts=item.attempts + 1,
                error=str(exc),
            )
        else:
            store.mark_delivered(item.id)
            delivered += 1
    return delivered


__all__ = ["Notifier", "RetryLater", "backoff", "drain"]
