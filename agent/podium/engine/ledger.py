"""The writes that keep the store and a run's in-memory view in step.

Every collaborator of the engine changes a run through its :class:`Ledger`: a task's or a
run's status, a final failure, a hold, an event for the notifiers. The ledger owns no run
state of its own; it keeps the store (the truth) and the context it is handed in step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from podium.engine.config import EngineConfig
from podium.engine.context import SATISFIED, InFlight, RunContext
from podium.log import get_logger
from podium.notify.routing import routes_for
from podium.runners.base import Outcome
from podium.spec.loader import WorkflowDef
from podium.states import TASK_FAILED, RunStatus, TaskStatus
from podium.store import Store
from podium.store.records import RunRecord, RunTaskRecord

log = get_logger("podium.engine")

Hook = Callable[[str, dict[str, Any]], None]


class Ledger:
    """Status changes, failures, holds and events of the runs an engine drives."""

    def __init__(self, store: Store, config: EngineConfig) -> None:
        self.store = store
        self.config = config
        """Read for the notifiers in force (the agent sets them once integrations load)."""
        self.hooks: list[Hook] = []
        """Called on task outcomes (metrics); a failing hook is logged, never fatal."""

    # -- statuses ---------------------------------------------------------------

    def set_run(self, ctx: RunContext, status: RunStatus) -> bool:
        """Move the run to ``status``; False when it already was."""
        if ctx.run.status is status:
            return False
        ctx.run = self.store.set_run_status(ctx.run.id, status, run=ctx.run)
        return True

    def set_task(self, ctx: RunContext, name: str, status: TaskStatus, **fields: Any) -> None:
        """Move a task to ``status`` (a compare-and-set on what the context believes)."""
        self.store.set_task_status(ctx.run.id, name, status, current=ctx.status[name], **fields)
        ctx.note(name, status)

    def sync_task(self, ctx: RunContext, name: str, stored: TaskStatus | None = None) -> bool:
        """Adopt a status an operator decision (skip, fail) wrote to the store since the run
        was loaded (``stored``: already read); True when there was one."""
        if stored is None:
            stored = self.store.get_run_task(ctx.run.id, name).status
        if stored is ctx.status[name]:
            return False
        ctx.note(name, stored)
        if stored in SATISFIED:
            ctx.release(name)
        elif stored in TASK_FAILED:
            ctx.failed = True
        log.info("task_decided_elsewhere", run_id=ctx.run.id, task=name, status=str(stored))
        return True

    def task_failed(
        self,
        ctx: RunContext,
        name: str,
        error: str,
        status: TaskStatus = TaskStatus.FAILED,
        data: dict[str, Any] | None = None,
    ) -> None:
        """A task failed for good: its status, its failed fingerprint, the alert."""
        with self.store.tx():
            self.set_task(ctx, name, status, error=error, finished_at=time.time())
            self.store.set_failure(ctx.name, name, ctx.fingerprints[name], ctx.run.id)
            self.emit(
                ctx,
                "task_failed",
                name,
                {"error": error, **(data or {}), "on_failure": str(ctx.on_failure)},
            )
        ctx.failed = True
        log.warning("task_failed", run_id=ctx.run.id, workflow=ctx.name, task=name, error=error)

    def hold(
        self,
        run: RunRecord,
        wf: WorkflowDef,
        rt: RunTaskRecord,
        attempt_id: int,
        attempt_number: int,
        phase: str,
        why: str = "the agent stopped while it ran",
    ) -> None:
        """A non-idempotent attempt was cut short: mark its task interrupted, keep a hold
        for that task and fingerprint, and announce that the run waits for a decision."""
        action = "rollback of this non-idempotent task" if phase == "rollback" else "task"
        reason = f"interrupted: {why}; the {action} may have had part of its effect"
        self.store.set_task_status(
            run.id, rt.task, TaskStatus.INTERRUPTED, error=f"{reason}; retry, skip or fail it"
        )
        self.store.set_hold(
            run.workflow, rt.task, rt.fingerprint, phase, run.id, attempt_id, reason
        )
        if phase == "rollback":  # nothing else of the rollback runs until someone decides
            self.store.set_run_status(run.id, RunStatus.WAITING_DECISION)
        self.emit_for(
            run.workflow,
            wf,
            run.id,
            "waiting_decision",
            rt.task,
            {"attempt": attempt_number, "phase": phase, "reason": reason},
        )

    def cut_short_by_shutdown(
        self,
        ctx: RunContext,
        attempt: InFlight,
        exit_code: int | None,
        tail: str | None,
        phase: str,
    ) -> bool:
        """Finish an attempt the agent's shutdown cancelled; hold its task if it is not
        idempotent (announced exactly as after a crash). Call inside a transaction.
        Returns whether the task is held."""
        self.store.finish_attempt(
            attempt.attempt_id,
            "interrupted",
            exit_code,
            None,
            tail,
            "cancelled: the agent is shutting down",
        )
        if ctx.specs[attempt.task].idempotent:
            return False
        rt = self.store.get_run_task(ctx.run.id, attempt.task)
        self.hold(
            ctx.run,
            ctx.wf,
            rt,
            attempt.attempt_id,
            attempt.number,
            phase,
            why="the agent was shut down while it ran",
        )
        ctx.note(attempt.task, TaskStatus.INTERRUPTED)
        return True

    # -- events -----------------------------------------------------------------

    def emit(
        self,
        ctx: RunContext,
        kind: str,
        task: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """An event of ``ctx``'s run, routed to the notifiers its workflow asks for."""
        self.emit_for(ctx.name, ctx.wf, ctx.run.id, kind, task, data or {})

    def emit_for(
        self,
        workflow: str,
        wf: WorkflowDef,
        run_id: int,
        kind: str,
        task: str | None,
        data: dict[str, Any],
    ) -> None:
        routes = routes_for(kind, wf.spec.notify, self.config.notifiers)
        self.store.emit(kind, workflow=workflow, run_id=run_id, task=task, data=data, routes=routes)

    def emit_summary(self, ctx: RunContext, kind: str) -> None:
        """A run-level event carrying the run's summary."""
        run = ctx.run
        self.emit(
            ctx,
            kind,
            None,
            {
                "revision": run.revision,
                "trigger": run.trigger,
                "tasks": {n: str(s) for n, s in ctx.status.items()},
                "duration": (time.time() - run.started_at) if run.started_at else 0.0,
            },
        )

    def hook(self, name: str, ctx: RunContext, task: str, outcome: Outcome) -> None:
        for hook in self.hooks:
            try:
                hook(
                    name,
                    {
                        "workflow": ctx.name,
                        "task": task,
                        "run_id": ctx.run.id,
                        "duration": outcome.duration,
                        "status": str(outcome.status),
                    },
                )
            except Exception:  # hooks never break a run
                log.exception("hook_failed", hook=name)


__all__ = ["Hook", "Ledger"]
