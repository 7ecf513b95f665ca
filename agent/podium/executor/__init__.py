"""Where attempts run: the :class:`Executor` boundary and its local implementation."""

from __future__ import annotations

from podium.executor.base import (
    AttemptOrder,
    Executor,
    ExecutorEvent,
    Finished,
    Output,
    Started,
)

__all__ = ["AttemptOrder", "Executor", "ExecutorEvent", "Finished", "Output", "Started"]
