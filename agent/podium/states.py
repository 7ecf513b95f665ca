"""Run and task state machines: string enums, terminal sets, allowed transitions.

Names are shared by the store, CLI output, JSON output and chat messages.
"""

from __future__ import annotations

from enum import StrEnum

from podium.errors import PodiumError


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    WAITING_DECISION = "waiting_decision"
    """A non-idempotent task was interrupted by a crash: a human must retry, skip or fail it."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    PENDING = "pending"
    WAITING_APPROVAL = "waiting_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """Was running when the agent died and is not idempotent: waits for a human."""
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


RUN_TERMINAL = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.ROLLED_BACK,
        RunStatus.ROLLBACK_FAILED,
        RunStatus.CANCELLED,
    }
)
RUN_WAITING = frozenset({RunStatus.WAITING_APPROVAL, RunStatus.WAITING_DECISION})

TASK_TERMINAL = frozenset(
    {
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.TIMED_OUT,
        TaskStatus.SKIPPED,
        TaskStatus.CANCELLED,
        TaskStatus.ROLLED_BACK,
        TaskStatus.ROLLBACK_FAILED,
    }
)
TASK_FAILED = frozenset({TaskStatus.FAILED, TaskStatus.TIMED_OUT})

_R = RunStatus
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    _R.PENDING: frozenset({_R.RUNNING, _R.CANCELLED, _R.WAITING_APPROVAL}),
    _R.RUNNING: frozenset(
        {
            _R.WAITING_APPROVAL,
            _R.WAITING_DECISION,
            _R.SUCCEEDED,
            _R.FAILED,
            _R.ROLLING_BACK,
            _R.CANCELLED,
        }
    ),
    _R.WAITING_APPROVAL: frozenset(
        {_R.RUNNING, _R.CANCELLED, _R.ROLLING_BACK, _R.FAILED, _R.SUCCEEDED}
    ),
    _R.WAITING_DECISION: frozenset({_R.RUNNING, _R.CANCELLED, _R.ROLLING_BACK, _R.FAILED}),
    _R.ROLLING_BACK: frozenset({_R.ROLLED_BACK, _R.ROLLBACK_FAILED, _R.WAITING_DECISION}),
    _R.FAILED: frozenset(),
    _R.SUCCEEDED: frozenset(),
    _R.ROLLED_BACK: frozenset(),
    _R.ROLLBACK_FAILED: frozenset(),
    _R.CANCELLED: frozenset(),
}

_T = TaskStatus
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    _T.PENDING: frozenset({_T.WAITING_APPROVAL, _T.RUNNING, _T.SKIPPED, _T.CANCELLED, _T.FAILED}),
    _T.WAITING_APPROVAL: frozenset({_T.PENDING, _T.RUNNING, _T.CANCELLED, _T.SKIPPED, _T.FAILED}),
    _T.RUNNING: frozenset(
        {_T.SUCCEEDED, _T.FAILED, _T.TIMED_OUT, _T.CANCELLED, _T.INTERRUPTED, _T.PENDING}
    ),
    _T.INTERRUPTED: frozenset(
        {
            _T.PENDING,
            _T.RUNNING,
            _T.SKIPPED,
            _T.FAILED,
            _T.CANCELLED,
            # a rollback cut short: run again, taken as done, or failed
            _T.ROLLING_BACK,
            _T.ROLLED_BACK,
            _T.ROLLBACK_FAILED,
        }
    ),
    _T.SUCCEEDED: frozenset({_T.ROLLING_BACK}),
    _T.FAILED: frozenset({_T.PENDING}),
    _T.TIMED_OUT: frozenset({_T.PENDING}),
    _T.SKIPPED: frozenset(),
    _T.CANCELLED: frozenset(),
    _T.ROLLING_BACK: frozenset({_T.ROLLED_BACK, _T.ROLLBACK_FAILED, _T.INTERRUPTED}),
    _T.ROLLED_BACK: frozenset(),
    _T.ROLLBACK_FAILED: frozenset(),
}


class TransitionError(PodiumError):
    """A state change the state machine does not allow."""


def check_run(old: RunStatus, new: RunStatus) -> RunStatus:
    """Return ``new`` if a run may go from ``old`` to it; raise otherwise."""
    if old == new or new in RUN_TRANSITIONS[old]:
        return new
    raise TransitionError(f"run cannot go from {old} to {new}")


def check_task(old: TaskStatus, new: TaskStatus) -> TaskStatus:
    """Return ``new`` if a task may go from ``old`` to it; raise otherwise."""
    if new in TASK_TRANSITIONS[old] or old == new:
        return new
    raise TransitionError(f"task cannot go from {old} to {new}")


__all__ = [
    "RUN_TERMINAL",
    "RUN_TRANSITIONS",
    "RUN_WAITING",
    "TASK_FAILED",
    "TASK_TERMINAL",
    "TASK_TRANSITIONS",
    "RunStatus",
    "TaskStatus",
    "TransitionError",
    "check_run",
    "check_task",
]
