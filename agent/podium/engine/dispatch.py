"""Attempts between the engine and its executor.

The engine claims an attempt in a transaction; its order waits here until that
transaction committed (state before side effect), then goes to the executor. What the
executor reports comes back through here too: the outcome of an attempt in flight, once;
any other report (late, repeated, of an attempt this engine never handed over) is
dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from podium.engine.context import InFlight
from podium.executor.base import AttemptOrder, Executor, ExecutorEvent, Finished
from podium.log import get_logger
from podium.runners.base import Outcome

log = get_logger("podium.engine")


class Dispatch:
    """Owns the attempts in flight and the orders not handed over yet."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.inflight: dict[int, InFlight] = {}
        """Attempts handed to the executor (or failed before it), by attempt id."""
        self._orders: list[AttemptOrder] = []
        self._early: list[ExecutorEvent] = []

    @property
    def busy(self) -> bool:
        return bool(self.inflight)

    def __len__(self) -> int:
        return len(self.inflight)

    def claim(self, attempt: InFlight, order: AttemptOrder) -> None:
        """An attempt claimed in the open transaction; handed over once it committed."""
        self.inflight[attempt.attempt_id] = attempt
        self._orders.append(order)

    def fail_early(self, attempt: InFlight, outcome: Outcome) -> None:
        """An attempt that failed before any executor saw it (no checkout, say)."""
        self.inflight[attempt.attempt_id] = attempt
        self._early.append(Finished(attempt.attempt_id, outcome))

    def mark(self) -> int:
        """Where the orders stand now (to :meth:`drop_since` after a failed step)."""
        return len(self._orders)

    def drop_since(self, mark: int) -> None:
        """Forget the orders claimed since ``mark``: their transaction was undone."""
        for order in self._orders[mark:]:
            self.inflight.pop(order.attempt_id, None)
        del self._orders[mark:]

    def hand_over(self) -> None:
        """Give the executor the orders of the transaction that just committed."""
        orders, self._orders = self._orders, []
        for order in orders:
            self.executor.submit(order)

    def take_early(self) -> list[ExecutorEvent]:
        early, self._early = self._early, []
        return early

    def wait(self, timeout: float | None, interrupted: Callable[[], bool]) -> list[ExecutorEvent]:
        """Reports within ``timeout`` (``None``: until one comes), or none once
        ``interrupted()`` says to look elsewhere (a wake-up, a stop)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            out = self.take_early()
            remaining = None if end is None else max(0.0, end - time.monotonic())
            wait = 0.0 if out else (0.25 if remaining is None else min(remaining, 0.25))
            out += self.executor.poll(wait)
            if out:
                return out
            if interrupted():
                return []
            if end is not None and time.monotonic() >= end:
                return []

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        """Reports within ``timeout``, whatever else happens (shutting down)."""
        return self.take_early() + self.executor.poll(timeout)

    def finished(self, events: list[ExecutorEvent]) -> list[tuple[InFlight, Outcome]]:
        """The outcomes of attempts in flight among ``events`` (each taken out of flight)."""
        done: list[tuple[InFlight, Outcome]] = []
        for event in events:
            if not isinstance(event, Finished):
                continue
            attempt = self.inflight.pop(event.attempt_id, None)
            if attempt is None:
                log.info("attempt_report_ignored", attempt_id=event.attempt_id)
                continue
            done.append((attempt, event.outcome))
        return done


__all__ = ["Dispatch"]
