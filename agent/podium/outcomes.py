"""Writing what an attempt did: success (applied), retry, final failure, shutdown."""

from __future__ import annotations

import heapq
import time

from podium import secrets
from podium.log import get_logger
from podium.planner import Applied
from podium.retry import compute_backoff, should_retry
from podium.rollbacks import Rollbacks
from podium.runctx import AttemptResult, RunContext
from podium.runners.base import OutcomeStatus
from podium.states import TaskStatus

log = get_logger("podium.engine")


class Outcomes(Rollbacks):
    """The engine's recording of attempt outcomes (the coordinator calls it)."""

    def _record_outcome(self, res: AttemptResult) -> None:
        self._inflight -= 1
        ctx = self._ctx.get(res.run_id)
        if ctx is None:  # its run was set aside after an internal error: the store decides
            log.warning("outcome_of_set_aside_run", run_id=res.run_id, task=res.task)
            return
        ctx.running.discard(res.task)
        out = res.outcome
        tail = secrets.redact(out.output_tail) if out.output_tail else out.output_tail
        if res.phase == "rollback":
            self._record_rollback(ctx, res, tail)
            return
        name = res.task
        if out.status is OutcomeStatus.CANCELLED and self._stopping.is_set():
            self._record_shutdown(ctx, res, tail)
            return
        if out.ok:
            spec = ctx.specs[name]
            spec_hash, inputs_hash = ctx.hashes[name]
            with self.store.tx():
                self.store.finish_attempt(
                    res.attempt_id, "succeeded", out.exit_code, out.http_status, tail
                )
                self._set_task(
                    ctx,
                    name,
                    TaskStatus.SUCCEEDED,
                    completed_seq=ctx.next_seq(),
                    finished_at=time.time(),
                )
                self.store.set_applied(
                    ctx.name,
                    name,
                    Applied(
                        ctx.fingerprints[name],
                        spec_hash,
                        inputs_hash,
                        ctx.run.revision,
                        time.time(),
                    ),
                    ctx.run.id,
                    spec.rollback_action(),
                )
            self._release_dependants(ctx, name)
            self._hook("task_succeeded", ctx, name, out)
            return
        status = "timed_out" if out.status is OutcomeStatus.TIMED_OUT else "failed"
        error = out.error or (
            f"timed out after {ctx.specs[name].timeout}s"
            if status == "timed_out"
            else f"exit code {out.exit_code}"
            if out.exit_code is not None
            else f"HTTP {out.http_status}"
            if out.http_status is not None
            else "failed"
        )
        failures = ctx.failures.get(name, 0) + 1
        ctx.failures[name] = failures
        policy = ctx.specs[name].retries
        if should_retry(policy, failures):  # also when stopping: the retry is persisted
            delay = compute_backoff(policy, failures)
            with self.store.tx():
                self.store.finish_attempt(
                    res.attempt_id, status, out.exit_code, out.http_status, tail, error
                )
                self._set_task(
                    ctx, name, TaskStatus.PENDING, not_before=time.time() + delay, error=error
                )
            heapq.heappush(ctx.delayed, (time.time() + delay, name))
            log.info(
                "task_retry_scheduled",
                run_id=ctx.run.id,
                workflow=ctx.name,
                task=name,
                failures=failures,
                delay=round(delay, 3),
                error=error,
            )
            return
        with self.store.tx():
            self.store.finish_attempt(
                res.attempt_id, status, out.exit_code, out.http_status, tail, error
            )
            self._task_failed_final(
                ctx,
                name,
                error,
                TaskStatus(status),
                {
                    "exit_code": out.exit_code,
                    "http_status": out.http_status,
                    "attempts": failures,
                    "output_tail": tail or "",
                },
            )
        self._hook("task_failed", ctx, name, out)

    def _record_shutdown(self, ctx: RunContext, res: AttemptResult, tail: str | None) -> None:
        name = res.task
        with self.store.tx():
            self.store.finish_attempt(
                res.attempt_id,
                "interrupted",
                res.outcome.exit_code,
                None,
                tail,
                "cancelled: the agent is shutting down",
            )
            if ctx.specs[name].idempotent:
                self._set_task(ctx, name, TaskStatus.PENDING)
            else:  # announced and held exactly as after a crash
                rt = self.store.get_run_task(ctx.run.id, name)
                self._hold(
                    ctx.run,
                    ctx.wf,
                    rt,
                    res.attempt_id,
                    ctx.attempts.get(name, 0),
                    "run",
                    why="the agent was shut down while it ran",
                )
                ctx.note(name, TaskStatus.INTERRUPTED)


__all__ = ["Outcomes"]
