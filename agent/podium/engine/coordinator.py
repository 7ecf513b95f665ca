"""The engine: a small coordinator that owns the run state machines.

One coordinator thread (the caller of :meth:`Engine.drive`) owns every state transition
and writes it to the store *before* the side effect it announces. What an attempt does
is the :class:`~podium.executor.base.Executor`'s business: the engine hands it attempt
orders after the transaction that claimed them committed, and records the outcomes it
reports. Readiness is tracked incrementally (a count of unmet needs per task), so a task
starts as soon as its needs succeed and the cost per task does not grow with the DAG.

The engine delegates to collaborators it makes and owns, each with its own narrow state:

- :class:`~podium.engine.runbook.RunBook`: the in-memory views of active runs;
- :class:`~podium.engine.ledger.Ledger`: status changes, failures, holds and events;
- :class:`~podium.engine.approvals.ApprovalGates`: asking for and applying approvals;
- :class:`~podium.engine.saga.Saga`: failure policies and the rollback of a run;
- :class:`~podium.engine.outcomes.OutcomeRecorder`: what an attempt's outcome changes;
- :class:`~podium.engine.checkouts.Checkouts`: a run's checkout and its tasks' environment;
- :class:`~podium.engine.recovery.Recovery`: settling what a dead agent left running.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from podium.engine.approvals import ApprovalGates
from podium.engine.checkouts import Checkouts
from podium.engine.config import EngineConfig
from podium.engine.context import InFlight, RunContext
from podium.engine.ledger import Hook, Ledger
from podium.engine.outcomes import OutcomeRecorder
from podium.engine.recovery import Recovery
from podium.engine.runbook import RunBook
from podium.engine.saga import Saga
from podium.errors import PodiumError
from podium.executor.base import AttemptOrder, Executor, ExecutorEvent, Finished
from podium.log import get_logger
from podium.runners.base import Outcome, OutcomeStatus
from podium.source.base import Source
from podium.spec.models import OnFailure
from podium.states import RUN_TERMINAL, RunStatus, TaskStatus
from podium.store import Store
from podium.store.records import AttemptRecord

log = get_logger("podium.engine")


class Engine:
    """Starts, resumes and finishes runs. Not thread-safe: one coordinator drives it
    (:meth:`stop` and :meth:`wake` may be called from any thread)."""

    def __init__(
        self,
        store: Store,
        source: Source | None,
        config: EngineConfig,
        executor: Executor | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.config = config
        if executor is None:
            from podium.executor.local import LocalExecutor

            executor = LocalExecutor(
                max_workers=config.max_parallel,
                secrets_dir=config.secrets_dir,
                inline_shell=config.inline_shell,
            )
        self.executor: Executor = executor
        self.ledger = Ledger(store, config)
        self.checkouts = Checkouts(source, config.data_dir, config.keep_checkouts)
        self.gates = ApprovalGates(store, self.ledger, source)
        self.saga = Saga(store, self.ledger, self._start_rollback, lambda: self.stopping)
        self.outcomes = OutcomeRecorder(store, self.ledger, self.saga, lambda: self.stopping)
        self.book = RunBook(store, config.data_dir, self.saga.rollback_order)
        self.recovery = Recovery(store, self.ledger, config.data_dir, config.grace)
        self._inflight: dict[int, InFlight] = {}
        """Attempts handed to the executor (or failed before it), by attempt id."""
        self._submits: list[AttemptOrder] = []
        """Orders claimed in the current transaction, handed over once it committed."""
        self._early: list[ExecutorEvent] = []
        """Outcomes the engine itself produced (an attempt that could not be prepared)."""
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._recovered = False
        self.finished_runs = 0
        """How many runs this engine saw end (the agent re-plans when it grows)."""
        self.set_aside: dict[int, tuple[str, str]] = {}
        """Runs left alone after an unexpected error: id → (workflow, error)."""

    # -- controls (any thread) ----------------------------------------------------

    def stop(self) -> None:
        """Stop starting tasks; running ones get ``shutdown_grace`` then are cancelled."""
        self._stopping.set()
        self._wake.set()
        self.executor.wake()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wake(self) -> None:
        """Make a waiting :meth:`drive` look at the store again (a decision arrived)."""
        self._wake.set()
        self.executor.wake()

    @property
    def hooks(self) -> list[Hook]:
        """Called on task outcomes (metrics); see :class:`Ledger`."""
        return self.ledger.hooks

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    @property
    def recovered(self) -> bool:
        """Whether :meth:`recover` ran (once per engine, before the first drive)."""
        return self._recovered

    # -- life cycle ---------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: settle attempts a dead agent left running, and remove
        checkouts no active run needs."""
        self._recovered = True
        self.recovery.recover(self._set_aside)
        self.checkouts.sweep({run_id for run_id, _w, _s in self.store.active_run_heads()})

    def close(self) -> None:
        """Release the executor. Attempts still in flight (the caller gave up on
        :meth:`drive`, e.g. a second Ctrl-C) are cancelled and recorded as interrupted,
        so the process can exit now and the next start resumes them."""
        if self._inflight:
            self._stopping.set()
            self.executor.cancel_all()
            end = time.monotonic() + self.config.grace + 2.0
            try:
                while self._inflight and time.monotonic() < end:
                    self._absorb(self.executor.poll(0.1))
            except Exception:  # the store may be unusable: recover() settles what is left
                log.exception("engine_close_record_failed")
        self.executor.close()

    def resync(self) -> None:
        """Forget the in-memory view of runs with nothing in flight, so the next step
        re-reads them from the store (after an unexpected error left it in doubt)."""
        self.book.forget_idle()

    # -- driving ------------------------------------------------------------------

    def drive(self, *, wait: bool = True, idle_timeout: float | None = None) -> None:
        """Advance every active run until each is finished or waiting for a human.

        With ``wait=False`` it makes one step and returns (the agent calls it in a loop).
        """
        if not self._recovered:
            self.recover()
        deadline_idle = None if idle_timeout is None else time.monotonic() + idle_timeout
        carry: list[ExecutorEvent] = []
        loaded_at = -1.0
        while True:
            woken = self._wake.is_set()
            self._wake.clear()
            # outcomes and the starts they enable share one transaction; attempts are
            # handed to the executor only after it committed (state before side effect)
            with self.store.tx():
                recorded = self._absorb(carry + self._take_early())
                carry = []
                # the store is re-read on a wake-up, or twice a second while tasks stream by
                if woken or time.monotonic() - loaded_at > 0.5 or not self.book.contexts:
                    self._load_active()
                    loaded_at = time.monotonic()
                progressed = self._step_all() or recorded > 0
            self._hand_over()
            if not self._inflight and not self._any_delayed():
                if progressed:
                    continue
                return
            if self._stopping.is_set():
                if not self._inflight:
                    return  # retries still in their backoff resume at the next start
                self._shutdown_running()
                continue
            timer = self._next_timer()
            if not wait:
                # one bounded wait for an outcome; return when nothing moves or on wake
                carry = self._wait(min(0.5 if timer is None else timer, 0.5))
                if (not carry and not progressed) or self._wake.is_set():
                    self._absorb(carry)
                    return
                continue
            carry = self._wait(timer)
            if deadline_idle is not None and time.monotonic() > deadline_idle:
                self._absorb(carry)
                return

    def _hand_over(self) -> None:
        """Give the executor the attempts claimed in the transaction that just committed."""
        orders, self._submits = self._submits, []
        for order in orders:
            self.executor.submit(order)

    def _take_early(self) -> list[ExecutorEvent]:
        early, self._early = self._early, []
        return early

    def _wait(self, timeout: float | None) -> list[ExecutorEvent]:
        """Wait for outcomes (or a wake-up, or a timer); return them unrecorded."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            out = self._take_early()
            remaining = None if end is None else max(0.0, end - time.monotonic())
            wait = 0.0 if out else (0.25 if remaining is None else min(remaining, 0.25))
            out += self.executor.poll(wait)
            if out:
                return out
            if self._wake.is_set() or self._stopping.is_set():
                return []
            if end is not None and time.monotonic() >= end:
                return []

    def _absorb(self, events: list[ExecutorEvent]) -> int:
        """Record the outcomes of attempts this engine waits for; a report of any other
        attempt (late, or a second one) is ignored. Returns how many were recorded."""
        recorded = 0
        for event in events:
            if not isinstance(event, Finished):
                continue
            attempt = self._inflight.pop(event.attempt_id, None)
            if attempt is None:
                log.info("attempt_report_ignored", attempt_id=event.attempt_id)
                continue
            self._record(attempt, event.outcome)
            recorded += 1
        return recorded

    def _record(self, attempt: InFlight, outcome: Outcome) -> None:
        """Record an outcome; an unexpected error sets only that run aside."""
        ctx = self.book.contexts.get(attempt.run_id)
        if ctx is None:  # its run was set aside after an internal error: the store decides
            log.warning("outcome_of_set_aside_run", run_id=attempt.run_id, task=attempt.task)
            return
        try:
            with self.store.savepoint():
                self.outcomes.record(ctx, attempt, outcome)
        except Exception as exc:
            self._set_aside(attempt.run_id, ctx.name, exc)

    def _load_active(self) -> None:
        found = self.book.refresh(skip=self.set_aside)
        for ctx in found.ended:
            self._finish(ctx)
        for run_id, workflow, exc in found.unreadable:
            self._set_aside(run_id, workflow, exc)

    # -- stepping -------------------------------------------------------------------

    def _step_all(self) -> bool:
        progressed = False
        for run_id in list(self.book.contexts):
            ctx = self.book.contexts[run_id]
            submits = len(self._submits)
            try:
                with self.store.savepoint():  # a step that fails undoes only its own writes
                    progressed |= self._step(ctx)
            except Exception as exc:
                for order in self._submits[submits:]:  # nothing of the failed step is handed over
                    self._inflight.pop(order.attempt_id, None)
                del self._submits[submits:]
                self._set_aside(run_id, ctx.name, exc)
                continue
            if ctx.run.status in RUN_TERMINAL:
                self.book.drop(run_id)
                self._finish(ctx)
        return progressed

    def _step(self, ctx: RunContext) -> bool:
        if ctx.paused:
            return False  # a decision reloads the run
        progressed = False
        if ctx.run.status is RunStatus.PENDING:
            self.ledger.set_run(ctx, RunStatus.RUNNING)
            self.ledger.emit_summary(ctx, "started")
            progressed = True
        progressed |= self.gates.check(ctx)
        ctx.promote_delayed()
        if ctx.rollback_queue is not None:
            return self.saga.step(ctx) or progressed
        if ctx.failed and ctx.on_failure is not OnFailure.CONTINUE:
            if not ctx.running:
                self.saga.after_failure(ctx)
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
            if len(self._inflight) >= self.config.max_parallel:
                break
            name = ctx.ready.popleft()
            if ctx.status[name] is not TaskStatus.PENDING:
                continue
            progressed = True
            if ctx.gate(name) is not None and (
                self.ledger.sync_task(ctx, name) or self.gates.gate(ctx, name)
            ):
                continue  # an operator decided it meanwhile, or it waits for approval
            self._start(ctx, name)  # a decision made meanwhile is adopted instead
        return progressed

    def _settle(self, ctx: RunContext) -> bool:
        """Nothing can start now: the run is finished, or waits for a human."""
        statuses = set(ctx.status.values())
        if TaskStatus.WAITING_APPROVAL in statuses:
            return self.ledger.set_run(ctx, RunStatus.WAITING_APPROVAL)
        if TaskStatus.INTERRUPTED in statuses:
            return self.ledger.set_run(ctx, RunStatus.WAITING_DECISION)
        if TaskStatus.PENDING in statuses:
            if self._stopping.is_set():
                return False
            # pending tasks whose needs can never be met (continue mode): skip them
            changed = False
            for name, st in ctx.status.items():
                if st is TaskStatus.PENDING and ctx.unmet.get(name, 0) > 0:
                    if not self.ledger.sync_task(ctx, name):
                        self.ledger.set_task(
                            ctx, name, TaskStatus.SKIPPED, error="a task it needs failed"
                        )
                    changed = True
            return changed
        final = RunStatus.FAILED if ctx.failed else RunStatus.SUCCEEDED
        self.ledger.set_run(ctx, final)
        self.ledger.emit_summary(ctx, str(final))
        return True

    # -- starting attempts ----------------------------------------------------------

    def _start_rollback(self, ctx: RunContext, name: str) -> bool:
        return self._start(ctx, name, "rollback")

    def _start(self, ctx: RunContext, name: str, phase: str = "run") -> bool:
        """Claim an attempt of ``name`` and queue its order for the executor; False when an
        operator decided the task meanwhile (the decision is adopted instead)."""
        spec = ctx.specs[name]
        log_tmpl = f"{ctx.log_dir}/{name}.{phase}.{{n}}.log"
        try:
            root = self.checkouts.prepare(ctx)
            env, secrets = self.checkouts.task_env(ctx, spec)
        except (PodiumError, OSError) as exc:
            return self._start_failed(ctx, name, phase, log_tmpl, str(exc))
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
        ctx.running.add(name)
        self._inflight[attempt.id] = InFlight(ctx.run.id, name, phase, attempt.id, attempt.number)
        self._submits.append(
            AttemptOrder(
                attempt_id=attempt.id,
                run_id=ctx.run.id,
                workflow=ctx.name,
                task=name,
                phase=phase,
                number=attempt.number,
                kind=kind,
                config=config,
                env=env,
                secrets=secrets,
                cwd=str(root / spec.workdir if spec.workdir else root),
                repo_root=str(root),
                revision=ctx.run.revision,
                timeout=spec.timeout,
                grace=self.config.grace,
                log_path=attempt.log_path or log_tmpl,
                log_max_bytes=self.config.log_max_bytes,
            )
        )
        return True

    def _start_failed(
        self, ctx: RunContext, name: str, phase: str, log_tmpl: str, message: str
    ) -> bool:
        """The attempt cannot even be prepared (no checkout): it is recorded as failed."""
        with self.store.tx():
            attempt = self._begin_attempt(ctx, name, phase, log_tmpl)
            if attempt is None:
                return False
            self.store.finish_attempt(attempt.id, "failed", error=message)
        self._inflight[attempt.id] = InFlight(ctx.run.id, name, phase, attempt.id, attempt.number)
        self._early.append(Finished(attempt.id, Outcome(OutcomeStatus.FAILED, error=message)))
        ctx.running.add(name)
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
                self.ledger.sync_task(ctx, name, stored)
                return None
            attempt = self.store.start_attempt(run_id, name, phase, log_tmpl, number)
            if attempt.number != number:  # attempts were made that this engine did not see
                self.store.set_task_status(
                    run_id, name, TaskStatus.RUNNING, attempts=attempt.number
                )
        ctx.attempts[name] = attempt.number
        ctx.note(name, TaskStatus.RUNNING)
        return attempt

    # -- shutdown and failures --------------------------------------------------------

    def _shutdown_running(self) -> None:
        """Give running tasks ``shutdown_grace`` seconds, then cancel them."""
        end = time.monotonic() + self.config.shutdown_grace
        while self._inflight and time.monotonic() < end:
            self._absorb(self._take_early() + self.executor.poll(0.1))
        self.executor.cancel_all()
        while self._inflight:
            self._absorb(self._take_early() + self.executor.poll(0.1))

    def _set_aside(self, run_id: int, workflow: str, exc: Exception) -> None:
        """An unexpected error in one run: log it with its workflow, mark the workflow
        Stalled, and leave the run alone until the agent restarts (the rest go on)."""
        message = f"internal error in run {run_id}: {type(exc).__name__}: {exc}"
        log.error("run_set_aside", run_id=run_id, workflow=workflow, error=message, exc_info=exc)
        self.set_aside[run_id] = (workflow, message)
        self.book.drop(run_id)
        try:
            with self.store.savepoint():
                self.store.set_workflow_status(workflow, "Stalled", "InternalError", message)
        except Exception:  # the store itself may be what failed
            log.exception("workflow_status_failed", workflow=workflow)

    def _finish(self, ctx: RunContext) -> None:
        self.finished_runs += 1
        self.checkouts.remove(ctx.run.id)
        self.gates.forget(ctx.run.id)
        log.info("run_finished", run_id=ctx.run.id, workflow=ctx.name, status=str(ctx.run.status))

    # -- timers -----------------------------------------------------------------------

    def _any_delayed(self) -> bool:
        return any(ctx.delayed for ctx in self.book.contexts.values())

    def _next_timer(self) -> float | None:
        soonest = min(
            (ctx.delayed[0][0] for ctx in self.book.contexts.values() if ctx.delayed),
            default=None,
        )
        if soonest is None:
            return None
        return max(0.0, soonest - time.time())


__all__ = ["Engine"]
