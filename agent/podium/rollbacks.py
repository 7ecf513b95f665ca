"""After a final failure: cancel what did not start, roll back what succeeded (saga)."""

from __future__ import annotations

from podium.engine_core import EngineCore
from podium.log import get_logger
from podium.runctx import AttemptResult, RunContext
from podium.runners.base import OutcomeStatus
from podium.spec.models import OnFailure
from podium.states import TASK_TERMINAL, RunStatus, TaskStatus

log = get_logger("podium.engine")


class Rollbacks(EngineCore):
    """The engine's failure handling: stop, continue, or roll back in reverse order."""

    def _cancel_unstarted(self, ctx: RunContext) -> None:
        for name, st in ctx.status.items():
            if st in (TaskStatus.PENDING, TaskStatus.WAITING_APPROVAL, TaskStatus.INTERRUPTED):
                if self._sync_task(ctx, name) and ctx.status[name] in TASK_TERMINAL:
                    continue  # an operator decided it meanwhile
                with self.store.tx():
                    for req in self.store.approvals(run_id=ctx.run.id, task=name, status="pending"):
                        self.store.decide_approval(
                            req.id, "cancelled", None, "run failed", "engine"
                        )
                    self._set_task(ctx, name, TaskStatus.CANCELLED)
        ctx.ready.clear()
        ctx.delayed.clear()

    def _after_failure(self, ctx: RunContext) -> None:
        self._cancel_unstarted(ctx)
        if ctx.on_failure is OnFailure.ROLLBACK:
            with self.store.tx():
                self._set_run(ctx, RunStatus.ROLLING_BACK)
                self._emit("rolling_back", ctx.name, ctx.wf, ctx.run.id, None, {})
            ctx.rollback_queue = self._rollback_order(ctx.run.id, resume=False)
            self._step_rollback(ctx)
        else:
            self._set_run(ctx, RunStatus.FAILED)
            self._emit("failed", ctx.name, ctx.wf, ctx.run.id, None, self._run_summary(ctx))

    def _rollback_order(self, run_id: int, resume: bool) -> list[str]:
        tasks = self.store.run_tasks(run_id)
        todo = [
            t
            for t in tasks.values()
            if t.status is TaskStatus.SUCCEEDED or (resume and t.status is TaskStatus.ROLLING_BACK)
        ]
        todo.sort(key=lambda t: t.completed_seq or 0, reverse=True)
        return [t.task for t in todo]

    def _step_rollback(self, ctx: RunContext) -> bool:
        assert ctx.rollback_queue is not None
        if ctx.running or self._stopping.is_set():
            return False  # stopping: the run stays rolling_back and resumes at the next start
        while ctx.rollback_queue:
            name = ctx.rollback_queue[0]
            spec = ctx.specs[name]
            if ctx.status[name] is TaskStatus.SUCCEEDED:
                self._set_task(ctx, name, TaskStatus.ROLLING_BACK)
            if spec.rollback_action() is None:
                ctx.rollback_queue.pop(0)
                self._rolled_back(ctx, name, ok=True)
                continue
            self._start(ctx, name, phase="rollback")
            return True
        final = RunStatus.ROLLBACK_FAILED if ctx.rollback_failed else RunStatus.ROLLED_BACK
        ctx.rollback_queue = None
        self._set_run(ctx, final)
        kind = str(final)
        if ctx.run.trigger == "prune" and final is RunStatus.ROLLED_BACK:
            kind = "pruned"  # removing tasks on purpose is no failure to alert on
        self._emit(kind, ctx.name, ctx.wf, ctx.run.id, None, self._run_summary(ctx))
        return True

    def _record_rollback(self, ctx: RunContext, res: AttemptResult, tail: str | None) -> None:
        out = res.outcome
        if out.status is OutcomeStatus.CANCELLED and self._stopping.is_set():
            # not a failed rollback: the run stays rolling_back and resumes at the next start,
            # unless the task is not idempotent: then a human decides first
            with self.store.tx():
                self.store.finish_attempt(
                    res.attempt_id,
                    "interrupted",
                    out.exit_code,
                    None,
                    tail,
                    "cancelled: the agent is shutting down",
                )
                if not ctx.specs[res.task].idempotent:
                    rt = self.store.get_run_task(ctx.run.id, res.task)
                    self._hold(
                        ctx.run,
                        ctx.wf,
                        rt,
                        res.attempt_id,
                        0,
                        "rollback",
                        why="the agent was shut down while it ran",
                    )
                    ctx.note(res.task, TaskStatus.INTERRUPTED)
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
        if ctx.rollback_queue and ctx.rollback_queue[0] == res.task:
            ctx.rollback_queue.pop(0)
        with self.store.tx():  # the attempt and its effect on the task commit together
            self.store.finish_attempt(
                res.attempt_id, status, out.exit_code, out.http_status, tail, error
            )
            self._rolled_back(ctx, res.task, ok=out.ok, error=error, tail=tail)

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
                self._set_task(ctx, name, TaskStatus.ROLLED_BACK)
                self.store.restore_applied(ctx.name, name, rt.previous)
            else:
                ctx.rollback_failed = True
                self._set_task(ctx, name, TaskStatus.ROLLBACK_FAILED, error=error)
                self._emit(
                    "task_rollback_failed",
                    ctx.name,
                    ctx.wf,
                    ctx.run.id,
                    name,
                    {"error": error, "output_tail": tail or ""},
                )
        log.info("task_rolled_back", run_id=ctx.run.id, workflow=ctx.name, task=name, ok=ok)


__all__ = ["Rollbacks"]
