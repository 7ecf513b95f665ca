"""The coordinator's view of one run while it drives it, and of one attempt in flight."""

from __future__ import annotations

import heapq
import time
from collections import deque
from dataclasses import dataclass, field

from podium.gates import Gate, gate_of_task
from podium.spec.loader import WorkflowDef
from podium.spec.models import OnFailure, TaskBase
from podium.states import TaskStatus
from podium.store.records import RunRecord

SATISFIED = frozenset({TaskStatus.SUCCEEDED, TaskStatus.SKIPPED})
"""Statuses that release a task's dependants."""


@dataclass(frozen=True)
class InFlight:
    """An attempt handed to the executor, as the engine waits for its outcome."""

    run_id: int
    task: str
    phase: str
    attempt_id: int
    number: int


@dataclass
class RunContext:
    """The coordinator's in-memory view of one run (the store stays the truth)."""

    run: RunRecord
    wf: WorkflowDef
    specs: dict[str, TaskBase]
    status: dict[str, TaskStatus]
    failures: dict[str, int]
    fingerprints: dict[str, str]
    hashes: dict[str, tuple[str, str]]
    """task → (spec hash, inputs hash), for the applied record."""
    dependants: dict[str, list[str]]
    unmet: dict[str, int]
    ready: deque[str] = field(default_factory=deque)
    delayed: list[tuple[float, str]] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    """Tasks in ``waiting_approval`` (kept in step by :meth:`note`)."""
    attempts: dict[str, int] = field(default_factory=dict)
    """task → run-phase attempts made so far (the next one's number is one more)."""
    log_dir: str = ""
    """Where this run's attempt logs go."""
    completed: int = 0
    """The highest ``completed_seq`` given in this run."""
    failed: bool = False
    rollback_queue: list[str] | None = None
    rollback_failed: bool = False
    paused: bool = False
    """A rollback step was cut short and is not idempotent: nothing runs until a human
    decides (the run waits for a decision)."""
    gates: dict[str, Gate] | None = None
    """The approval rules bound to the run's tasks at its creation (None: an older run,
    whose gates are its own definition's)."""

    @property
    def name(self) -> str:
        return self.run.workflow

    @property
    def on_failure(self) -> OnFailure:
        return self.wf.spec.on_failure

    def note(self, name: str, status: TaskStatus) -> None:
        """Record a task's status (and keep the waiting set in step)."""
        self.status[name] = status
        if status is TaskStatus.WAITING_APPROVAL:
            self.waiting.add(name)
        else:
            self.waiting.discard(name)

    def release(self, name: str) -> None:
        """``name`` is satisfied: dependants whose needs are now all met become ready."""
        for dep in self.dependants.get(name, []):
            self.unmet[dep] -= 1
            if self.unmet[dep] == 0 and self.status[dep] is TaskStatus.PENDING:
                self.ready.append(dep)

    def delay(self, name: str, until: float) -> None:
        """``name`` becomes ready at ``until`` (a retry in its backoff)."""
        heapq.heappush(self.delayed, (until, name))

    def promote_delayed(self, now: float | None = None) -> None:
        """Delayed tasks whose time has come become ready."""
        now = time.time() if now is None else now
        while self.delayed and self.delayed[0][0] <= now:
            _, name = heapq.heappop(self.delayed)
            self.ready.append(name)

    def gate(self, name: str) -> Gate | None:
        """The approval ``name`` needs in this run, if any."""
        if self.gates is not None:
            return self.gates.get(name)
        return gate_of_task(
            self.specs[name], bool(self.wf.spec.forbid_self_approval), self.wf.revision
        )

    def next_seq(self) -> int:
        """The next completion number of this run."""
        self.completed += 1
        return self.completed


__all__ = ["SATISFIED", "InFlight", "RunContext"]
