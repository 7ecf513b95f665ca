"""After a restart: settle what a dead agent left running."""

from __future__ import annotations

from podium.checkouts import Checkouts
from podium.log import get_logger
from podium.rundef import workflow_from
from podium.runners.containment import kill_attempt
from podium.states import TaskStatus
from podium.store.records import AttemptRecord, RunRecord

log = get_logger("podium.engine")


class Recovery(Checkouts):
    """The engine's crash recovery."""

    def recover(self) -> None:
        """After a restart: settle attempts that a dead agent left 'running', and remove
        checkouts no active run needs."""
        self._recovered = True
        for run_id, workflow, _status in self.store.active_run_heads():
            try:
                self._recover_run(run_id)
            except Exception as exc:  # one damaged run must not keep the others from resuming
                self._set_aside(run_id, workflow, exc)
        self._sweep_checkouts()

    def _recover_run(self, run_id: int) -> None:
        run = self.store.get_run(run_id)
        recovered = False
        for attempt in self.store.running_attempts(run.id):
            # nothing of the old attempt may run once its task is started again
            config = self.config
            kill_attempt(attempt.id, attempt.started_at, config.data_dir, config.grace)
            recovered = True
            self._settle_interrupted(run, attempt)
        if recovered:
            log.info("run_recovered", run_id=run.id, workflow=run.workflow)

    def _settle_interrupted(self, run: RunRecord, attempt: AttemptRecord) -> None:
        """An attempt a dead agent left running: re-run it when its task is idempotent,
        else its task waits for a human (a hold that outlives the run, until decided)."""
        rt = self.store.get_run_task(run.id, attempt.task)
        wf = workflow_from(run.definition)
        spec = next(t for t in wf.spec.tasks if t.id == attempt.task)
        with self.store.tx():
            self.store.finish_attempt(
                attempt.id, "interrupted", error="agent stopped while the attempt ran"
            )
            if attempt.phase == "rollback":
                if rt.status is TaskStatus.ROLLING_BACK and not spec.idempotent:
                    self._hold(run, wf, rt, attempt.id, attempt.number, "rollback")
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
                self._hold(run, wf, rt, attempt.id, attempt.number, "run")


__all__ = ["Recovery"]
