"""SIGTERM/SIGINT → a graceful stop callback (restored afterwards)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from podium.log import get_logger

log = get_logger("podium")


@contextmanager
def graceful(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, the first SIGTERM/SIGINT calls ``stop``; a second one exits at once."""
    hits = {"n": 0}

    def handler(signum: int, _frame: FrameType | None) -> None:
        hits["n"] += 1
        if hits["n"] > 1:
            raise KeyboardInterrupt
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stop()

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


__all__ = ["graceful"]
