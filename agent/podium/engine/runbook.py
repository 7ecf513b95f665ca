"""The coordinator's in-memory views of the store's active runs, reloaded only on change."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path

from podium.engine.context import SATISFIED, RunContext
from podium.gates import gates_from
from podium.rundef import workflow_from
from podium.spec.loader import WorkflowDef
from podium.states import RunStatus, TaskStatus
from podium.store import Store
from podium.store.records import RunRecord

RollbackOrder = Callable[[int, bool], list[str]]


@dataclass
class Refresh:
    """What a :meth:`RunBook.refresh` found."""

    ended: list[RunContext] = field(default_factory=list)
    """Runs that are no longer active (ended elsewhere: superseded, decided)."""
    unreadable: list[tuple[int, str, Exception]] = field(default_factory=list)
    """(run id, workflow, error) of runs that could not be loaded."""


class RunBook:
    """Owns the views (:class:`RunContext`) of the runs being driven, and when to reload
    them: a new run, a run whose status changed outside, or a waiting run after a
    decision. Cheap when nothing changed (one small query)."""

    def __init__(self, store: Store, data_dir: Path, rollback_order: RollbackOrder) -> None:
        self.store = store
        self.data_dir = data_dir
        self.rollback_order = rollback_order
        self.contexts: dict[int, RunContext] = {}
        self._decisions_version: str | None = None

    def refresh(self, skip: Container[int] = ()) -> Refresh:
        """Track the store's active runs (but those in ``skip``)."""
        found = Refresh()
        active = self.store.active_run_statuses()
        for run_id in [i for i, c in self.contexts.items() if i not in active and not c.running]:
            ended = self.contexts.pop(run_id)
            with contextlib.suppress(Exception):  # ended elsewhere (superseded): say how
                ended.run = self.store.get_run(run_id)
            found.ended.append(ended)
        version = self.store.get("decisions_version")
        decided = version != self._decisions_version
        self._decisions_version = version
        for run_id, status in active.items():
            if run_id in skip:
                continue
            ctx = self.contexts.get(run_id)
            if ctx is not None and status is ctx.run.status:
                waiting = status in (RunStatus.WAITING_APPROVAL, RunStatus.WAITING_DECISION)
                if not (decided and waiting and not ctx.running):
                    continue
            try:
                fresh = self.make(self.store.get_run(run_id), ctx.wf if ctx is not None else None)
            except Exception as exc:  # one unreadable run must not stop the others
                workflow = ctx.name if ctx is not None else self._workflow_of(run_id)
                found.unreadable.append((run_id, workflow, exc))
                continue
            if ctx is not None:
                fresh.running = ctx.running  # attempts in flight still report here
            self.contexts[run_id] = fresh
        return found

    def drop(self, run_id: int) -> RunContext | None:
        return self.contexts.pop(run_id, None)

    def forget_idle(self) -> None:
        """Forget the views of runs with nothing in flight: the next refresh reads them from
        the store again (after an unexpected error left them in doubt)."""
        for run_id in [i for i, c in self.contexts.items() if not c.running]:
            del self.contexts[run_id]

    def make(self, run: RunRecord, wf: WorkflowDef | None = None) -> RunContext:
        """A fresh view of ``run`` from the store."""
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
            log_dir=str(self.data_dir / "logs" / f"run-{run.id}"),
            gates=gates_from(run.definition),
        )
        now = time.time()
        for name in tasks:  # definition order keeps starts deterministic
            st = status[name]
            if st is TaskStatus.PENDING and unmet[name] == 0:
                nb = tasks[name].not_before
                if nb is not None and nb > now:
                    ctx.delay(name, nb)
                else:
                    ctx.ready.append(name)
            if st in (TaskStatus.FAILED, TaskStatus.TIMED_OUT):
                ctx.failed = True
            if st is TaskStatus.ROLLBACK_FAILED:
                ctx.rollback_failed = True
        if run.status is RunStatus.ROLLING_BACK:
            ctx.rollback_queue = self.rollback_order(run.id, True)
        elif run.status is RunStatus.WAITING_DECISION and TaskStatus.INTERRUPTED in status.values():
            holds = self.store.holds_all()
            ctx.paused = any(
                h.run_id == run.id and h.phase == "rollback"
                for (w, _t), h in holds.items()
                if w == run.workflow
            )
        return ctx

    def _workflow_of(self, run_id: int) -> str:
        try:
            return self.store.workflow_of_run(run_id) or "?"
        except Exception:  # the store itself may be what fails
            return "?"


__all__ = ["Refresh", "RunBook"]
