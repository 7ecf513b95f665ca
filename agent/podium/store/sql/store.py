"""The state store over a SQL database: parts composed, the protocol forwarded to them.

``SQLStore`` has a ``Database`` (connection, transactions, savepoints, migrations, the
version) and one part per role, each holding that database and nothing of the others:
runs, applied state, approvals, events, the lease, marks. It implements ``Store`` by
forwarding each method to the part that owns it, nothing more. Which database (SQLite
today, PostgreSQL later) and so which dialect is decided by whoever builds it
(``podium.store.open_store``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from podium.planner import Applied, Failure, Hold
from podium.states import RunStatus, TaskStatus
from podium.store.records import (
    ApprovalRecord,
    AttemptRecord,
    EventRecord,
    OutboxItem,
    RunRecord,
    RunTaskRecord,
)
from podium.store.sql.applied import SQLAppliedState
from podium.store.sql.approvals import SQLApprovals
from podium.store.sql.database import Database
from podium.store.sql.events import SQLEventLog
from podium.store.sql.lease import SQLLease
from podium.store.sql.marks import SQLMarks
from podium.store.sql.runs import SQLRunLog


class SQLStore:
    """Executed state in a SQL database (implements ``podium.store.base.Store``)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._runs = SQLRunLog(db)
        self._applied = SQLAppliedState(db)
        self._approvals = SQLApprovals(db)
        self._events = SQLEventLog(db)
        self._lease = SQLLease(db)
        self._marks = SQLMarks(db)

    # -- the database ----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def version(self) -> Hashable:
        return self._db.version

    @property
    def schema_version(self) -> int:
        return self._db.schema_version

    def tx(self) -> AbstractContextManager[None]:
        return self._db.tx()

    def savepoint(self) -> AbstractContextManager[None]:
        return self._db.savepoint()

    def writable(self) -> bool:
        return self._db.writable()

    def close(self) -> None:
        self._db.close()

    # -- runs, tasks, attempts -------------------------------------------------------------

    def create_run(
        self,
        workflow: str,
        revision: str,
        trigger: str,
        definition: dict[str, Any],
        tasks: Sequence[dict[str, Any]],
        slot: float | None = None,
    ) -> int:
        return self._runs.create_run(workflow, revision, trigger, definition, tasks, slot)

    def get_run(self, run_id: int) -> RunRecord:
        return self._runs.get_run(run_id)

    def workflow_of_run(self, run_id: int) -> str | None:
        return self._runs.workflow_of_run(run_id)

    def list_runs(
        self, workflow: str | None = None, limit: int = 50, active_only: bool = False
    ) -> list[RunRecord]:
        return self._runs.list_runs(workflow, limit, active_only)

    def active_run_statuses(self) -> dict[int, RunStatus]:
        return self._runs.active_run_statuses()

    def run_finish_times(self) -> list[tuple[int, float | None]]:
        return self._runs.run_finish_times()

    def active_run_heads(self) -> list[tuple[int, str, RunStatus]]:
        return self._runs.active_run_heads()

    def active_runs(self) -> list[RunRecord]:
        return self._runs.active_runs()

    def last_run(self, workflow: str) -> RunRecord | None:
        return self._runs.last_run(workflow)

    def set_run_status(
        self,
        run_id: int,
        status: RunStatus,
        error: str | None = None,
        *,
        run: RunRecord | None = None,
    ) -> RunRecord:
        return self._runs.set_run_status(run_id, status, error, run=run)

    def run_tasks(self, run_id: int) -> dict[str, RunTaskRecord]:
        return self._runs.run_tasks(run_id)

    def task_status_counts(self, run_id: int) -> dict[str, int]:
        return self._runs.task_status_counts(run_id)

    def get_run_task(self, run_id: int, task: str) -> RunTaskRecord:
        return self._runs.get_run_task(run_id, task)

    def set_task_status(
        self,
        run_id: int,
        task: str,
        status: TaskStatus,
        *,
        current: TaskStatus | None = None,
        **fields: Any,
    ) -> None:
        self._runs.set_task_status(run_id, task, status, current=current, **fields)

    def claim_task(self, run_id: int, task: str, **fields: Any) -> TaskStatus | None:
        return self._runs.claim_task(run_id, task, **fields)

    def start_attempt(
        self, run_id: int, task: str, phase: str, log_path: str, number: int | None = None
    ) -> AttemptRecord:
        return self._runs.start_attempt(run_id, task, phase, log_path, number)

    def get_attempt(self, attempt_id: int) -> AttemptRecord:
        return self._runs.get_attempt(attempt_id)

    def finish_attempt(
        self,
        attempt_id: int,
        status: str,
        exit_code: int | None = None,
        http_status: int | None = None,
        output_tail: str | None = None,
        error: str | None = None,
    ) -> None:
        self._runs.finish_attempt(attempt_id, status, exit_code, http_status, output_tail, error)

    def attempts(self, run_id: int, task: str | None = None) -> list[AttemptRecord]:
        return self._runs.attempts(run_id, task)

    def running_attempts(self, run_id: int) -> list[AttemptRecord]:
        return self._runs.running_attempts(run_id)

    def count_runs_by_status(self) -> dict[str, int]:
        return self._runs.count_runs_by_status()

    def count_tasks_by_status(self) -> dict[str, int]:
        return self._runs.count_tasks_by_status()

    # -- applied state, failures, holds, workflows, files ----------------------------------

    def record_revision(self, sha: str, subject: str, author: str, email: str) -> None:
        self._applied.record_revision(sha, subject, author, email)

    def revision_info(self, sha: str) -> dict[str, Any] | None:
        return self._applied.revision_info(sha)

    def applied_all(self) -> dict[tuple[str, str], Applied]:
        return self._applied.applied_all()

    def applied_rows(self, workflow: str) -> dict[str, dict[str, Any]]:
        return self._applied.applied_rows(workflow)

    def set_applied(
        self,
        workflow: str,
        task: str,
        applied: Applied,
        run_id: int | None,
        rollback: Any = None,
    ) -> None:
        self._applied.set_applied(workflow, task, applied, run_id, rollback)

    def restore_applied(self, workflow: str, task: str, previous: dict[str, Any] | None) -> None:
        self._applied.restore_applied(workflow, task, previous)

    def forget_applied(self, workflow: str, tasks: Sequence[str] | None = None) -> None:
        self._applied.forget_applied(workflow, tasks)

    def failures_all(self) -> dict[tuple[str, str], Failure]:
        return self._applied.failures_all()

    def set_failure(self, workflow: str, task: str, fingerprint: str, run_id: int) -> None:
        self._applied.set_failure(workflow, task, fingerprint, run_id)

    def clear_failures(self, workflow: str) -> None:
        self._applied.clear_failures(workflow)

    def set_hold(
        self,
        workflow: str,
        task: str,
        fingerprint: str,
        phase: str,
        run_id: int,
        attempt_id: int | None,
        reason: str,
    ) -> None:
        self._applied.set_hold(workflow, task, fingerprint, phase, run_id, attempt_id, reason)

    def clear_hold(self, workflow: str, task: str) -> bool:
        return self._applied.clear_hold(workflow, task)

    def holds_all(self) -> dict[tuple[str, str], Hold]:
        return self._applied.holds_all()

    def touch_workflow(self, name: str, file: str, now: float) -> None:
        self._applied.touch_workflow(name, file, now)

    def workflow_rows(self) -> dict[str, dict[str, Any]]:
        return self._applied.workflow_rows()

    def set_workflow_status(
        self, name: str, status: str, reason: str, message: str, outstanding: int | None = None
    ) -> None:
        self._applied.set_workflow_status(name, status, reason, message, outstanding)

    def set_workflow_applied_revision(self, name: str, revision: str) -> None:
        self._applied.set_workflow_applied_revision(name, revision)

    def set_last_slot(self, name: str, slot: float) -> None:
        self._applied.set_last_slot(name, slot)

    def remove_workflow(self, name: str) -> None:
        self._applied.remove_workflow(name)

    def set_file_state(
        self, file: str, workflow: str | None, good_revision: str | None, problems: list[str]
    ) -> None:
        self._applied.set_file_state(file, workflow, good_revision, problems)

    def files_all(self) -> dict[str, dict[str, Any]]:
        return self._applied.files_all()

    def drop_file(self, file: str) -> None:
        self._applied.drop_file(file)

    # -- approvals -------------------------------------------------------------------------

    def create_approval(
        self,
        run_id: int,
        task: str,
        fingerprint: str,
        revision: str,
        approvers: list[str],
        deadline: float | None,
        on_timeout: str,
        author_email: str | None = None,
        committer_email: str | None = None,
        forbid_self_approval: bool = False,
    ) -> ApprovalRecord:
        return self._approvals.create_approval(
            run_id,
            task,
            fingerprint,
            revision,
            approvers,
            deadline,
            on_timeout,
            author_email,
            committer_email,
            forbid_self_approval,
        )

    def get_approval(self, approval_id: int) -> ApprovalRecord:
        return self._approvals.get_approval(approval_id)

    def approvals(
        self, run_id: int | None = None, task: str | None = None, status: str | None = None
    ) -> list[ApprovalRecord]:
        return self._approvals.approvals(run_id, task, status)

    def decide_approval(
        self,
        approval_id: int,
        status: str,
        by: str | None,
        comment: str | None = None,
        via: str | None = None,
    ) -> bool:
        return self._approvals.decide_approval(approval_id, status, by, comment, via)

    # -- events, outbox, message references ------------------------------------------------

    def emit(
        self,
        kind: str,
        *,
        workflow: str | None = None,
        run_id: int | None = None,
        task: str | None = None,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
        routes: Sequence[tuple[str, str | None]] = (),
    ) -> int:
        return self._events.emit(
            kind, workflow=workflow, run_id=run_id, task=task, actor=actor, data=data, routes=routes
        )

    def events(
        self, run_id: int | None = None, kind: str | None = None, limit: int = 1000
    ) -> list[EventRecord]:
        return self._events.events(run_id, kind, limit)

    def due_outbox(self, now: float, limit: int = 100) -> list[OutboxItem]:
        return self._events.due_outbox(now, limit)

    def mark_delivered(self, item_id: int) -> None:
        self._events.mark_delivered(item_id)

    def mark_failed(self, item_id: int, error: str, next_at: float) -> None:
        self._events.mark_failed(item_id, error, next_at)

    def outbox_depth(self) -> int:
        return self._events.outbox_depth()

    def get_ref(self, key: str) -> str | None:
        return self._events.get_ref(key)

    def set_ref(self, key: str, notifier: str, ref: str) -> None:
        self._events.set_ref(key, notifier, ref)

    # -- lease -----------------------------------------------------------------------------

    def acquire_lease(self, owner: str, ttl: float, name: str = "agent") -> str | None:
        return self._lease.acquire_lease(owner, ttl, name)

    def release_lease(self, owner: str, name: str = "agent") -> None:
        self._lease.release_lease(owner, name)

    def lease_holder(self, name: str = "agent") -> tuple[str, float] | None:
        return self._lease.lease_holder(name)

    # -- key/value marks -------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        return self._marks.get(key)

    def put(self, key: str, value: str) -> None:
        self._marks.put(key, value)

    def drop_marks(self, prefix: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
        self._marks.drop_marks(prefix, keep)


__all__ = ["SQLStore"]
