"""The task-runner boundary: one small protocol, one context in, one outcome out.

A runner executes one attempt of one task kind (``run``, ``http``, ``python`` or a
plugin kind) and never touches the state store: the executor records what the
runner reports. Outside libraries' exceptions are translated into an
:class:`Outcome` here, so the executor never sees them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


class OutcomeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class CancelFlag(Protocol):
    """Set when the attempt must stop (a :class:`threading.Event` is one)."""

    def is_set(self) -> bool: ...


def _no_redaction(text: str) -> str:
    return text


@dataclass
class TaskContext:
    """Everything a runner needs for one attempt. Built by the executor."""

    run_id: int
    workflow: str
    task_id: str
    attempt: int
    cwd: Path
    """The run's checkout root (the repository sub-path): commands run here."""
    repo_root: Path
    """Same as ``cwd`` unless the task sets ``workdir``; paths never leave it."""
    env: dict[str, str]
    """The complete environment of the task (agent env + params + env + secrets)."""
    log_path: Path
    """Full output of the attempt goes here (redacted, size-capped, rotated)."""
    timeout: float | None = None
    grace: float = 5.0
    """Seconds between SIGTERM and SIGKILL when a timeout or cancellation hits."""
    log_max_bytes: int = 10 * 1024 * 1024
    tail_lines: int = 40
    redact: Callable[[str], str] = _no_redaction
    cancel: CancelFlag = field(default_factory=threading.Event)
    """Set by the executor to stop the attempt early (agent shutting down)."""
    on_spawn: Callable[[int], None] | None = None
    """Called with the pid (= process group id) once a child process exists."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt did."""

    status: OutcomeStatus
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    output_tail: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is OutcomeStatus.SUCCEEDED


class Runner(Protocol):
    """Executes one attempt of a task kind. ``config`` is the kind's validated config."""

    def run(self, config: Any, ctx: TaskContext) -> Outcome: ...


__all__ = ["CancelFlag", "Outcome", "OutcomeStatus", "Runner", "TaskContext"]
