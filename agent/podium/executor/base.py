"""The Executor boundary: where an attempt runs.

The engine hands an executor an :class:`AttemptOrder` (what to run and under which
limits, with secrets by name only) and reads back :data:`ExecutorEvent` values:
:class:`Started`, :class:`Output` (optional, for executors that stream it), and one
:class:`Finished` with the attempt's outcome. It can ask for an attempt's cancellation by
id, or for all of them (shutdown).

The engine assumes nothing about timing. A remote executor (workers behind a queue) may
report an attempt late, after the engine stopped waiting for it, twice (delivery is at
least once), or never (a lost worker: such an executor reports a ``Finished`` with a
failed outcome once its heartbeats stop). The engine records each attempt once, from the
first ``Finished`` for an attempt it is waiting for, and ignores the rest.

Implementations: :class:`podium.executor.local.LocalExecutor` (processes and threads of
this agent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from podium.runners.base import Outcome


@dataclass(frozen=True)
class AttemptOrder:
    """One attempt, as the engine hands it over. Plain data: a remote executor can send it
    over a wire (``config`` is the task kind's validated config)."""

    attempt_id: int
    run_id: int
    workflow: str
    task: str
    phase: str
    """``run`` or ``rollback``."""
    number: int
    kind: str
    """The task kind (``run``, ``http``, ``python`` or a plugin's)."""
    config: Any
    env: Mapping[str, str]
    """The task's environment, without secret values."""
    secrets: Mapping[str, str]
    """Environment variable → secret name: the executor resolves them where it runs, and
    redacts their values from everything the attempt writes."""
    cwd: str
    repo_root: str
    revision: str
    timeout: float | None
    grace: float
    """Seconds between SIGTERM and SIGKILL when a timeout or cancellation hits."""
    log_path: str
    log_max_bytes: int


@dataclass(frozen=True)
class Started:
    """The attempt's process (or request) has started."""

    attempt_id: int
    pid: int | None = None


@dataclass(frozen=True)
class Output:
    """A chunk of the attempt's output (already redacted)."""

    attempt_id: int
    text: str


@dataclass(frozen=True)
class Finished:
    """The attempt's outcome."""

    attempt_id: int
    outcome: Outcome


ExecutorEvent = Started | Output | Finished


class Executor(Protocol):
    """Runs attempts and reports what happens to them; the engine drives it from one thread."""

    def submit(self, order: AttemptOrder) -> None:
        """Start ``order`` (or queue it). A failure to start is reported as its ``Finished``."""
        ...

    def poll(self, timeout: float | None) -> list[ExecutorEvent]:
        """Events since the last poll, waiting up to ``timeout`` seconds for the first one
        (``None``: until one arrives or :meth:`wake` is called)."""
        ...

    def cancel(self, attempt_id: int) -> None:
        """Stop one attempt (its ``Finished`` follows, with status ``cancelled``)."""
        ...

    def cancel_all(self) -> None:
        """Stop every attempt in flight (shutdown)."""
        ...

    def wake(self) -> None:
        """Make a waiting :meth:`poll` return now. Safe from any thread."""
        ...

    def close(self) -> None:
        """Release what the executor holds; attempts still in flight are stopped."""
        ...


__all__ = ["AttemptOrder", "Executor", "ExecutorEvent", "Finished", "Output", "Started"]
