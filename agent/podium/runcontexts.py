"""The coordinator's in-memory view of the store's active runs, reloaded only on change."""

from __future__ import annotations

import contextlib
import heapq
import time

from podium.engine_core import SATISFIED
from podium.gates import gates_from
from podium.log import get_logger
from podium.rollbacks import Rollbacks
from podium.runctx import RunContext
from podium.rundef import workflow_from
from podium.spec.loader import WorkflowDef
from podium.states import RunStatus, TaskStatus
from podium.store.records import RunRecord

log = get_logger("podium.engine")


class RunContexts(Rollbacks):
    """Loads and refreshes the run contexts the engine drives."""

    def _load_active(self) -> None:
        """Track the store's active runs; reload a run only when something outside changed it.

        Cheap when nothing changed (one small query): definitions are decoded only for new
        runs or a changed run status, and waiting runs are refreshed only after a decision.
        """
        active = self.store.active_run_statuses()
        for run_id in [i for i, c in self._ctx.items() if i not in active and not c.running]:
            ended = self._ctx[run_id]
            with contextlib.suppress(Exception):  # ended elsewhere (superseded): say how
                ended.run = self.store.get_run(run_id)
            self._finish(ended)
        version = self.store.get("decisions_version")
        decided = version != self._decisions_version
        self._decisions_version = version
        for run_id, status in active.items():
            if run_id in self.set_aside:
                continue
            ctx = self._ctx.get(run_id)
            if ctx is not None and status is ctx.run.status:
                waiting = status in (RunStatus.WAITING_APPROVAL, RunStatus.WAITING_DECISION)
                if not (decided and waiting and not ctx.running):
                    continue
            try:
                run = self.store.get_run(run_id)
                fresh = self._make_ctx(run, ctx.wf if ctx is not None else None)
            except Exception as exc:  # one unreadable run must not stop the others
                self._set_aside(run_id, ctx.name if ctx else self._workflow_of(run_id), exc)
                continue
            if ctx is not None:
                fresh.checkout, fresh.env_base = ctx.checkout, ctx.env_base
                fresh.author_email, fresh.committer_email = ctx.author_email, ctx.committer_email
                fresh.running = ctx.running  # attempts in flight still report here
            self._ctx[run_id] = fresh

    def _workflow_of(self, run_id: int) -> str:
        try:
            return self.store.workflow_of_run(run_id) or "?"
        except Exception:  # the store itself may be what fails
            return "?"

    def _make_ctx(self, run: RunRecord, wf: WorkflowDef | None = None) -> RunContext:
        wf = wf if wf is not None else workflow_from(run.definition)
        tasks = self.store.run_tasks(run.id)
        specs = {t.id: t for t in wf.spec.tasks}
        status = {name: rt.status for name, rt in tasks.items()}
        failures: dict[str, int] = {}
        if any(rt.attempts for rt in tasks.values()):  # a resumed run: one query for all
            for a in self.store.attempts(run.id):
                if a.phase == "run" and a.status in ("failed", "timed_out"):
                    failures[a.task] = failures.get(a.task, 0) + 1
        dependants: dict[str, list[str]] = {name: [] for name in tasks}
        unmet: dict[str, int] = {}
        for name in tasks:
            count = 0
            for need in specs[name].needs:
                if need in tasks:
                    dependants[need].append(name)
                    if status[need] not in SATISFIED:
                        count += 1
            unmet[name] = count
        ctx = RunContext(
            run=run,
            wf=wf,
            specs=specs,
            status=status,
            failures=failures,
            fingerprints={n: rt.fingerprint for n, rt in tasks.items()},
            hashes={n: (rt.spec_hash, rt.inputs_hash) for n, rt in tasks.items()},
            dependants=dependants,
            unmet=unmet,
            waiting={n for n, s in status.items() if s is TaskStatus.WAITING_APPROVAL},
            completed=max((rt.completed_seq or 0 for rt in tasks.values()), default=0),
            attempts={n: rt.attempts for n, rt in tasks.items() if rt.attempts},
            log_dir=str(self.config.data_dir / "logs" / f"run-{run.id}"),
            gates=gates_from(run.definition),
        )
        now = time.time()
        for name in tasks:  # definition order keeps starts deterministic
            st = status[name]
            if st is TaskStatus.PENDING and unmet[name] == 0:
                nb = tasks[name].not_before
                if nb is not None and nb > now:
                    heapq.heappush(ctx.delayed, (nb, name))
                else:
                    ctx.ready.append(name)
            if st in (TaskStatus.FAILED, TaskStatus.TIMED_OUT):
                ctx.failed = True
            if st is TaskStatus.ROLLBACK_FAILED:
                ctx.rollback_failed = True
        if run.status is RunStatus.ROLLING_BACK:
            ctx.rollback_queue = self._rollback_order(run.id, resume=True)
        elif run.status is RunStatus.WAITING_DECISION and TaskStatus.INTERRUPTED in status.values():
            holds = self.store.holds_all()
            ctx.paused = any(
                h.run_id == run.id and h.phase == "rollback"
                for (w, _t), h in holds.items()
                if w == run.workflow
            )
        return ctx


__all__ = ["RunContexts"]
