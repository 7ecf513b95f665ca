"""After a restart: settle what a dead agent left running."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from podium.engine.ledger import Ledger
from podium.log import get_logger
from podium.rundef import workflow_from
from podium.runners.containment import kill_attempt
from podium.states import TaskStatus
from podium.store import Store
from podium.store.records import AttemptRecord, RunRecord

log = get_logger("podium.engine")

SetAside = Callable[[int, str, Exception], None]


class Recovery:
    """Settles the attempts a dead agent left ``running``: nothing of them stays alive;
    an idempotent task runs again, another waits for a human (a hold)."""

    def __init__(self, store: Store, ledger: Ledger, data_dir: Path, grace: float) -> None:
        self.store = store
        self.ledger = ledger
        self.data_dir = data_dir
        self.grace = grace

    def recover(self, set_aside: SetAside) -> None:
        """Settle every active run's leftover attempts; a run that cannot be read is handed
        to ``set_aside`` and the others still resume."""
        for run_id, workflow, _status in self.store.active_run_heads():
            try:
                self._recover_run(run_id)
            except Exception as exc:  # one damaged run must not keep the others from resuming
                set_aside(run_id, workflow, exc)

    def _recover_run(self, run_id: int) -> None:
        run = self.store.get_run(run_id)
        recovered = False
        for attempt in self.store.running_attempts(run.id):
            # nothing of the old attempt may run once its task is started again
            kill_attempt(attempt.id, attempt.started_at, self.data_dir, self.grace)
            recovered = True
            self._settle(run, attempt)
        if recovered:
            log.info("run_recovered", run_id=run.id, workflow=run.workflow)

    def _settle(self, run: RunRecord, attempt: AttemptRecord) -> None:
        """Re-run the attempt's task when it is idempotent, else hold it for a human."""
        rt = self.store.get_run_task(run.id, attempt.task)
        wf = workflow_from(run.definition)
        spec = next(t for t in wf.spec.tasks if t.id == attempt.task)
        with self.store.tx():
            self.store.finish_attempt(
                attempt.id, "interrupted", error="agent stopped while the attempt ran"
            )
            if attempt.phase == "rollback":
                if rt.status is TaskStatus.ROLLING_BACK and not spec.idempotent:
                    self.ledger.hold(run, wf, rt, attempt.id, attempt.number, "rollback")
                return  # an idempotent rollback runs again when the run resumes
            if rt.status is not TaskStatus.RUNNING:
                return
            if spec.idempotent:
                self.store.set_task_status(run.id, attempt.task, TaskStatus.PENDING)
                self.store.emit(
                    "task_resumed",
                    workflow=run.workflow,
                    run_id=run.id,
                    task=attempt.task,
                    data={"attempt": attempt.number},
                )
            else:
                self.ledger.hold(run, wf, rt, attempt.id, attempt.number, "run")


__all__ = ["Recovery", "SetAside"]
