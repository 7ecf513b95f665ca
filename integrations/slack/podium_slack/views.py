"""Read models: what a Slack message shows, gathered from the state store.

Messages are rendered from the store's *current* state, not from the event that
triggered them, so an event delivered late or out of order (after a Slack outage)
still produces the right message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from podium.errors import NotFoundError
from podium.store import Store
from podium.store.records import RunRecord

FAILED_TASK = ("failed", "timed_out")


@dataclass(frozen=True)
class RevisionView:
    sha: str
    subject: str = ""
    author: str = ""
    email: str = ""


@dataclass(frozen=True)
class TaskView:
    name: str
    status: str
    reason: str
    error: str | None = None


@dataclass(frozen=True)
class RunView:
    id: int
    workflow: str
    status: str
    trigger: str
    revision: RevisionView
    tasks: tuple[TaskView, ...]
    duration: float | None
    error: str | None = None


@dataclass(frozen=True)
class FailureView:
    task: str
    status: str
    error: str
    exit_code: int | None
    http_status: int | None
    attempts: int
    """Attempts that ran (0: it never started, e.g. rejected at its approval)."""
    output_tail: str


@dataclass(frozen=True)
class RollbackView:
    rolled_back: tuple[str, ...]
    failed: tuple[FailureView, ...]


@dataclass(frozen=True)
class ApprovalView:
    id: int
    run_id: int
    workflow: str
    task: str
    status: str
    approvers: tuple[str, ...]
    requested_at: float
    deadline: float | None
    on_timeout: str
    decided_by: str | None
    decided_at: float | None
    comment: str | None
    revision: RevisionView
    action: str
    reason: str
    message: str | None


def revision_view(store: Store, sha: str) -> RevisionView:
    info = store.revision_info(sha) or {}
    return RevisionView(
        sha=sha,
        subject=str(info.get("subject") or ""),
        author=str(info.get("author") or ""),
        email=str(info.get("author_email") or ""),
    )


def run_view(store: Store, run_id: int) -> RunView:
    run = store.get_run(run_id)
    tasks = tuple(
        TaskView(t.task, str(t.status), t.reason, t.error) for t in store.run_tasks(run_id).values()
    )
    return RunView(
        id=run.id,
        workflow=run.workflow,
        status=str(run.status),
        trigger=run.trigger,
        revision=revision_view(store, run.revision),
        tasks=tasks,
        duration=run.duration,
        error=run.error,
    )


def _failure(store: Store, run_id: int, task: str, phase: str) -> FailureView | None:
    attempts = [a for a in store.attempts(run_id, task) if a.phase == phase]
    rt = store.get_run_task(run_id, task)
    last = attempts[-1] if attempts else None
    failed = [a for a in attempts if a.status in ("failed", "timed_out")]
    error = (last.error if last else None) or rt.error or "failed"
    return FailureView(
        task=task,
        status=str(rt.status),
        error=error,
        exit_code=last.exit_code if last else None,
        http_status=last.http_status if last else None,
        attempts=len(failed) if phase == "run" else len(attempts),
        output_tail=(last.output_tail if last else None) or "",
    )


def failures_view(store: Store, run_id: int) -> list[FailureView]:
    """Tasks of the run that finally failed, with their last attempt."""
    out = []
    for name, rt in store.run_tasks(run_id).items():
        if str(rt.status) in FAILED_TASK:
            found = _failure(store, run_id, name, "run")
            if found is not None:
                out.append(found)
    return out


def rollback_view(store: Store, run_id: int) -> RollbackView:
    tasks = store.run_tasks(run_id).values()
    done = tuple(
        t.task
        for t in sorted(tasks, key=lambda t: -(t.completed_seq or 0))
        if str(t.status) == "rolled_back"
    )
    failed = tuple(
        f
        for t in tasks
        if str(t.status) == "rollback_failed"
        and (f := _failure(store, run_id, t.task, "rollback")) is not None
    )
    return RollbackView(done, failed)


def _task_spec(run: RunRecord, task: str) -> dict[str, Any]:
    for spec in (run.definition.get("spec") or {}).get("tasks") or []:
        if isinstance(spec, dict) and spec.get("id") == task:
            return spec
    return {}


def _describe(spec: dict[str, Any]) -> str:
    """What a task does, from its frozen definition (fallback when no event says it)."""
    if isinstance(spec.get("run"), str):
        return str(spec["run"])
    http = spec.get("http")
    if isinstance(http, dict):
        return f"{http.get('method', 'GET')} {http.get('url', '')}".strip()
    if spec.get("python") is not None:
        return f"python {spec['python']}"
    return "(unknown action)"


def approval_view(store: Store, approval_id: int) -> ApprovalView:
    req = store.get_approval(approval_id)
    run = store.get_run(req.run_id)
    spec = _task_spec(run, req.task)
    action, reason = "", ""
    for event in store.events(run_id=req.run_id, kind="approval_requested"):
        if event.data.get("approval_id") == approval_id:
            action = str(event.data.get("action") or "")
            reason = str(event.data.get("reason") or "")
    if not reason:
        try:
            reason = store.get_run_task(req.run_id, req.task).reason
        except NotFoundError:
            reason = ""
    approval = spec.get("approval") if isinstance(spec.get("approval"), dict) else {}
    return ApprovalView(
        id=req.id,
        run_id=req.run_id,
        workflow=run.workflow,
        task=req.task,
        status=req.status,
        approvers=tuple(req.approvers),
        requested_at=req.requested_at,
        deadline=req.deadline,
        on_timeout=req.on_timeout,
        decided_by=req.decided_by,
        decided_at=req.decided_at,
        comment=req.comment,
        revision=revision_view(store, req.revision),
        action=action or _describe(spec),
        reason=reason,
        message=(approval or {}).get("message"),
    )


__all__ = [
    "ApprovalView",
    "FailureView",
    "RevisionView",
    "RollbackView",
    "RunView",
    "TaskView",
    "approval_view",
    "failures_view",
    "revision_view",
    "rollback_view",
    "run_view",
]
