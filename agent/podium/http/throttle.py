"""Coalescing triggers: at most one per period, and none lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Throttle:
    """Calls ``fire`` at most once per ``period`` seconds (on the running event loop).

    A request inside the period is coalesced: it fires once more when the period
    ends, however many requests it stands for. Since what is fired (a reconcile pass)
    re-reads everything, coalescing loses nothing.
    """

    def __init__(self, fire: Callable[[], None], period: float = 1.0) -> None:
        self._fire = fire
        self.period = period
        self._open_at = float("-inf")
        self._trailing: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None

    def __call__(self) -> bool:
        """Fire now (True) or once the period is over (False, coalesced)."""
        loop = asyncio.get_running_loop()
        if self._trailing is not None and self._trailing[0] is not loop:
            self._trailing = None  # scheduled on a loop that is gone: it will never fire
        now = time.monotonic()
        if self._trailing is None and now >= self._open_at:
            self._open_at = now + self.period
            self._fire()
            return True
        if self._trailing is None:
            handle = loop.call_later(self._open_at - now, self._fire_trailing)
            self._trailing = (loop, handle)
        return False

    def _fire_trailing(self) -> None:
        self._trailing = None
        self._open_at = time.monotonic() + self.period
        self._fire()


__all__ = ["Throttle"]
