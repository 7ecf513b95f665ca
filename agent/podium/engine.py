"""The executor: drives runs through their state machines.

One coordinator thread (the caller of :meth:`Engine.drive`) owns every state
transition and writes it to the store *before* the side effect it announces;
a pool of worker threads only executes attempts through the task runners and
hands outcomes back over a queue. Readiness is tracked incrementally (a count of
unmet needs per task), so a task starts as soon as its needs succeed and the cost
per task does not grow with the size of the DAG.

The engine's shared state and writes live in :mod:`podium.engine_core`, approval
gates in :mod:`podium.approval_gate`, failure handling and rollback in
:mod:`podium.rollbacks`, recording outcomes in :mod:`podium.outcomes`, loading run
contexts in :mod:`podium.runcontexts`, checkouts in :mod:`podium.checkouts` and crash
recovery in :mod:`podium.recovery`.
"""

from __future__ import annotations

import heapq
import queue
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import structlog

from podium import secrets
from podium.approval_gate import ApprovalGate
from podium.engine_core import EngineConfig
from podium.errors import PodiumError
from podium.kinds import runner_for
from podium.log import get_logger
from podium.outcomes import Outcomes
from podium.recovery import Recovery
from podium.runcontexts import RunContexts
from podium.runctx import AttemptResult, RunContext
from podium.runners.base import Outcome, OutcomeStatus, TaskContext
from podium.runners.shell import command_argv
from podium.spec.models import OnFailure
from podium.states import RUN_TERMINAL, RunStatus, TaskStatus
from podium.store.records import AttemptRecord

log = get_logger("podium.engine")


class Engine(ApprovalGate, Outcomes, RunContexts, Recovery):
    """Starts, resumes and finishes runs. Not thread-safe: one coordinator drives it."""

    # -- public -----------------------------------------------------------------

    def stop(self) -> None:
        """Stop starting tasks; running ones get ``shutdown_grace`` then are cancelled."""
        self._stopping.set()
        self._wake.set()
        if self._loop is not None:
            self._loop.wake()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wake(self) -> None:
        """Make a waiting :meth:`drive` look at the store again (a decision arrived)."""
        self._wake.set()
        if self._loop is not None:
            self._loop.wake()

    def close(self) -> None:
        """Release the workers. Attempts still in flight (the caller gave up on :meth:`drive`,
        e.g. a second Ctrl-C) are cancelled and recorded as interrupted, so the process can
        exit now and the next start resumes them."""
        if self._inflight:
            self._stopping.set()
            self._cancel.set()
        if self._loop is not None:
            end = time.monotonic() + self.config.grace + 2.0
            while self._loop and time.monotonic() < end:
                for key, outcome in self._loop.poll(0.1):
                    self._results.put(self._inline_result(key, outcome))
            self._loop.close()
            self._loop = None
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._inflight:
            try:
                self._drain_ready()
            except Exception:  # the store may be unusable: recover() settles what is left
                log.exception("engine_close_record_failed")

    @property
    def busy(self) -> bool:
        return self._inflight > 0

    def drive(self, *, wait: bool = True, idle_timeout: float | None = None) -> None:
        """Advance every active run until each is finished or waiting for a human.

        With ``wait=False`` it makes one step and returns (the agent calls it in a loop).
        """
        if not self._recovered:
            self.recover()
        deadline_idle = None if idle_timeout is None else time.monotonic() + idle_timeout
        carry: list[AttemptResult] = []
        loaded_at = -1.0
        while True:
            woken = self._wake.is_set()
            self._wake.clear()
            # outcomes and the starts they enable share one transaction; the processes
            # are spawned only after it committed (state before side effect)
            with self.store.tx():
                recorded = len(carry) + self._drain_ready()
                for result in carry:
                    self._record(result)
                carry = []
                # the store is re-read on a wake-up, or twice a second while tasks stream by
                if woken or time.monotonic() - loaded_at > 0.5 or not self._ctx:
                    self._load_active()
                    loaded_at = time.monotonic()
                progressed = self._step_all() or recorded > 0
            self._flush_submits()
            if self._inflight == 0 and not self._any_delayed():
                if progressed:
                    continue
                return
            if self._stopping.is_set():
                if self._inflight == 0:
                    return  # retries still in their backoff resume at the next start
                self._shutdown_running()
                continue
            timer = self._next_timer()
            if not wait:
                # one bounded wait for an outcome; return when nothing moves or on wake
                carry = self._wait(min(0.5 if timer is None else timer, 0.5))
                if (not carry and not progressed) or self._wake.is_set():
                    for result in carry:
                        self._record(result)
                    return
                continue
            carry = self._wait(timer)
            if deadline_idle is not None and time.monotonic() > deadline_idle:
                for result in carry:
                    self._record(result)
                return

    def _flush_submits(self) -> None:
        """Hand the attempts started in the last transaction to the worker pool."""
        submits, self._submits = self._submits, []
        for kind, config, tctx, attempt_id, phase in submits:
            if self._loop is not None and attempt_id in self._inline:
                argv = command_argv(config, tctx.env, tctx.cwd)
                outcome = self._loop.spawn(attempt_id, argv, tctx)
                if outcome is not None:
                    self._results.put(self._inline_result(attempt_id, outcome))
            else:
                self._pool.submit(self._execute, kind, config, tctx, attempt_id, phase)

    def _inline_result(self, key: Hashable, outcome: Outcome) -> AttemptResult:
        assert isinstance(key, int)
        run_id, task, phase = self._inline.pop(key)
        return AttemptResult(run_id, task, phase, key, outcome)

    def _wait(self, timeout: float | None) -> list[AttemptResult]:
        """Wait for outcomes (or a wake-up, or a timer); return them unrecorded."""
        if self._loop is not None:
            return self._wait_loop(timeout)
        waited = 0.0
        step = 0.05 if timeout is None else max(min(timeout, 0.25), 0.0)
        while True:
            try:
                first = self._results.get(timeout=max(step, 0.001))
            except queue.Empty:
                waited += step
                if self._wake.is_set() or self._stopping.is_set():
                    return []
                if timeout is not None and waited >= timeout:
                    return []
                continue
            return [first, *self._ready_results()]

    def _wait_loop(self, timeout: float | None) -> list[AttemptResult]:
        """:meth:`_wait` with shell attempts on the coordinator's own selector."""
        assert self._loop is not None
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            out = self._ready_results()
            remaining = None if end is None else max(0.0, end - time.monotonic())
            wait = 0.0 if out else (0.25 if remaining is None else min(remaining, 0.25))
            out += [self._inline_result(k, o) for k, o in self._loop.poll(wait)]
            if out:
                return out
            if self._wake.is_set() or self._stopping.is_set():
                return []
            if end is not None and time.monotonic() >= end:
                return []

    def _drain_ready(self) -> int:
        """Record outcomes that are already waiting, without blocking."""
        ready = self._ready_results()
        for result in ready:
            self._record(result)
        return len(ready)

    def _ready_results(self) -> list[AttemptResult]:
        """Outcomes worker threads have queued, without blocking."""
        out: list[AttemptResult] = []
        while self._results.qsize():  # only this thread takes from the queue
            out.append(self._results.get_nowait())
        return out

    # -- loading ----------------------------------------------------------------

    # -- stepping ---------------------------------------------------------------

    def _step_all(self) -> bool:
        progressed = False
        for run_id in list(self._ctx):
            ctx = self._ctx[run_id]
            submits, inflight = len(self._submits), self._inflight
            try:
                with self.store.savepoint():  # a step that fails undoes only its own writes
                    progressed |= self._step(ctx)
            except Exception as exc:
                for _kind, _config, _tctx, attempt_id, _phase in self._submits[submits:]:
                    self._inline.pop(attempt_id, None)
                del self._submits[submits:]  # nothing of the failed step is spawned
                self._inflight = inflight
                self._set_aside(run_id, ctx.name, exc)
                continue
            if ctx.run.status in RUN_TERMINAL:
                self._finish(ctx)
        return progressed

    def _record(self, res: AttemptResult) -> None:
        """Record an outcome; an unexpected error sets only that run aside."""
        ctx = self._ctx.get(res.run_id)
        try:
            with self.store.savepoint():
                self._record_outcome(res)
        except Exception as exc:
            self._set_aside(res.run_id, ctx.name if ctx else "?", exc)

    def _set_aside(self, run_id: int, workflow: str, exc: Exception) -> None:
        """An unexpected error in one run: log it with its workflow, mark the workflow
        Stalled, and leave the run alone until the agent restarts (the rest go on)."""
        message = f"internal error in run {run_id}: {type(exc).__name__}: {exc}"
        log.error("run_set_aside", run_id=run_id, workflow=workflow, error=message, exc_info=exc)
        self.set_aside[run_id] = (workflow, message)
        self._ctx.pop(run_id, None)
        try:
            with self.store.savepoint():
                self.store.set_workflow_status(workflow, "Stalled", "InternalError", message)
        except Exception:  # the store itself may be what failed
            log.exception("workflow_status_failed", workflow=workflow)

    def resync(self) -> None:
        """Forget the in-memory view of runs with nothing in flight, so the next step
        re-reads them from the store (after an unexpected error left it in doubt)."""
        for run_id in [i for i, c in self._ctx.items() if not c.running]:
            del self._ctx[run_id]

    @property
    def recovered(self) -> bool:
        """Whether :meth:`recover` ran (once per engine, before the first drive)."""
        return self._recovered

    def _step(self, ctx: RunContext) -> bool:
        if ctx.paused:
            return False  # a decision reloads the run
        progressed = False
        if ctx.run.status is RunStatus.PENDING:
            self._set_run(ctx, RunStatus.RUNNING)
            self._emit("started", ctx.name, ctx.wf, ctx.run.id, None, self._run_summary(ctx))
            progressed = True
        progressed |= self._check_approvals(ctx)
        self._promote_delayed(ctx)
        if ctx.rollback_queue is not None:
            return self._step_rollback(ctx) or progressed
        if ctx.failed and ctx.on_failure is not OnFailure.CONTINUE:
            if not ctx.running:
                self._after_failure(ctx)
                return True
            return progressed
        progressed |= self._start_ready(ctx)
        if not ctx.running and not ctx.ready and not ctx.delayed:
            progressed |= self._settle(ctx)
        return progressed

    def _start_ready(self, ctx: RunContext) -> bool:
        """Start ready tasks while the run's concurrency and the engine's limit allow."""
        progressed = False
        limit = ctx.wf.spec.concurrency
        while ctx.ready and len(ctx.running) < limit and not self._stopping.is_set():
            if self._inflight >= self.config.max_parallel:
                break
            name = ctx.ready.popleft()
            if ctx.status[name] is not TaskStatus.PENDING:
                continue
            progressed = True
            if ctx.gate(name) is not None and (self._sync_task(ctx, name) or self._gate(ctx, name)):
                continue  # an operator decided it meanwhile, or it waits for approval
            self._start(ctx, name)  # a decision made meanwhile is adopted instead
        return progressed

    def _settle(self, ctx: RunContext) -> bool:
        """Nothing can start now: the run is finished, or waits for a human."""
        statuses = set(ctx.status.values())
        if TaskStatus.WAITING_APPROVAL in statuses:
            return self._set_run(ctx, RunStatus.WAITING_APPROVAL)
        if TaskStatus.INTERRUPTED in statuses:
            return self._set_run(ctx, RunStatus.WAITING_DECISION)
        if TaskStatus.PENDING in statuses:
            if self._stopping.is_set():
                return False
            # pending tasks whose needs can never be met (continue mode): skip them
            changed = False
            for name, st in ctx.status.items():
                if st is TaskStatus.PENDING and ctx.unmet.get(name, 0) > 0:
                    if not self._sync_task(ctx, name):
                        self._set_task(
                            ctx, name, TaskStatus.SKIPPED, error="a task it needs failed"
                        )
                    changed = True
            return changed
        final = RunStatus.FAILED if ctx.failed else RunStatus.SUCCEEDED
        self._set_run(ctx, final)
        self._emit(str(final), ctx.name, ctx.wf, ctx.run.id, None, self._run_summary(ctx))
        return True

    def _promote_delayed(self, ctx: RunContext) -> None:
        now = time.time()
        while ctx.delayed and ctx.delayed[0][0] <= now:
            _, name = heapq.heappop(ctx.delayed)
            ctx.ready.append(name)

    # -- starting and finishing attempts -------------------------------------------

    def _start(self, ctx: RunContext, name: str, phase: str = "run") -> bool:
        """Start an attempt of ``name``; False when an operator decided the task meanwhile
        (the decision is adopted instead)."""
        spec = ctx.specs[name]
        log_tmpl = f"{ctx.log_dir}/{name}.{phase}.{{n}}.log"
        try:
            cwd = self._prepare(ctx)
            env = self._task_env(ctx, spec)
        except (PodiumError, OSError) as exc:
            message = str(exc)
            with self.store.tx():
                attempt = self._begin_attempt(ctx, name, phase, log_tmpl)
                if attempt is None:
                    return False
                self.store.finish_attempt(attempt.id, "failed", error=message)
            self._results.put(
                AttemptResult(
                    ctx.run.id,
                    name,
                    phase,
                    attempt.id,
                    Outcome(OutcomeStatus.FAILED, error=message),
                )
            )
            self._inflight += 1
            ctx.running.add(name)
            return True
        if phase == "run":
            kind, config = spec.kind, spec.config
        else:
            action = spec.rollback_action()
            assert action is not None
            kind, config = action
        attempt = self._begin_attempt(ctx, name, phase, log_tmpl, started_at=time.time())
        if attempt is None:
            return False
        env["PODIUM_ATTEMPT"] = str(attempt.number)
        env["PODIUM_ATTEMPT_ID"] = str(attempt.id)
        tctx = TaskContext(
            run_id=ctx.run.id,
            workflow=ctx.name,
            task_id=name,
            attempt=attempt.number,
            cwd=cwd / spec.workdir if spec.workdir else cwd,
            repo_root=cwd,
            env=env,
            log_path=Path(attempt.log_path or log_tmpl),
            timeout=spec.timeout,
            grace=self.config.grace,
            log_max_bytes=self.config.log_max_bytes,
            redact=secrets.redact,
            cancel=self._cancel,
            on_spawn=None,
        )
        ctx.running.add(name)
        self._inflight += 1
        if kind == "run" and self._loop is not None:
            self._inline[attempt.id] = (ctx.run.id, name, phase)
        self._submits.append((kind, config, tctx, attempt.id, phase))
        return True

    def _begin_attempt(
        self, ctx: RunContext, name: str, phase: str, log_tmpl: str, **fields: Any
    ) -> AttemptRecord | None:
        """Record a new attempt (a run-phase one moves the task to running, if nobody else
        moved it since: None then, and their status is adopted)."""
        run_id = ctx.run.id
        with self.store.tx():
            if phase != "run":
                return self.store.start_attempt(run_id, name, phase, log_tmpl)
            number = ctx.attempts.get(name, 0) + 1
            stored = self.store.claim_task(run_id, name, attempts=number, **fields)
            if stored is not None:
                self._sync_task(ctx, name, stored)
                return None
            attempt = self.store.start_attempt(run_id, name, phase, log_tmpl, number)
            if attempt.number != number:  # attempts were made that this engine did not see
                self.store.set_task_status(
                    run_id, name, TaskStatus.RUNNING, attempts=attempt.number
                )
        ctx.attempts[name] = attempt.number
        ctx.note(name, TaskStatus.RUNNING)
        return attempt

    def _execute(
        self, kind: str, config: Any, tctx: TaskContext, attempt_id: int, phase: str
    ) -> None:
        """Worker thread: run one attempt and hand the outcome to the coordinator."""
        with structlog.contextvars.bound_contextvars(
            run_id=tctx.run_id, workflow=tctx.workflow, task=tctx.task_id
        ):
            try:
                outcome = runner_for(kind).run(config, tctx)
            except Exception as exc:  # a runner bug must not kill the coordinator
                log.exception("runner_crashed", kind=kind)
                outcome = Outcome(OutcomeStatus.FAILED, error=f"runner error: {exc}")
        self._results.put(AttemptResult(tctx.run_id, tctx.task_id, phase, attempt_id, outcome))
        if self._loop is not None:
            self._loop.wake()

    # -- failure handling and rollback ---------------------------------------------

    # -- shutdown ---------------------------------------------------------------

    def _shutdown_running(self) -> None:
        """Give running tasks ``shutdown_grace`` seconds, then cancel them."""
        end = time.monotonic() + self.config.shutdown_grace
        while self._inflight and time.monotonic() < end:
            for result in self._wait_any(0.1):
                self._record(result)
        self._cancel.set()
        while self._inflight:
            for result in self._wait_any(0.1):
                self._record(result)

    def _wait_any(self, timeout: float) -> list[AttemptResult]:
        """Outcomes within ``timeout``, whatever the stop and wake flags say."""
        if self._loop is not None:
            out = [self._inline_result(k, o) for k, o in self._loop.poll(timeout)]
            return out + self._ready_results()
        try:
            return [self._results.get(timeout=timeout)]
        except queue.Empty:
            return []

    # -- helpers ----------------------------------------------------------------

    def _any_delayed(self) -> bool:
        return any(ctx.delayed for ctx in self._ctx.values())

    def _next_timer(self) -> float | None:
        soonest = min(
            (ctx.delayed[0][0] for ctx in self._ctx.values() if ctx.delayed), default=None
        )
        if soonest is None:
            return None
        return max(0.0, soonest - time.time())

    def _finish(self, ctx: RunContext) -> None:
        self._ctx.pop(ctx.run.id, None)
        self.finished_runs += 1
        self._remove_checkout(ctx.run.id)
        log.info(
            "run_finished",
            run_id=ctx.run.id,
            workflow=ctx.name,
            status=str(ctx.run.status),
        )


__all__ = ["Engine", "EngineConfig"]
