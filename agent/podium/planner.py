"""The diff step: ``plan(desired, executed, now)`` — a pure function, no I/O.

Given the desired state of a revision (validated workflows and their
fingerprints) and the executed state (applied fingerprints, failed fingerprints,
runs in progress, schedule slots), it says per workflow which tasks are
outstanding and why, which are up to date, and which were removed from Git.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property

from podium.fingerprint import TaskFingerprint
from podium.spec.loader import Problem, WorkflowDef


class Reason(StrEnum):
    """Why a task is outstanding."""

    NEW = "new"
    CHANGED = "changed"
    INPUTS_CHANGED = "inputs changed"
    UPSTREAM_CHANGED = "upstream changed"
    SCHEDULED = "scheduled"


@dataclass(frozen=True)
class Applied:
    """The applied record of one (workflow, task)."""

    fingerprint: str
    spec_hash: str = ""
    inputs_hash: str = ""
    revision: str = ""
    applied_at: float = 0.0


@dataclass(frozen=True)
class Failure:
    """A fingerprint that failed and is not retried automatically."""

    fingerprint: str
    run_id: int


@dataclass(frozen=True)
class Hold:
    """An interrupted non-idempotent attempt: its task waits for a human (retry, skip or
    fail) whatever runs come and go, until someone decides."""

    fingerprint: str
    run_id: int
    phase: str = "run"
    reason: str = ""


@dataclass(frozen=True)
class Executed:
    """What the store knows, as plain immutable data for the planner."""

    applied: Mapping[tuple[str, str], Applied] = field(default_factory=dict)
    failed: Mapping[tuple[str, str], Failure] = field(default_factory=dict)
    held: Mapping[tuple[str, str], Hold] = field(default_factory=dict)
    """(workflow, task) → the interrupted attempt it waits on a decision for."""
    active_runs: Mapping[str, int] = field(default_factory=dict)
    """workflow → id of its run in progress (not terminal)."""
    last_slot: Mapping[str, float] = field(default_factory=dict)
    """workflow → the newest schedule slot already run (unix time)."""
    first_seen: Mapping[str, float] = field(default_factory=dict)
    """workflow → when it was first seen (slots before that are not due)."""

    @cached_property
    def applied_tasks(self) -> Mapping[str, frozenset[str]]:
        """workflow → the tasks it has applied records for (grouped once)."""
        grouped: dict[str, set[str]] = {}
        for workflow, task in self.applied:
            grouped.setdefault(workflow, set()).add(task)
        return {w: frozenset(ts) for w, ts in grouped.items()}


@dataclass(frozen=True)
class Desired:
    """Desired state: validated workflows with their fingerprints."""

    revision: str
    workflows: Mapping[str, WorkflowDef]
    fingerprints: Mapping[str, Mapping[str, TaskFingerprint]]
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class TaskChange:
    id: str
    reason: Reason
    fingerprint: str
    previous: str | None
    needs_approval: bool


@dataclass(frozen=True)
class WorkflowPlan:
    name: str
    file: str
    revision: str
    outstanding: tuple[TaskChange, ...]
    up_to_date: tuple[str, ...]
    removed: tuple[str, ...]
    blocked_by: Failure | None = None
    blocked_task: str | None = None
    held_by: Hold | None = None
    held_task: str | None = None
    active_run: int | None = None
    slot: float | None = None
    """The schedule slot due (unix time), when the run is a scheduled one."""
    stale: bool = False
    prune: bool = False
    """Removed tasks are rolled back (``prune: true``) rather than only forgotten."""

    @property
    def startable(self) -> bool:
        """A run should start: something outstanding, nothing blocking, none in progress."""
        return (
            bool(self.outstanding)
            and self.blocked_by is None
            and self.held_by is None
            and self.active_run is None
        )


@dataclass(frozen=True)
class Plan:
    revision: str
    workflows: tuple[WorkflowPlan, ...]
    removed_workflows: tuple[tuple[str, tuple[str, ...]], ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def outstanding_count(self) -> int:
        return sum(len(w.outstanding) for w in self.workflows)

    @property
    def has_changes(self) -> bool:
        """Exit-code semantics: anything to run or forget."""
        return (
            self.outstanding_count > 0
            or any(w.removed for w in self.workflows)
            or bool(self.removed_workflows)
        )

    @property
    def to_roll_back(self) -> int:
        """Removed tasks whose rollback runs (``prune: true``)."""
        return sum(len(w.removed) for w in self.workflows if w.prune)

    @property
    def to_forget(self) -> int:
        """Removed tasks (and tasks of removed workflows) that are only forgotten."""
        return sum(len(w.removed) for w in self.workflows if not w.prune) + sum(
            len(tasks) for _, tasks in self.removed_workflows
        )

    def workflow(self, name: str) -> WorkflowPlan | None:
        return next((w for w in self.workflows if w.name == name), None)


def due_slot(schedule: str, now: float, after: float) -> float | None:
    """The latest cron slot in ``(after, now]``, or None (catch-up is one run, not many)."""
    from croniter import croniter  # only workflows with a schedule pay for it

    prev = croniter(schedule, datetime.fromtimestamp(now, tz=UTC)).get_prev(float)
    # get_prev is strictly before ``now``: a slot exactly at ``now`` is the one after it.
    following = croniter(schedule, datetime.fromtimestamp(prev, tz=UTC)).get_next(float)
    if following <= now:
        prev = following
    return prev if prev > after else None


def _reason(fp: TaskFingerprint, applied: Applied | None) -> Reason | None:
    if applied is None:
        return Reason.NEW
    if applied.fingerprint == fp.fingerprint:
        return None
    if applied.spec_hash and applied.spec_hash == fp.spec_hash:
        if applied.inputs_hash and applied.inputs_hash != fp.inputs_hash:
            return Reason.INPUTS_CHANGED
        return Reason.UPSTREAM_CHANGED
    return Reason.CHANGED


def plan_workflow(
    wf: WorkflowDef, fps: Mapping[str, TaskFingerprint], executed: Executed, now: float
) -> WorkflowPlan:
    name = wf.name
    slot: float | None = None
    if wf.spec.schedule:
        first = executed.first_seen.get(name, now)
        after = max(executed.last_slot.get(name, first), first)
        slot = due_slot(wf.spec.schedule, now, after)
    outstanding: list[TaskChange] = []
    up_to_date: list[str] = []
    blocked: Failure | None = None
    blocked_task: str | None = None
    held: Hold | None = None
    held_task: str | None = None
    for task in wf.spec.tasks:
        fp = fps[task.id]
        applied = executed.applied.get((name, task.id))
        reason = _reason(fp, applied)
        if reason is None and slot is not None:
            reason = Reason.SCHEDULED
        if reason is None:
            up_to_date.append(task.id)
            continue
        outstanding.append(
            TaskChange(
                task.id,
                reason,
                fp.fingerprint,
                applied.fingerprint if applied else None,
                task.approval is not None,
            )
        )
        hold = executed.held.get((name, task.id))
        if held is None and hold is not None:
            held, held_task = hold, task.id
        failure = executed.failed.get((name, task.id))
        if (
            blocked is None
            and failure is not None
            and failure.fingerprint == fp.fingerprint
            and not wf.spec.retry_failed
            and reason is not Reason.SCHEDULED
        ):
            blocked, blocked_task = failure, task.id
    desired_ids = set(fps)
    removed = tuple(sorted(executed.applied_tasks.get(name, frozenset()) - desired_ids))
    return WorkflowPlan(
        name=name,
        file=wf.file,
        revision=wf.revision,
        outstanding=tuple(outstanding),
        up_to_date=tuple(up_to_date),
        removed=removed,
        blocked_by=blocked,
        blocked_task=blocked_task,
        held_by=held,
        held_task=held_task,
        active_run=executed.active_runs.get(name),
        slot=slot if outstanding and slot is not None else None,
        stale=wf.stale,
        prune=wf.spec.prune,
    )


def plan(desired: Desired, executed: Executed, now: float) -> Plan:
    """Compare desired with executed state. Pure: same inputs, same plan."""
    workflows = tuple(
        plan_workflow(wf, desired.fingerprints[name], executed, now)
        for name, wf in sorted(desired.workflows.items())
    )
    gone: dict[str, list[str]] = {}
    for w, t in executed.applied:
        if w not in desired.workflows:
            gone.setdefault(w, []).append(t)
    removed_workflows = tuple((w, tuple(sorted(ts))) for w, ts in sorted(gone.items()))
    return Plan(desired.revision, workflows, removed_workflows, desired.problems)


__all__ = [
    "Applied",
    "Desired",
    "Executed",
    "Failure",
    "Hold",
    "Plan",
    "Reason",
    "TaskChange",
    "WorkflowPlan",
    "due_slot",
    "plan",
    "plan_workflow",
]
