"""An Executor for engine tests: it runs nothing; a script decides each attempt's outcome.

Not a test module. It plugs into the real engine (``Engine(..., executor=...)``) the way
a remote executor would, and can misbehave as one may: report an attempt twice, late (after
the engine stopped waiting), or never.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from podium.executor.base import AttemptOrder, ExecutorEvent, Finished, Started
from podium.runners.base import Outcome, OutcomeStatus

Script = Callable[[AttemptOrder], Outcome | None]
"""An attempt's outcome, or None: it runs until released or cancelled."""

OK = Outcome(OutcomeStatus.SUCCEEDED, exit_code=0)


def fail(code: int = 1) -> Outcome:
    return Outcome(OutcomeStatus.FAILED, exit_code=code, output_tail=f"exit {code}")


class ScriptedExecutor:
    """:class:`podium.executor.base.Executor` whose attempts end as ``script`` says."""

    def __init__(self, script: Script | None = None, *, twice: bool = False) -> None:
        self.script: Script = script or (lambda _order: OK)
        self.twice = twice
        """Report every outcome twice (at-least-once delivery)."""
        self.orders: list[AttemptOrder] = []
        self.held: dict[int, AttemptOrder] = {}
        self.cancelled: list[int] = []
        self.closed = False
        self._events: list[ExecutorEvent] = []

    def submit(self, order: AttemptOrder) -> None:
        self.orders.append(order)
        self._events.append(Started(order.attempt_id))
        outcome = self.script(order)
        if outcome is None:
            self.held[order.attempt_id] = order
        else:
            self._finish(order.attempt_id, outcome)

    def poll(self, timeout: float | None) -> list[ExecutorEvent]:
        if not self._events and timeout:
            time.sleep(min(timeout, 0.01))
        events, self._events = self._events, []
        return events

    def release(self, attempt_id: int, outcome: Outcome = OK) -> None:
        """End a held attempt (the test decides when)."""
        self.held.pop(attempt_id, None)
        self._finish(attempt_id, outcome)

    def report(self, attempt_id: int, outcome: Outcome = OK) -> None:
        """Report an outcome whatever the attempt's state (a late or stray report)."""
        self._events.append(Finished(attempt_id, outcome))

    def cancel(self, attempt_id: int) -> None:
        self.cancelled.append(attempt_id)
        if attempt_id in self.held:
            self.release(attempt_id, Outcome(OutcomeStatus.CANCELLED, error="cancelled"))

    def cancel_all(self) -> None:
        for attempt_id in list(self.held):
            self.cancel(attempt_id)

    def wake(self) -> None:
        return None

    def close(self) -> None:
        self.cancel_all()
        self.closed = True

    def _finish(self, attempt_id: int, outcome: Outcome) -> None:
        self._events.append(Finished(attempt_id, outcome))
        if self.twice:
            self._events.append(Finished(attempt_id, outcome))


__all__ = ["OK", "ScriptedExecutor", "fail"]
