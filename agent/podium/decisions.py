"""Human decisions: approve, reject, retry, skip, fail.

The CLI, the HTTP face and chat integrations all come through here, so every
path checks the same rules (approver list, four-eyes, superseded or expired
requests) and writes the same audit events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from podium.directory import Directory, StaticDirectory, is_allowed
from podium.errors import DecisionError, NotFoundError
from podium.log import get_logger
from podium.notify.routing import routes_for
from podium.planner import Applied, Hold
from podium.rundef import directory_from
from podium.states import RUN_TERMINAL, RunStatus, TaskStatus
from podium.store import Store
from podium.store.records import ApprovalRecord, RunRecord, RunTaskRecord

log = get_logger("podium.decisions")


@dataclass(frozen=True)
class DecisionResult:
    message: str
    approval: ApprovalRecord | None = None


class Decisions:
    """Checks and records decisions; refusals raise :class:`DecisionError` and are audited."""

    def __init__(
        self,
        store: Store,
        directory: Callable[[RunRecord], Directory] | None = None,
        notifiers: Sequence[str] = ("console",),
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self._directory = directory or (lambda run: StaticDirectory(directory_from(run.definition)))
        self.notifiers = tuple(notifiers)
        self.on_change = on_change

    # -- helpers ----------------------------------------------------------------

    def _routes(self, run: RunRecord, kind: str) -> list[tuple[str, str | None]]:
        from podium.spec.models import NotifyRoute

        raw = (run.definition.get("spec") or {}).get("notify") or {}
        notify = {k: NotifyRoute.model_validate(v) for k, v in raw.items()}
        return routes_for(kind, notify, self.notifiers)

    def _refuse(
        self, run: RunRecord, task: str | None, by: str, via: str, reason: str, kind: str
    ) -> DecisionError:
        self.store.emit(
            "decision_refused",
            workflow=run.workflow,
            run_id=run.id,
            task=task,
            actor=by,
            data={"action": kind, "reason": reason, "via": via},
        )
        log.warning("decision_refused", run_id=run.id, task=task, actor=by, reason=reason)
        return DecisionError(reason)

    def _changed(self) -> None:
        with self.store.tx():
            self.store.put("replan_requested", "1")
            self.store.put("decisions_version", str(time.time_ns()))
        if self.on_change is not None:
            self.on_change()

    def pending_request(self, run_id: int, task: str) -> ApprovalRecord | None:
        reqs = self.store.approvals(run_id=run_id, task=task)
        return reqs[-1] if reqs else None

    def request_by_id(self, approval_id: int) -> ApprovalRecord:
        return self.store.get_approval(approval_id)

    # -- approvals ----------------------------------------------------------------

    def decide(
        self,
        run_id: int,
        task: str,
        by: str,
        approve: bool,
        comment: str | None = None,
        via: str = "cli",
        approval_id: int | None = None,
    ) -> DecisionResult:
        """Approve or reject the task's open approval request."""
        run = self.store.get_run(run_id)
        action = "approve" if approve else "reject"
        if not by.strip():
            raise DecisionError("say who decides (--by)")
        try:
            rt = self.store.get_run_task(run_id, task)
        except NotFoundError as exc:
            raise self._refuse(run, task, by, via, str(exc), action) from exc
        requests = self.store.approvals(run_id=run_id, task=task)
        if approval_id is not None:
            requests = [r for r in requests if r.id == approval_id]
        if not requests:
            raise self._refuse(
                run,
                task,
                by,
                via,
                f"task {task!r} of run {run_id} has no approval request",
                action,
            )
        req = requests[-1]
        if req.status != "pending":
            what = {
                "superseded": "was superseded by a newer revision",
                "approved": f"was already approved by {req.decided_by}",
                "rejected": f"was already rejected by {req.decided_by}",
                "cancelled": "was cancelled (the run ended)",
            }.get(req.status, f"is {req.status}")
            if req.decided_by == "timeout":
                what = "expired"
            raise self._refuse(run, task, by, via, f"approval request {req.id} {what}", action)
        if req.deadline is not None and req.deadline <= time.time():
            # the engine applies on_timeout at its next look; a late click must not win
            raise self._refuse(
                run,
                task,
                by,
                via,
                f"approval request {req.id} expired (its timeout passed;"
                f" on_timeout: {req.on_timeout})",
                action,
            )
        if req.fingerprint != rt.fingerprint or run.status in RUN_TERMINAL:
            raise self._refuse(
                run, task, by, via, "approval request no longer matches the run", action
            )
        directory = self._directory(run)
        if not is_allowed(by, req.approvers, directory):
            raise self._refuse(
                run,
                task,
                by,
                via,
                f"{by} is not an approver of {run.workflow}/{task}"
                f" (approvers: {', '.join(req.approvers)})",
                action,
            )
        spec = run.definition.get("spec") or {}
        forbid = req.forbid_self_approval
        if forbid is None:  # a request made before the rule was bound to it
            forbid = bool(spec.get("forbid_self_approval"))
        people = {e.lower() for e in (req.author_email, req.committer_email) if e}
        if approve and forbid and people:
            ids = {i.lower() for i in directory.identities(by)}
            if people & ids:
                raise self._refuse(
                    run,
                    task,
                    by,
                    via,
                    f"{by} authored or committed the change ({', '.join(sorted(people & ids))})"
                    " and cannot approve it (four-eyes rule)",
                    action,
                )
        status = "approved" if approve else "rejected"
        with self.store.tx():
            if not self.store.decide_approval(req.id, status, by, comment, via):
                raise DecisionError(f"approval request {req.id} was decided meanwhile")
            self.store.emit(
                "approval_decided",
                workflow=run.workflow,
                run_id=run.id,
                task=task,
                actor=by,
                data={
                    "approval_id": req.id,
                    "decision": status,
                    "comment": comment,
                    "via": via,
                    "fingerprint": req.fingerprint,
                },
                routes=self._routes(run, "approval_decided"),
            )
        log.info("approval_decided", run_id=run_id, task=task, actor=by, decision=status)
        self._changed()
        return DecisionResult(
            f"{status} {run.workflow}/{task} in run {run_id}", self.store.get_approval(req.id)
        )

    # -- operator decisions --------------------------------------------------------

    def retry(self, run_id: int, by: str, via: str = "cli") -> DecisionResult:
        """Retry a failed run (a new run at the next pass) or an interrupted task in place."""
        run = self.store.get_run(run_id)
        tasks = self.store.run_tasks(run_id)
        interrupted = [n for n, t in tasks.items() if t.status is TaskStatus.INTERRUPTED]
        holds = self._holds(run)
        if run.status is RunStatus.WAITING_DECISION and interrupted:
            with self.store.tx():
                for name in interrupted:
                    hold = holds.get(name)
                    if hold is not None and hold.phase == "rollback":
                        self.store.set_task_status(run_id, name, TaskStatus.ROLLING_BACK)
                        self.store.set_run_status(run_id, RunStatus.ROLLING_BACK)
                    else:
                        self.store.set_task_status(run_id, name, TaskStatus.PENDING, error=None)
                    self.store.clear_hold(run.workflow, name)
                self.store.emit(
                    "retry_requested",
                    workflow=run.workflow,
                    run_id=run_id,
                    actor=by,
                    data={"tasks": interrupted, "via": via},
                )
            self._changed()
            return DecisionResult(f"run {run_id}: {', '.join(interrupted)} will run again")
        if run.status not in RUN_TERMINAL:
            raise DecisionError(f"run {run_id} is {run.status}; only finished runs can be retried")
        if run.status is RunStatus.SUCCEEDED and not holds:
            raise DecisionError(f"run {run_id} succeeded; nothing to retry")
        with self.store.tx():
            self.store.clear_failures(run.workflow)
            for name in holds:  # interrupted tasks of a run that ended since run again
                self.store.clear_hold(run.workflow, name)
            self.store.emit(
                "retry_requested",
                workflow=run.workflow,
                run_id=run_id,
                actor=by,
                data={"via": via, "released": sorted(holds)},
            )
        self._changed()
        return DecisionResult(
            f"{run.workflow}: failures of run {run_id} cleared; its outstanding tasks run"
            " at the next reconcile"
        )

    def _holds(self, run: RunRecord) -> dict[str, Hold]:
        """The holds this run's interrupted attempts left, by task."""
        return {
            t: h
            for (w, t), h in self.store.holds_all().items()
            if w == run.workflow and h.run_id == run.id
        }

    def _decide_hold(
        self, run: RunRecord, rt: RunTaskRecord, hold: Hold, by: str, status: TaskStatus, via: str
    ) -> DecisionResult:
        """Skip or fail a task held by an interrupted attempt: of a run that ended since
        (superseded), or a rollback step cut short."""
        task = rt.task
        skip = status is TaskStatus.SKIPPED
        with self.store.tx():
            self.store.clear_hold(run.workflow, task)
            if hold.phase == "rollback" and rt.status is TaskStatus.INTERRUPTED:
                # skip: take the rollback as done; fail: the rollback failed
                done = TaskStatus.ROLLED_BACK if skip else TaskStatus.ROLLBACK_FAILED
                self.store.set_task_status(run.id, task, done, error=f"{status} by {by}")
                if skip:
                    self.store.restore_applied(run.workflow, task, rt.previous)
                if run.status is RunStatus.WAITING_DECISION:
                    self.store.set_run_status(run.id, RunStatus.ROLLING_BACK)
            elif skip:  # the interrupted attempt is taken as done
                self.store.set_applied(
                    run.workflow,
                    task,
                    Applied(
                        hold.fingerprint, rt.spec_hash, rt.inputs_hash, run.revision, time.time()
                    ),
                    run.id,
                )
            else:
                self.store.set_failure(run.workflow, task, hold.fingerprint, run.id)
            self.store.emit(
                f"task_{status}_by_operator",
                workflow=run.workflow,
                run_id=run.id,
                task=task,
                actor=by,
                data={"via": via, "was": "interrupted", "phase": hold.phase},
            )
        self._changed()
        return DecisionResult(f"run {run.id}: task {task} {status}")

    def _operator_task(
        self, run_id: int, task: str, by: str, status: TaskStatus, via: str
    ) -> DecisionResult:
        run = self.store.get_run(run_id)
        hold = self._holds(run).get(task)
        if hold is not None:
            rt = self.store.get_run_task(run_id, task)
            if hold.phase == "rollback" or run.status in RUN_TERMINAL:
                return self._decide_hold(run, rt, hold, by, status, via)
        # read and decide under the write lock: the engine cannot start the task in between
        with self.store.tx():
            if hold is not None:
                self.store.clear_hold(run.workflow, task)
            rt = self.store.get_run_task(run_id, task)
            if rt.status not in (
                TaskStatus.INTERRUPTED,
                TaskStatus.WAITING_APPROVAL,
                TaskStatus.PENDING,
            ):
                raise DecisionError(
                    f"task {task!r} of run {run_id} is {rt.status}; nothing to decide"
                )
            data: dict[str, Any] = {"via": via, "was": str(rt.status)}
            for req in self.store.approvals(run_id=run_id, task=task, status="pending"):
                self.store.decide_approval(req.id, "cancelled", by, f"task {status}", via)
            if status is TaskStatus.FAILED:
                self.store.set_task_status(run_id, task, TaskStatus.FAILED, error=f"failed by {by}")
                self.store.set_failure(run.workflow, task, rt.fingerprint, run_id)
            else:
                # skipping means "treat it as done": it is applied, so no later pass re-runs it
                self.store.set_task_status(run_id, task, status, error=f"skipped by {by}")
                self.store.set_applied(
                    run.workflow,
                    task,
                    Applied(
                        rt.fingerprint, rt.spec_hash, rt.inputs_hash, run.revision, time.time()
                    ),
                    run_id,
                )
            self.store.emit(
                f"task_{status}_by_operator",
                workflow=run.workflow,
                run_id=run_id,
                task=task,
                actor=by,
                data=data,
            )
            if run.status is RunStatus.WAITING_DECISION:
                self.store.set_run_status(run_id, RunStatus.RUNNING)
        self._changed()
        return DecisionResult(f"run {run_id}: task {task} {status}")

    def skip(self, run_id: int, task: str, by: str, via: str = "cli") -> DecisionResult:
        return self._operator_task(run_id, task, by, TaskStatus.SKIPPED, via)

    def fail(self, run_id: int, task: str, by: str, via: str = "cli") -> DecisionResult:
        return self._operator_task(run_id, task, by, TaskStatus.FAILED, via)


__all__ = ["DecisionResult", "Decisions"]
