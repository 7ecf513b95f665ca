"""The state store's contract: what everything above the store may ask of it.

``Store`` is the whole contract, assembled from small role protocols (the database, the
run log, applied state, approvals, the event log, the lease, key/value marks). The
embedded SQLite store implements it; a PostgreSQL store will implement the same
protocol, so every promise below is what both must keep:

- Every write method commits on its own unless a ``tx()`` is open, in which case it
  joins that transaction (commits with it, or is undone with it).
- A method that reads sees every write committed before it started, by this process or
  another one sharing the store.
- Unknown ids raise ``NotFoundError`` (never ``None`` or ``KeyError``) where a record is
  asked for by id; lookups by key that may miss say so in their return type.
- Status changes are checked against the state machines in ``podium.states`` and an
  illegal one raises ``TransitionError`` without writing anything.
- Times are seconds since the epoch (``time.time()``), stored as given.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
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


class Transactions(Protocol):
    """The database itself: where it is, its versions, transactions, its end."""

    @property
    def path(self) -> Path:
        """Where the state lives (shown in messages and status; the file for SQLite)."""
        ...

    @property
    def version(self) -> Hashable:
        """An opaque value that changes whenever anyone (this process or another) commits a
        write; equal values mean nothing was committed in between. Cheap to read."""
        ...

    @property
    def schema_version(self) -> int:
        """The schema version of the stored data (the number of migrations applied)."""
        ...

    def tx(self) -> AbstractContextManager[None]:
        """One write transaction. Re-entrant: an inner ``tx()`` joins the outer one, and
        everything commits once, at the outer exit (or nothing, if an exception leaves it).
        The transaction takes the write lock at entry, so a read-then-write inside it
        cannot be interleaved with another writer's."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A part of the current write transaction that an exception undoes alone: the
        writes before it stay and the transaction goes on (opens one if none is open)."""
        ...

    def writable(self) -> bool:
        """True when a write transaction can be taken now (for readiness checks)."""
        ...

    def close(self) -> None:
        """Release the connection; the store is not used afterwards."""
        ...


class RunLog(Protocol):
    """Runs, the tasks of each run, and the attempts of each task."""

    def create_run(
        self,
        workflow: str,
        revision: str,
        trigger: str,
        definition: dict[str, Any],
        tasks: Sequence[dict[str, Any]],
        slot: float | None = None,
    ) -> int:
        """A new pending run and its tasks, written together; returns the run's id (ids only
        grow). Each task is a mapping with task, fingerprint, spec_hash, inputs_hash,
        reason, previous (an applied row or None) and optionally status (default pending)."""
        ...

    def get_run(self, run_id: int) -> RunRecord:
        """The run; a damaged stored definition reads as ``{}``."""
        ...

    def workflow_of_run(self, run_id: int) -> str | None:
        """The workflow of a run (None for an unknown id), without decoding anything else."""
        ...

    def list_runs(
        self, workflow: str | None = None, limit: int = 50, active_only: bool = False
    ) -> list[RunRecord]:
        """Runs, newest first, at most ``limit``; optionally of one workflow, or only those
        not finished yet."""
        ...

    def active_run_statuses(self) -> dict[int, RunStatus]:
        """Ids and statuses of the runs not finished yet (no definition decoded)."""
        ...

    def run_finish_times(self) -> list[tuple[int, float | None]]:
        """(id, finished_at) of every run, by id; None for one that has not finished."""
        ...

    def active_run_heads(self) -> list[tuple[int, str, RunStatus]]:
        """(id, workflow, status) of every run not finished yet, oldest first; nothing else
        is read, so a run with a damaged definition still shows here."""
        ...

    def active_runs(self) -> list[RunRecord]:
        """The runs not finished yet, oldest first."""
        ...

    def last_run(self, workflow: str) -> RunRecord | None:
        """The newest run of ``workflow``, if any."""
        ...

    def set_run_status(
        self,
        run_id: int,
        status: RunStatus,
        error: str | None = None,
        *,
        run: RunRecord | None = None,
    ) -> RunRecord:
        """Move a run to ``status`` (checked); leaving pending stamps started_at, a terminal
        status stamps finished_at once (re-stating a finished run keeps its times), and an
        ``error`` replaces the stored one. Returns the updated run; with ``run`` (the
        caller's current record) the definition is not read back."""
        ...

    def run_tasks(self, run_id: int) -> dict[str, RunTaskRecord]:
        """Every task of the run, by name."""
        ...

    def task_status_counts(self, run_id: int) -> dict[str, int]:
        """How many of the run's tasks are in each status."""
        ...

    def get_run_task(self, run_id: int, task: str) -> RunTaskRecord:
        """One task of a run."""
        ...

    def set_task_status(
        self,
        run_id: int,
        task: str,
        status: TaskStatus,
        *,
        current: TaskStatus | None = None,
        **fields: Any,
    ) -> None:
        """Move a task to ``status`` (checked), setting the run_tasks columns in ``fields``
        (only attempts, completed_seq, started_at, finished_at, error, not_before; any other
        name raises ValueError). With ``current`` (what the caller believes the status is)
        the move is a compare-and-set; when the stored status differs it is re-checked
        against the stored one."""
        ...

    def claim_task(self, run_id: int, task: str, **fields: Any) -> TaskStatus | None:
        """Compare-and-set pending → running (with ``fields``, as in set_task_status): None
        when this caller claimed it, else the status it has now. Of several concurrent
        claimers exactly one gets None: this is what makes starting at-most-once."""
        ...

    def start_attempt(
        self, run_id: int, task: str, phase: str, log_path: str, number: int | None = None
    ) -> AttemptRecord:
        """A new running attempt of (run, task, phase). ``number`` is the caller's count of
        earlier attempts + 1; when it is missing or already taken, the next free number is
        used. ``{n}`` in ``log_path`` becomes the number. Attempt ids only grow."""
        ...

    def get_attempt(self, attempt_id: int) -> AttemptRecord:
        """One attempt."""
        ...

    def finish_attempt(
        self,
        attempt_id: int,
        status: str,
        exit_code: int | None = None,
        http_status: int | None = None,
        output_tail: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record an attempt's outcome and stamp its finish time."""
        ...

    def attempts(self, run_id: int, task: str | None = None) -> list[AttemptRecord]:
        """The run's attempts (optionally of one task), oldest first."""
        ...

    def running_attempts(self, run_id: int) -> list[AttemptRecord]:
        """The run's attempts still marked running, oldest first."""
        ...

    def count_runs_by_status(self) -> dict[str, int]:
        """How many runs are in each status (for metrics)."""
        ...

    def count_tasks_by_status(self) -> dict[str, int]:
        """How many run tasks are in each status (for metrics)."""
        ...


class AppliedState(Protocol):
    """What has been applied: revisions seen, applied fingerprints, failures, holds, and
    the workflows and workflow files the agent knows."""

    def record_revision(self, sha: str, subject: str, author: str, email: str) -> None:
        """Remember a revision (the first record of a sha wins)."""
        ...

    def revision_info(self, sha: str) -> dict[str, Any] | None:
        """What was recorded about a revision (sha, seen_at, subject, author,
        author_email), if anything."""
        ...

    def applied_all(self) -> dict[tuple[str, str], Applied]:
        """The applied record of every (workflow, task): the planner's input."""
        ...

    def applied_rows(self, workflow: str) -> dict[str, dict[str, Any]]:
        """Every applied row of ``workflow`` with all its columns, by task; such a row is
        what ``restore_applied`` takes back."""
        ...

    def set_applied(
        self,
        workflow: str,
        task: str,
        applied: Applied,
        run_id: int | None,
        rollback: Any = None,
    ) -> None:
        """Insert or replace a task's applied record (``rollback``: JSON-able, kept with it)."""
        ...

    def restore_applied(self, workflow: str, task: str, previous: dict[str, Any] | None) -> None:
        """Put back, column for column, the applied row a run replaced (None: delete it)."""
        ...

    def forget_applied(self, workflow: str, tasks: Sequence[str] | None = None) -> None:
        """Drop the applied rows and failures of some tasks (None: of the whole workflow)."""
        ...

    def failures_all(self) -> dict[tuple[str, str], Failure]:
        """The failed fingerprint of every (workflow, task) that has one."""
        ...

    def set_failure(self, workflow: str, task: str, fingerprint: str, run_id: int) -> None:
        """Insert or replace a task's failed fingerprint."""
        ...

    def clear_failures(self, workflow: str) -> None:
        """Drop every failure of ``workflow``."""
        ...

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
        """Insert or replace a task's "needs a human" mark (it outlives runs)."""
        ...

    def clear_hold(self, workflow: str, task: str) -> bool:
        """Drop a task's hold (a human decided); False when it had none."""
        ...

    def holds_all(self) -> dict[tuple[str, str], Hold]:
        """Every hold, by (workflow, task)."""
        ...

    def touch_workflow(self, name: str, file: str, now: float) -> None:
        """Know a workflow (first seen ``now``) or update the file it lives in."""
        ...

    def workflow_rows(self) -> dict[str, dict[str, Any]]:
        """Every known workflow's row (name, file, first_seen, last_slot,
        applied_revision, status, reason, message, updated_at, outstanding), by name."""
        ...

    def set_workflow_status(
        self, name: str, status: str, reason: str, message: str, outstanding: int | None = None
    ) -> None:
        """A workflow's condition (Ready/Reconciling/Stalled, a reason, a message) and, when
        given, how many of its tasks the last plan found outstanding."""
        ...

    def set_workflow_applied_revision(self, name: str, revision: str) -> None:
        """The revision a workflow was last applied at."""
        ...

    def set_last_slot(self, name: str, slot: float) -> None:
        """The last schedule slot a workflow ran for."""
        ...

    def remove_workflow(self, name: str) -> None:
        """Forget a workflow's row."""
        ...

    def set_file_state(
        self, file: str, workflow: str | None, good_revision: str | None, problems: list[str]
    ) -> None:
        """A workflow file's problems; a None ``good_revision`` keeps the stored last good
        revision (and workflow, unless one is given)."""
        ...

    def files_all(self) -> dict[str, dict[str, Any]]:
        """Every known file's row (file, workflow, good_revision, problems as a list)."""
        ...

    def drop_file(self, file: str) -> None:
        """Forget a workflow file."""
        ...


class Approvals(Protocol):
    """Approval requests and the decision on each."""

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
        """A pending request bound to (run, task, fingerprint); the four-eyes rule and the
        people it concerns are kept with it."""
        ...

    def get_approval(self, approval_id: int) -> ApprovalRecord:
        """One request."""
        ...

    def approvals(
        self, run_id: int | None = None, task: str | None = None, status: str | None = None
    ) -> list[ApprovalRecord]:
        """Requests matching every filter given, oldest first."""
        ...

    def decide_approval(
        self,
        approval_id: int,
        status: str,
        by: str | None,
        comment: str | None = None,
        via: str | None = None,
    ) -> bool:
        """Compare-and-set a pending request to ``status``: True for the one caller that
        decided it, False when it was no longer pending (nothing is written then)."""
        ...


class EventLog(Protocol):
    """The audit log of events, the outbox that delivers them, and references to the
    messages notifiers posted (to edit them later)."""

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
        """Append an event and queue it once for each distinct (notifier, target) route, in
        one transaction; returns the event's id (ids only grow)."""
        ...

    def events(
        self, run_id: int | None = None, kind: str | None = None, limit: int = 1000
    ) -> list[EventRecord]:
        """Events, oldest first, at most ``limit``; optionally of one run or one kind."""
        ...

    def due_outbox(self, now: float, limit: int = 100) -> list[OutboxItem]:
        """Undelivered items whose next try is due at ``now``, oldest first."""
        ...

    def mark_delivered(self, item_id: int) -> None:
        """An item was delivered: it is never due again."""
        ...

    def mark_failed(self, item_id: int, error: str, next_at: float) -> None:
        """A delivery failed: count it, keep the error, try again at ``next_at``."""
        ...

    def outbox_depth(self) -> int:
        """How many items wait for delivery."""
        ...

    def get_ref(self, key: str) -> str | None:
        """A notifier's reference for ``key`` (e.g. a chat message id), if any."""
        ...

    def set_ref(self, key: str, notifier: str, ref: str) -> None:
        """Insert or replace the reference for ``key``."""
        ...


class Lease(Protocol):
    """The lease that makes one agent at a time the owner of the store."""

    def acquire_lease(self, owner: str, ttl: float, name: str = "agent") -> str | None:
        """Take the lease, or renew it when ``owner`` holds it (keeping when it was first
        acquired), for ``ttl`` seconds: None on success, else the live holder's name. Of
        several concurrent takers at most one succeeds."""
        ...

    def release_lease(self, owner: str, name: str = "agent") -> None:
        """Give the lease back; nothing happens unless ``owner`` holds it."""
        ...

    def lease_holder(self, name: str = "agent") -> tuple[str, float] | None:
        """(owner, expires_at) of a lease that has not expired, else None."""
        ...


class Marks(Protocol):
    """Small key/value marks (flags and versions the agent and the CLI leave each other)."""

    def get(self, key: str) -> str | None:
        """The value of a mark, if set."""
        ...

    def put(self, key: str, value: str) -> None:
        """Insert or replace a mark."""
        ...

    def drop_marks(self, prefix: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Delete the marks whose key starts with ``prefix``, but those in ``keep``."""
        ...


class Store(Transactions, RunLog, AppliedState, Approvals, EventLog, Lease, Marks, Protocol):
    """Executed state: the whole contract the engine, reconciler, decisions, CLI,
    notifiers and integrations rely on (``podium.store.open_store`` gives one)."""


__all__ = [
    "AppliedState",
    "Approvals",
    "EventLog",
    "Lease",
    "Marks",
    "RunLog",
    "Store",
    "Transactions",
]
