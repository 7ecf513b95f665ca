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
- :class:`~podium.engine.recovery.Recovery`: settling what a dead agent left running;
- :class:`~podium.engine.dispatch.Dispatch`: the attempts in flight and the orders waiting
  for their transaction to commit;
- :class:`~podium.engine.starter.AttemptStarter`: claiming an attempt and writing its order.
"""

from __future__ import annotations

import threading
import time

from podium.engine.approvals import ApprovalGates
from podium.engine.checkouts import Checkouts
from podium.engine.config import EngineConfig
from podium.engine.context import InFlight, RunContext
from podium.engine.dispatch import Dispatch
from podium.engine.ledger import Hook, Ledger
from podium.engine.outcomes import OutcomeRecorder
from podium.engine.recovery import Recovery
from podium.engine.runbook import RunBook
from podium.engine.saga import Saga
from podium.engine.starter import AttemptStarter
from podium.executor.base import Executor, ExecutorEvent
from podium.log import get_logger
from podium.runners.base import Outcome
from podium.source.base import Source
from podium.spec.models import OnFailure
from podium.states import RUN_TERMINAL, RunStatus, TaskStatus
from podium.store import Store

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
        self.dispatch = Dispatch(self.executor)
        self.starter = AttemptStarter(store, self.ledger, self.checkouts, self.dispatch, config)
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
        return self.dispatch.busy

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
        if self.dispatch.busy:
            self._stopping.set()
            self.executor.cancel_all()
            end = time.monotonic() + self.config.grace + 2.0
            try:
                while self.dispatch.busy and time.monotonic() < end:
                    self._absorb(self.dispatch.poll(0.1))
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
                recorded = self._absorb(carry + self.dispatch.take_early())
                carry = []
                # the store is re-read on a wake-up, or twice a second while tasks stream by
                if woken or time.monotonic() - loaded_at > 0.5 or not self.book.contexts:
                    self._load_active()
                    loaded_at = time.monotonic()
                progressed = self._step_all() or recorded > 0
            self.dispatch.hand_over()
            if not self.dispatch.busy and not self._any_delayed():
                if progressed:
                    continue
                return
            if self._stopping.is_set():
                if not self.dispatch.busy:
                    return  # retries still in their backoff resume at the next start
                self._shutdown_running()
                continue
            timer = self._next_timer()
            if not wait:
                # one bounded wait for an outcome; return when nothing moves or on wake
                carry = self.dispatch.wait(
                    min(0.5 if timer is None else timer, 0.5), self._look_elsewhere
                )
                if (not carry and not progressed) or self._wake.is_set():
                    self._absorb(carry)
                    return
                continue
            carry = self.dispatch.wait(timer, self._look_elsewhere)
            if deadline_idle is not None and time.monotonic() > deadline_idle:
                self._absorb(carry)
                return

    def _look_elsewhere(self) -> bool:
        """Whether a wait for reports should end early (a wake-up, a stop)."""
        return self._wake.is_set() or self._stopping.is_set()

    def _absorb(self, events: list[ExecutorEvent]) -> int:
        """Record the outcomes of attempts this engine waits for; returns how many."""
        done = self.dispatch.finished(events)
        for attempt, outcome in done:
            self._record(attempt, outcome)
        return len(done)

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
            mark = self.dispatch.mark()
            try:
                with self.store.savepoint():  # a step that fails undoes only its own writes
                    progressed |= self._step(ctx)
            except Exception as exc:
                self.dispatch.drop_since(mark)  # nothing of the failed step is handed over
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
            if len(self.dispatch) >= self.config.max_parallel:
                break
            name = ctx.ready.popleft()
            if ctx.status[name] is not TaskStatus.PENDING:
                continue
            progressed = True
            if ctx.gate(name) is not None and (
                self.ledger.sync_task(ctx, name) or self.gates.gate(ctx, name)
            ):
                continue  # an operator decided it meanwhile, or it waits for approval
            self.starter.start(ctx, name)  # a decision made meanwhile is adopted instead
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
        return self.starter.start(ctx, name, "rollback")

    # -- shutdown and failures --------------------------------------------------------

    def _shutdown_running(self) -> None:
        """Give running tasks ``shutdown_grace`` seconds, then cancel them."""
        end = time.monotonic() + self.config.shutdown_grace
        while self.dispatch.busy and time.monotonic() < end:
            self._absorb(self.dispatch.poll(0.1))
        self.executor.cancel_all()
        while self.dispatch.busy:
            self._absorb(self.dispatch.poll(0.1))

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
