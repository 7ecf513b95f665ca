"""Coalescing triggers: a burst goes through at once, a flood at a bounded rate, none lost."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable


class Throttle:
    """Calls ``fire`` at once while it has tokens (``burst`` of them, one more every
    ``period`` seconds), on the running event loop.

    A request without a token is coalesced: it fires once more when the next token comes,
    however many requests it stands for. Since what is fired (a reconcile pass) re-reads
    everything, coalescing loses nothing; a push that follows another closely still starts
    at once, and a replayed flood costs at most one reconcile per period.
    """

    def __init__(self, fire: Callable[[], None], period: float = 1.0, burst: int = 10) -> None:
        self._fire = fire
        self.period = period
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._at = time.monotonic()
        self._trailing: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None

    def __call__(self) -> bool:
        """Fire now (True) or once the next token comes (False, coalesced)."""
        loop = asyncio.get_running_loop()
        if self._trailing is not None and self._trailing[0] is not loop:
            self._trailing = None  # scheduled on a loop that is gone: it will never fire
        self._refill()
        if self._trailing is None and self._tokens >= 1:
            self._tokens -= 1
            self._fire()
            return True
        if self._trailing is None:
            wait = (1 - self._tokens) * self.period
            self._trailing = (loop, loop.call_later(wait, self._fire_trailing))
        return False

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) / self.period)
        self._at = now

    def _fire_trailing(self) -> None:
        self._trailing = None
        self._refill()
        self._tokens = max(0.0, self._tokens - 1)
        self._fire()


class RecentPayloads:
    """Payloads seen in the last ``window`` seconds (by digest): a push delivered again,
    under a new or no delivery id, is the same push."""

    def __init__(self, window: float = 60.0, size: int = 1024) -> None:
        self.window = window
        self.size = size
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, payload: bytes) -> bool:
        """Whether ``payload`` came within the window (it is remembered either way)."""
        digest = hashlib.sha256(payload).hexdigest()
        now = time.monotonic()
        last = self._seen.pop(digest, None)
        self._seen[digest] = now
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return last is not None and now - last < self.window


__all__ = ["RecentPayloads", "Throttle"]
