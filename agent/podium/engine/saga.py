"""After a final failure: cancel what did not start, roll back what succeeded (saga)."""

from __future__ import annotations

from collections.abc import Callable

from podium.engine.context import InFlight, RunContext
from podium.engine.ledger import Ledger
from podium.log import get_logger
from podium.runners.base import Outcome, OutcomeStatus
from podium.spec.models import OnFailure
from podium.states import TASK_TERMINAL, RunStatus, TaskStatus
from podium.store import Store

log = get_logger("podium.engine")

StartRollback = Callable[[RunContext, str], bool]
"""Starts the rollback attempt of a task (the coordinator's)."""


class Saga:
    """Failure handling of a run: stop, continue, or roll back its successes newest-first.

    It keeps no state of its own: where a rollback stands lives in the run's context
    (``rollback_queue``) and in the store. Starting an attempt is the coordinator's, which
    it is handed as ``start``; ``stopping`` says whether the agent is shutting down."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        start: StartRollback,
        stopping: Callable[[], bool],
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.start = start
        self.stopping = stopping

    def after_failure(self, ctx: RunContext) -> None:
        """A task failed for good and nothing runs any more: apply the workflow's policy."""
        self.cancel_unstarted(ctx)
        if ctx.on_failure is OnFailure.ROLLBACK:
            with self.store.tx():
                self.ledger.set_run(ctx, RunStatus.ROLLING_BACK)
                self.ledger.emit(ctx, "rolling_back")
            ctx.rollback_queue = self.rollback_order(ctx.run.id, resume=False)
            self.step(ctx)
        else:
            self.ledger.set_run(ctx, RunStatus.FAILED)
            self.ledger.emit_summary(ctx, "failed")

    def cancel_unstarted(self, ctx: RunContext) -> None:
        """Cancel what has not started (and its pending approval requests)."""
        for name, st in ctx.status.items():
            if st in (TaskStatus.PENDING, TaskStatus.WAITING_APPROVAL, TaskStatus.INTERRUPTED):
                if self.ledger.sync_task(ctx, name) and ctx.status[name] in TASK_TERMINAL:
                    continue  # an operator decided it meanwhile
                with self.store.tx():
                    for req in self.store.approvals(run_id=ctx.run.id, task=name, status="pending"):
                        self.store.decide_approval(
                            req.id, "cancelled", None, "run failed", "engine"
                        )
                    self.ledger.set_task(ctx, name, TaskStatus.CANCELLED)
        ctx.ready.clear()
        ctx.delayed.clear()

    def rollback_order(self, run_id: int, resume: bool) -> list[str]:
        """The run's successes newest-first (``resume``: also those rolling back already)."""
        tasks = self.store.run_tasks(run_id)
        todo = [
            t
            for t in tasks.values()
            if t.status is TaskStatus.SUCCEEDED or (resume and t.status is TaskStatus.ROLLING_BACK)
        ]
        todo.sort(key=lambda t: t.completed_seq or 0, reverse=True)
        return [t.task for t in todo]

    def step(self, ctx: RunContext) -> bool:
        """Start the next rollback, or end the run when none is left."""
        assert ctx.rollback_queue is not None
        if ctx.running or self.stopping():
            return False  # stopping: the run stays rolling_back and resumes at the next start
        while ctx.rollback_queue:
            name = ctx.rollback_queue[0]
            spec = ctx.specs[name]
            if ctx.status[name] is TaskStatus.SUCCEEDED:
                self.ledger.set_task(ctx, name, TaskStatus.ROLLING_BACK)
            if spec.rollback_action() is None:
                ctx.rollback_queue.pop(0)
                self._rolled_back(ctx, name, ok=True)
                continue
            self.start(ctx, name)
            return True
        final = RunStatus.ROLLBACK_FAILED if ctx.rollback_failed else RunStatus.ROLLED_BACK
        ctx.rollback_queue = None
        self.ledger.set_run(ctx, final)
        kind = str(final)
        if ctx.run.trigger == "prune" and final is RunStatus.ROLLED_BACK:
            kind = "pruned"  # removing tasks on purpose is no failure to alert on
        self.ledger.emit_summary(ctx, kind)
        return True

    def record(self, ctx: RunContext, attempt: InFlight, out: Outcome, tail: str | None) -> None:
        """What a rollback attempt did."""
        if out.status is OutcomeStatus.CANCELLED and self.stopping():
            # not a failed rollback: the run stays rolling_back and resumes at the next start,
            # unless the task is not idempotent: then a human decides first
            with self.store.tx():
                held = self.ledger.cut_short_by_shutdown(
                    ctx, attempt, out.exit_code, tail, "rollback"
                )
                if held:
                    ctx.run = self.store.get_run(ctx.run.id)
                    ctx.paused = True
            return
        status = (
            "succeeded"
            if out.ok
            else ("timed_out" if out.status is OutcomeStatus.TIMED_OUT else "failed")
        )
        error = None if out.ok else (out.error or f"exit code {out.exit_code}")
        assert ctx.rollback_queue is not None
        if ctx.rollback_queue and ctx.rollback_queue[0] == attempt.task:
            ctx.rollback_queue.pop(0)
        with self.store.tx():  # the attempt and its effect on the task commit together
            self.store.finish_attempt(
                attempt.attempt_id, status, out.exit_code, out.http_status, tail, error
            )
            self._rolled_back(ctx, attempt.task, ok=out.ok, error=error, tail=tail)

    def _rolled_back(
        self,
        ctx: RunContext,
        name: str,
        ok: bool,
        error: str | None = None,
        tail: str | None = None,
    ) -> None:
        rt = self.store.get_run_task(ctx.run.id, name)
        with self.store.tx():
            if ok:
                self.ledger.set_task(ctx, name, TaskStatus.ROLLED_BACK)
                self.store.restore_applied(ctx.name, name, rt.previous)
            else:
                ctx.rollback_failed = True
                self.ledger.set_task(ctx, name, TaskStatus.ROLLBACK_FAILED, error=error)
                self.ledger.emit(
                    ctx,
                    "task_rollback_failed",
                    name,
                    {"error": error, "output_tail": tail or ""},
                )
        log.info("task_rolled_back", run_id=ctx.run.id, workflow=ctx.name, task=name, ok=ok)


__all__ = ["Saga", "StartRollback"]
