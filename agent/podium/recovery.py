"""After a restart: settle what a dead agent left running."""

from __future__ import annotations

import structlog

from podium.checkouts import Checkouts
from podium.leftovers import kill_leftover, leftover_processes
from podium.rundef import workflow_from
from podium.states import TaskStatus

log = structlog.get_logger("podium.engine")


class Recovery(Checkouts):
    """The engine's crash recovery."""

    def recover(self) -> None:
        """After a restart: settle attempts that a dead agent left 'running', and remove
        checkouts no active run needs."""
        self._recovered = True
        leftovers: dict[int, list[int]] | None = None
        for run in self.store.active_runs():
            recovered = False
            for attempt in self.store.running_attempts(run.id):
                if leftovers is None:
                    leftovers = leftover_processes(self.config.data_dir)
                for pid in leftovers.get(attempt.id, []):
                    kill_leftover(pid, attempt.id, self.config.data_dir, self.config.grace)
                recovered = True
                self.store.finish_attempt(
                    attempt.id, "interrupted", error="agent stopped while the attempt ran"
                )
                rt = self.store.get_run_task(run.id, attempt.task)
                if attempt.phase == "rollback" or rt.status is not TaskStatus.RUNNING:
                    continue
                wf = workflow_from(run.definition)
                spec = next(t for t in wf.spec.tasks if t.id == attempt.task)
                with self.store.tx():
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
                        self.store.set_task_status(
                            run.id,
                            attempt.task,
                            TaskStatus.INTERRUPTED,
                            error="interrupted: the agent stopped while this non-idempotent"
                            " task ran; retry, skip or fail it",
                        )
                        self._emit(
                            "waiting_decision",
                            run.workflow,
                            wf,
                            run.id,
                            attempt.task,
                            {"attempt": attempt.number},
                        )
            if recovered:
                log.info("run_recovered", run_id=run.id, workflow=run.workflow)
        self._sweep_checkouts()


__all__ = ["Recovery"]
