"""Recording what an attempt did: success (applied), a retry, a final failure, a shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable

from podium import secrets
from podium.engine.context import InFlight, RunContext
from podium.engine.ledger import Ledger
from podium.engine.saga import Saga
from podium.log import get_logger
from podium.planner import Applied
from podium.retry import compute_backoff, should_retry
from podium.runners.base import Outcome, OutcomeStatus
from podium.states import TaskStatus
from podium.store import Store

log = get_logger("podium.engine")


class OutcomeRecorder:
    """Turns an attempt's outcome into the run's next state. No state of its own: the run's
    context and the store are what it changes."""

    def __init__(
        self, store: Store, ledger: Ledger, saga: Saga, stopping: Callable[[], bool]
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.saga = saga
        self.stopping = stopping

    def record(self, ctx: RunContext, attempt: InFlight, out: Outcome) -> None:
        ctx.running.discard(attempt.task)
        tail = secrets.redact(out.output_tail) if out.output_tail else out.output_tail
        if attempt.phase == "rollback":
            self.saga.record(ctx, attempt, out, tail)
            return
        if out.status is OutcomeStatus.CANCELLED and self.stopping():
            self._shutdown(ctx, attempt, out, tail)
            return
        if out.ok:
            self._succeeded(ctx, attempt, out, tail)
            return
        self._failed(ctx, attempt, out, tail)

    def _succeeded(
        self, ctx: RunContext, attempt: InFlight, out: Outcome, tail: str | None
    ) -> None:
        name = attempt.task
        spec = ctx.specs[name]
        spec_hash, inputs_hash = ctx.hashes[name]
        now = time.time()
        with self.store.tx():
            self.store.finish_attempt(
                attempt.attempt_id, "succeeded", out.exit_code, out.http_status, tail
            )
            self.ledger.set_task(
                ctx, name, TaskStatus.SUCCEEDED, completed_seq=ctx.next_seq(), finished_at=now
            )
            self.store.set_applied(
                ctx.name,
                name,
                Applied(ctx.fingerprints[name], spec_hash, inputs_hash, ctx.run.revision, now),
                ctx.run.id,
                spec.rollback_action(),
            )
        ctx.release(name)
        self.ledger.hook("task_succeeded", ctx, name, out)

    def _failed(self, ctx: RunContext, attempt: InFlight, out: Outcome, tail: str | None) -> None:
        name = attempt.task
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
                    attempt.attempt_id, status, out.exit_code, out.http_status, tail, error
                )
                self.ledger.set_task(
                    ctx, name, TaskStatus.PENDING, not_before=time.time() + delay, error=error
                )
            ctx.delay(name, time.time() + delay)
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
                attempt.attempt_id, status, out.exit_code, out.http_status, tail, error
            )
            self.ledger.task_failed(
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
        self.ledger.hook("task_failed", ctx, name, out)

    def _shutdown(self, ctx: RunContext, attempt: InFlight, out: Outcome, tail: str | None) -> None:
        """Cut short by the agent's shutdown: idempotent tasks run again at the next start;
        the others wait for a human, announced exactly as after a crash."""
        with self.store.tx():
            if not self.ledger.cut_short_by_shutdown(ctx, attempt, out.exit_code, tail, "run"):
                self.ledger.set_task(ctx, attempt.task, TaskStatus.PENDING)


__all__ = ["OutcomeRecorder"]
