"""What a new revision does to what already exists: runs waiting on tasks it changed are
superseded (nobody approves X and gets Y), and tasks it removed are pruned (rolled back as
defined at the revision that applied them) where the workflow asks for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.errors import PodiumError
from podium.fingerprint import TaskFingerprint, fingerprint_workflow
from podium.log import get_logger
from podium.notify.routing import routes_for
from podium.planner import Plan
from podium.rundef import definition_of
from podium.source.base import Source
from podium.spec.loader import DesiredState, load_config, load_workflow
from podium.spec.models import RepoConfig
from podium.states import RunStatus, TaskStatus
from podium.store import Store

log = get_logger("podium.reconcile")

_UNFINISHED = (TaskStatus.WAITING_APPROVAL, TaskStatus.PENDING, TaskStatus.INTERRUPTED)


def supersede_waiting(
    store: Store,
    notifiers: tuple[str, ...],
    state: DesiredState,
    fingerprints: Mapping[str, Mapping[str, TaskFingerprint]],
    the_plan: Plan,
) -> list[int]:
    """Cancel waiting runs whose waiting task changed in Git (nobody approves X and gets Y).

    Only the fingerprint of a task that waits (for approval, or for a decision after an
    interruption) counts: a change to another task of the run does not cancel it; that
    task's new form runs after it, at the next plan."""
    out: list[int] = []
    for run_id, _workflow, status in store.active_run_heads():
        if status not in (RunStatus.WAITING_APPROVAL, RunStatus.WAITING_DECISION):
            continue
        run = store.get_run(run_id)
        wp = the_plan.workflow(run.workflow)
        fps = fingerprints.get(run.workflow)
        tasks = store.run_tasks(run.id)
        waiting = {
            n: t
            for n, t in tasks.items()
            if t.status in (TaskStatus.WAITING_APPROVAL, TaskStatus.INTERRUPTED)
        }
        cancel = {n for n, t in tasks.items() if t.status in _UNFINISHED}
        if wp is None or fps is None:
            changed = True
        else:
            changed = any(
                n not in fps or fps[n].fingerprint != t.fingerprint for n, t in waiting.items()
            )
        if not changed:
            continue
        notify = (
            state.workflows[run.workflow].spec.notify if run.workflow in state.workflows else None
        )
        with store.tx():
            for name in waiting:
                for req in store.approvals(run_id=run.id, task=name, status="pending"):
                    store.decide_approval(
                        req.id,
                        "superseded",
                        None,
                        f"superseded by {state.revision}",
                        "git",
                    )
                    store.emit(
                        "approval_superseded",
                        workflow=run.workflow,
                        run_id=run.id,
                        task=name,
                        data={"approval_id": req.id, "revision": state.revision},
                        routes=routes_for("approval_superseded", notify, notifiers),
                    )
            for name in cancel:
                store.set_task_status(run.id, name, TaskStatus.CANCELLED)
            store.set_run_status(run.id, RunStatus.CANCELLED, "superseded by a new revision")
            store.emit(
                "cancelled",
                workflow=run.workflow,
                run_id=run.id,
                data={"reason": "superseded", "revision": state.revision},
                routes=routes_for("cancelled", notify, notifiers),
            )
        log.info("run_superseded", run_id=run.id, workflow=run.workflow)
        out.append(run.id)
    return out


def prune_removed(
    store: Store,
    source: Source,
    notifiers: tuple[str, ...],
    workflow: str,
    file: str,
    tasks: list[str],
    config: RepoConfig,
) -> int | None:
    """Roll back tasks removed from Git, as defined at the revision that applied them.

    Returns the prune run started (None when none was: the tasks are only forgotten)."""
    by_revision: dict[str, list[dict[str, Any]]] = {}
    applied = store.applied_rows(workflow)
    for task in tasks:
        row = applied.get(task)
        if row is not None:
            by_revision.setdefault(str(row["revision"]), []).append(row)
    started: int | None = None
    for revision, rows in sorted(by_revision.items()):
        try:
            snap = source.snapshot(revision)
            old, _ = load_workflow(snap, file, load_config(snap)[0])
        except (PodiumError, OSError):
            old = None
        names = [str(r["task"]) for r in rows]
        if old is None or any(n not in fingerprint_workflow(old) for n in names):
            store.forget_applied(workflow, names)
            log.warning("prune_skipped", workflow=workflow, tasks=names, revision=revision)
            continue
        fps = fingerprint_workflow(old)
        run_tasks = [
            {
                "task": str(r["task"]),
                "fingerprint": str(r["fingerprint"]),
                "spec_hash": str(r["spec_hash"]),
                "inputs_hash": str(r["inputs_hash"]),
                "reason": "removed",
                "previous": None,
                "status": TaskStatus.SUCCEEDED,
            }
            for r in rows
        ]
        with store.tx():
            run_id = store.create_run(
                workflow,
                revision,
                "prune",
                definition_of(old, fps, config.directory, config.operators),
                run_tasks,
            )
            store.set_run_status(run_id, RunStatus.RUNNING)
            store.set_run_status(run_id, RunStatus.ROLLING_BACK)
            store.emit(
                "pruning",
                workflow=workflow,
                run_id=run_id,
                data={"tasks": names, "revision": revision},
                routes=routes_for("pruning", None, notifiers),
            )
        log.info("prune_started", workflow=workflow, run_id=run_id, tasks=names)
        started = run_id
        break  # one run at a time per workflow: tasks applied at other revisions follow
    return started


__all__ = ["prune_removed", "supersede_waiting"]
