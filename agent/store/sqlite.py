"""The embedded state store: one SQLite file, WAL mode, short transactions.

Durability: every state transition is committed (``synchronous=NORMAL`` in WAL
mode) before the side effect it announces, so a killed agent (SIGKILL) never
loses a committed transition; ``durable=True`` uses ``synchronous=FULL`` to also
survive power loss. All methods are safe to call from several threads of one
process; several processes share the file through SQLite's own locking.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, NotFoundError
from agent.planner import Applied, Failure
from agent.states import RUN_TERMINAL, RunStatus, TaskStatus, check_run, check_task
from agent.store.records import (
    ApprovalRecord,
    AttemptRecord,
    EventRecord,
    OutboxItem,
    RunRecord,
    RunTaskRecord,
    loads,
)
from agent.store.schema import MIGRATIONS, SCHEMA_VERSION

ACTIVE_STATUSES = tuple(s.value for s in RunStatus if s not in RUN_TERMINAL)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class SQLiteStore:
    """Executed state in one SQLite file."""

    def __init__(self, path: Path | str, *, durable: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._writes = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout=30000")
            self._retry_locked(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._retry_locked(self._migrate)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"state store {self.path}: {exc}") from exc

    # -- plumbing -------------------------------------------------------------

    @staticmethod
    def _retry_locked(step: Callable[[], object], attempts: int = 50) -> None:
        """Run a set-up step, retrying while another opener holds the new file's lock."""
        for attempt in range(attempts):
            try:
                step()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))

    def _migrate(self) -> None:
        with self.tx():
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"state store {self.path} has schema {version}, newer than this"
                    f" podium understands ({SCHEMA_VERSION}): upgrade podium"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number + 1}")

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever anyone (this process or another) committed a write."""
        with self._lock:
            other = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            return other, self._writes

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One write transaction (re-entrant: inner blocks join the outer one)."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")
                self._writes += 1

    def _x(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    def writable(self) -> bool:
        """True when a write transaction can be taken now (for readiness checks)."""
        try:
            with self.tx():
                self._x(
                    "INSERT OR REPLACE INTO kv (key, value) VALUES ('probe', ?)", (time.time(),)
                )
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- key/value --------------------------------------------------------------

    def get(self, key: str) -> str | None:
        row = self._one("SELECT value FROM kv WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def put(self, key: str, value: str) -> None:
        with self.tx():
            self._x("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    # -- revisions --------------------------------------------------------------

    def record_revision(self, sha: str, subject: str, author: str, email: str) -> None:
        with self.tx():
            self._x(
                "INSERT OR IGNORE INTO revisions (sha, seen_at, subject, author, author_email)"
                " VALUES (?, ?, ?, ?, ?)",
                (sha, time.time(), subject, author, email),
            )

    def revision_info(self, sha: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM revisions WHERE sha = ?", (sha,))
        return None if row is None else dict(row)

    # -- applied state and failures ---------------------------------------------

    def applied_all(self) -> dict[tuple[str, str], Applied]:
        with self._lock:
            cur = self._db.cursor()
            cur.row_factory = None  # plain tuples: this can be tens of thousands of rows
            rows = cur.execute(
                "SELECT workflow, task, fingerprint, spec_hash, inputs_hash, revision, applied_at"
                " FROM applied"
            ).fetchall()
        return {(r[0], r[1]): Applied(r[2], r[3], r[4], r[5], r[6]) for r in rows}

    def applied_row(self, workflow: str, task: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM applied WHERE workflow = ? AND task = ?", (workflow, task))
        return None if row is None else dict(row)

    def set_applied(
        self,
        workflow: str,
        task: str,
        applied: Applied,
        run_id: int | None,
        rollback: Any = None,
    ) -> None:
        with self.tx():
            self._x(
                "INSERT OR REPLACE INTO applied (workflow, task, fingerprint, spec_hash,"
                " inputs_hash, revision, applied_at, run_id, rollback)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    workflow,
                    task,
                    applied.fingerprint,
                    applied.spec_hash,
                    applied.inputs_hash,
                    applied.revision,
                    applied.applied_at,
                    run_id,
                    None if rollback is None else _dumps(rollback),
                ),
            )

    def restore_applied(self, workflow: str, task: str, previous: dict[str, Any] | None) -> None:
        """Put back the applied row a run replaced (``None``: there was none)."""
        with self.tx():
            self._x("DELETE FROM applied WHERE workflow = ? AND task = ?", (workflow, task))
            if previous is not None:
                cols = ", ".join(previous)
                marks = ", ".join("?" for _ in previous)
                self._x(f"INSERT INTO applied ({cols}) VALUES ({marks})", tuple(previous.values()))  # noqa: S608

    def forget_applied(self, workflow: str, tasks: Sequence[str] | None = None) -> None:
        with self.tx():
            if tasks is None:
                self._x("DELETE FROM applied WHERE workflow = ?", (workflow,))
                self._x("DELETE FROM failures WHERE workflow = ?", (workflow,))
            else:
                for task in tasks:
                    self._x("DELETE FROM applied WHERE workflow = ? AND task = ?", (workflow, task))
                    self._x(
                        "DELETE FROM failures WHERE workflow = ? AND task = ?", (workflow, task)
                    )

    def failures_all(self) -> dict[tuple[str, str], Failure]:
        return {
            (r["workflow"], r["task"]): Failure(r["fingerprint"], r["run_id"])
            for r in self._all("SELECT * FROM failures")
        }

    def set_failure(self, workflow: str, task: str, fingerprint: str, run_id: int) -> None:
        with self.tx():
            self._x(
                "INSERT OR REPLACE INTO failures (workflow, task, fingerprint, run_id, failed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (workflow, task, fingerprint, run_id, time.time()),
            )

    def clear_failures(self, workflow: str) -> None:
        with self.tx():
            self._x("DELETE FROM failures WHERE workflow = ?", (workflow,))

    # -- workflows and files ----------------------------------------------------

    def touch_workflow(self, name: str, file: str, now: float) -> None:
        with self.tx():
            self._x(
                "INSERT INTO workflows (name, file, first_seen, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET file = excluded.file",
                (name, file, now, now),
            )

    def workflow_rows(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: dict(r) for r in self._all("SELECT * FROM workflows")}

    def set_workflow_status(self, name: str, status: str, reason: str, message: str) -> None:
        with self.tx():
            self._x(
                "UPDATE workflows SET status = ?, reason = ?, message = ?, updated_at = ?"
                " WHERE name = ?",
                (status, reason, message, time.time(), name),
            )

    def set_workflow_applied_revision(self, name: str, revision: str) -> None:
        with self.tx():
            self._x("UPDATE workflows SET applied_revision = ? WHERE name = ?", (revision, name))

    def set_last_slot(self, name: str, slot: float) -> None:
        with self.tx():
            self._x("UPDATE workflows SET last_slot = ? WHERE name = ?", (slot, name))

    def remove_workflow(self, name: str) -> None:
        with self.tx():
            self._x("DELETE FROM workflows WHERE name = ?", (name,))

    def set_file_state(
        self, file: str, workflow: str | None, good_revision: str | None, problems: list[str]
    ) -> None:
        with self.tx():
            row = self._one("SELECT * FROM files WHERE file = ?", (file,))
            if good_revision is None and row is not None:
                good_revision = row["good_revision"]
                workflow = workflow or row["workflow"]
            self._x(
                "INSERT OR REPLACE INTO files (file, workflow, good_revision, problems)"
                " VALUES (?, ?, ?, ?)",
                (file, workflow, good_revision, _dumps(problems)),
            )

    def files_all(self) -> dict[str, dict[str, Any]]:
        return {
            r["file"]: {**dict(r), "problems": loads(r["problems"]) or []}
            for r in self._all("SELECT * FROM files")
        }

    def drop_file(self, file: str) -> None:
        with self.tx():
            self._x("DELETE FROM files WHERE file = ?", (file,))

    # -- runs -------------------------------------------------------------------

    def _run(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            id=row["id"],
            workflow=row["workflow"],
            revision=row["revision"],
            status=RunStatus(row["status"]),
            trigger=row["trigger"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            definition=loads(row["definition"]),
            error=row["error"],
            slot=row["slot"],
            superseded_by=row["superseded_by"],
        )

    def create_run(
        self,
        workflow: str,
        revision: str,
        trigger: str,
        definition: dict[str, Any],
        tasks: Sequence[dict[str, Any]],
        slot: float | None = None,
    ) -> int:
        """A new pending run with its tasks (each: task, fingerprint, spec_hash, inputs_hash,
        reason, previous)."""
        now = time.time()
        with self.tx():
            cur = self._x(
                "INSERT INTO runs (workflow, revision, status, trigger, slot, created_at,"
                " definition) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (workflow, revision, RunStatus.PENDING, trigger, slot, now, _dumps(definition)),
            )
            run_id = int(cur.lastrowid or 0)
            for t in tasks:
                self._x(
                    "INSERT INTO run_tasks (run_id, task, status, fingerprint, spec_hash,"
                    " inputs_hash, reason, previous) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        t["task"],
                        t.get("status", TaskStatus.PENDING),
                        t["fingerprint"],
                        t["spec_hash"],
                        t["inputs_hash"],
                        t["reason"],
                        None if t.get("previous") is None else _dumps(t["previous"]),
                    ),
                )
        return run_id

    def get_run(self, run_id: int) -> RunRecord:
        row = self._one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFoundError(f"no run {run_id}")
        return self._run(row)

    def list_runs(
        self, workflow: str | None = None, limit: int = 50, active_only: bool = False
    ) -> list[RunRecord]:
        sql = "SELECT * FROM runs WHERE 1=1"
        params: list[Any] = []
        if workflow:
            sql += " AND workflow = ?"
            params.append(workflow)
        if active_only:
            sql += f" AND status IN ({', '.join('?' for _ in ACTIVE_STATUSES)})"
            params.extend(ACTIVE_STATUSES)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [self._run(r) for r in self._all(sql, params)]

    def active_run_statuses(self) -> dict[int, RunStatus]:
        """Ids and statuses of runs not finished yet (cheap: no definitions decoded)."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._all(
            f"SELECT id, status FROM runs WHERE status IN ({marks}) ORDER BY id",  # noqa: S608
            ACTIVE_STATUSES,
        )
        return {int(r["id"]): RunStatus(r["status"]) for r in rows}

    def active_runs(self) -> list[RunRecord]:
        return sorted(self.list_runs(limit=100000, active_only=True), key=lambda r: r.id)

    def last_run(self, workflow: str) -> RunRecord | None:
        runs = self.list_runs(workflow, limit=1)
        return runs[0] if runs else None

    def set_run_status(
        self,
        run_id: int,
        status: RunStatus,
        error: str | None = None,
        *,
        run: RunRecord | None = None,
    ) -> RunRecord:
        """Move a run to ``status``. With ``run`` (the caller's current record) the stored
        definition is not read back: only the changed fields are."""
        with self.tx():
            row = self._one(
                "SELECT status, started_at, finished_at, error FROM runs WHERE id = ?", (run_id,)
            )
            if row is None:
                raise NotFoundError(f"no run {run_id}")
            check_run(RunStatus(row["status"]), status)
            now = time.time()
            started = row["started_at"]
            if started is None and status is not RunStatus.PENDING:
                started = now
            # A terminal run can only be re-stated (no way out), so keep its finish time.
            finished = (row["finished_at"] or now) if status in RUN_TERMINAL else None
            self._x(
                "UPDATE runs SET status = ?, started_at = ?, finished_at = ?,"
                " error = COALESCE(?, error) WHERE id = ?",
                (status, started, finished, error, run_id),
            )
        if run is None:
            return self.get_run(run_id)
        return replace(
            run,
            status=status,
            started_at=started,
            finished_at=finished,
            error=error if error is not None else row["error"],
        )

    def _task(self, row: sqlite3.Row) -> RunTaskRecord:
        return RunTaskRecord(
            run_id=row["run_id"],
            task=row["task"],
            status=TaskStatus(row["status"]),
            fingerprint=row["fingerprint"],
            spec_hash=row["spec_hash"],
            inputs_hash=row["inputs_hash"],
            reason=row["reason"],
            previous=loads(row["previous"]),
            attempts=row["attempts"],
            completed_seq=row["completed_seq"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            error=row["error"],
            not_before=row["not_before"],
        )

    def run_tasks(self, run_id: int) -> dict[str, RunTaskRecord]:
        return {
            r["task"]: self._task(r)
            for r in self._all("SELECT * FROM run_tasks WHERE run_id = ?", (run_id,))
        }

    def get_run_task(self, run_id: int, task: str) -> RunTaskRecord:
        row = self._one("SELECT * FROM run_tasks WHERE run_id = ? AND task = ?", (run_id, task))
        if row is None:
            raise NotFoundError(f"run {run_id} has no task {task!r}")
        return self._task(row)

    def set_task_status(
        self,
        run_id: int,
        task: str,
        status: TaskStatus,
        *,
        current: TaskStatus | None = None,
        **fields: Any,
    ) -> None:
        """Move a task to ``status``; extra ``fields`` are columns of run_tasks.

        With ``current`` (what the caller believes the status is) the move is one
        compare-and-set UPDATE; when the stored status differs, it is re-checked.
        """
        allowed = {"attempts", "completed_seq", "started_at", "finished_at", "error", "not_before"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown run_tasks columns {sorted(unknown)}")
        sets = ", ".join(f"{k} = ?" for k in ["status", *fields])
        with self.tx():
            if current is not None:
                check_task(current, status)
                cur = self._x(
                    f"UPDATE run_tasks SET {sets} WHERE run_id = ? AND task = ? AND status = ?",  # noqa: S608
                    (status, *fields.values(), run_id, task, current),
                )
                if cur.rowcount == 1:
                    return
            stored = self.get_run_task(run_id, task)
            check_task(stored.status, status)
            self._x(
                f"UPDATE run_tasks SET {sets} WHERE run_id = ? AND task = ?",  # noqa: S608
                (status, *fields.values(), run_id, task),
            )

    def next_completed_seq(self, run_id: int) -> int:
        row = self._one(
            "SELECT COALESCE(MAX(completed_seq), 0) + 1 FROM run_tasks WHERE run_id = ?",
            (run_id,),
        )
        return int(row[0]) if row else 1

    # -- attempts ---------------------------------------------------------------

    def _attempt(self, row: sqlite3.Row) -> AttemptRecord:
        return AttemptRecord(**{k: row[k] for k in row.keys()})  # noqa: SIM118

    def start_attempt(self, run_id: int, task: str, phase: str, log_path: str) -> AttemptRecord:
        with self.tx():
            row = self._one(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts"
                " WHERE run_id = ? AND task = ? AND phase = ?",
                (run_id, task, phase),
            )
            number = int(row[0]) if row else 1
            path = log_path.replace("{n}", str(number))
            now = time.time()
            cur = self._x(
                "INSERT INTO attempts (run_id, task, number, phase, status, started_at, log_path)"
                " VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (run_id, task, number, phase, now, path),
            )
            attempt_id = int(cur.lastrowid or 0)
        return AttemptRecord(
            attempt_id,
            run_id,
            task,
            number,
            phase,
            "running",
            None,
            None,
            now,
            None,
            None,
            path,
            None,
            None,
        )

    def get_attempt(self, attempt_id: int) -> AttemptRecord:
        row = self._one("SELECT * FROM attempts WHERE id = ?", (attempt_id,))
        if row is None:
            raise NotFoundError(f"no attempt {attempt_id}")
        return self._attempt(row)

    def set_attempt_pid(self, attempt_id: int, pid: int) -> None:
        with self.tx():
            self._x("UPDATE attempts SET pid = ? WHERE id = ?", (pid, attempt_id))

    def finish_attempt(
        self,
        attempt_id: int,
        status: str,
        exit_code: int | None = None,
        http_status: int | None = None,
        output_tail: str | None = None,
        error: str | None = None,
    ) -> None:
        with self.tx():
            self._x(
                "UPDATE attempts SET status = ?, exit_code = ?, http_status = ?,"
                " output_tail = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, exit_code, http_status, output_tail, error, time.time(), attempt_id),
            )

    def attempts(self, run_id: int, task: str | None = None) -> list[AttemptRecord]:
        if task is None:
            rows = self._all("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
        else:
            rows = self._all(
                "SELECT * FROM attempts WHERE run_id = ? AND task = ? ORDER BY id",
                (run_id, task),
            )
        return [self._attempt(r) for r in rows]

    def running_attempts(self, run_id: int) -> list[AttemptRecord]:
        rows = self._all(
            "SELECT * FROM attempts WHERE run_id = ? AND status = 'running' ORDER BY id",
            (run_id,),
        )
        return [self._attempt(r) for r in rows]

    # -- approvals --------------------------------------------------------------

    def _approval(self, row: sqlite3.Row) -> ApprovalRecord:
        data = {k: row[k] for k in row.keys()}  # noqa: SIM118
        data["approvers"] = loads(data["approvers"]) or []
        return ApprovalRecord(**data)

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
    ) -> ApprovalRecord:
        with self.tx():
            cur = self._x(
                "INSERT INTO approvals (run_id, task, fingerprint, revision, status, approvers,"
                " requested_at, deadline, on_timeout, author_email)"
                " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                (
                    run_id,
                    task,
                    fingerprint,
                    revision,
                    _dumps(approvers),
                    time.time(),
                    deadline,
                    on_timeout,
                    author_email,
                ),
            )
            approval_id = int(cur.lastrowid or 0)
        return self.get_approval(approval_id)

    def get_approval(self, approval_id: int) -> ApprovalRecord:
        row = self._one("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        if row is None:
            raise NotFoundError(f"no approval request {approval_id}")
        return self._approval(row)

    def approvals(
        self, run_id: int | None = None, task: str | None = None, status: str | None = None
    ) -> list[ApprovalRecord]:
        sql = "SELECT * FROM approvals WHERE 1=1"
        params: list[Any] = []
        for col, val in (("run_id", run_id), ("task", task), ("status", status)):
            if val is not None:
                sql += f" AND {col} = ?"
                params.append(val)
        return [self._approval(r) for r in self._all(sql + " ORDER BY id", params)]

    def decide_approval(
        self,
        approval_id: int,
        status: str,
        by: str | None,
        comment: str | None = None,
        via: str | None = None,
    ) -> bool:
        """Record a decision on a pending request; False when it was no longer pending."""
        with self.tx():
            cur = self._x(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, comment = ?,"
                " via = ? WHERE id = ? AND status = 'pending'",
                (status, by, time.time(), comment, via, approval_id),
            )
            return cur.rowcount == 1

    # -- events and the outbox --------------------------------------------------

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
        """Append an event to the audit log and queue it for each (notifier, target) route."""
        now = time.time()
        with self.tx():
            cur = self._x(
                "INSERT INTO events (ts, kind, workflow, run_id, task, actor, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, kind, workflow, run_id, task, actor, _dumps(data or {})),
            )
            event_id = int(cur.lastrowid or 0)
            for notifier, target in routes:
                self._x(
                    "INSERT OR IGNORE INTO outbox (event_id, notifier, target, key, next_at,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (event_id, notifier, target, f"{event_id}:{notifier}:{target}", now, now),
                )
        return event_id

    def _event(self, row: sqlite3.Row) -> EventRecord:
        return EventRecord(
            id=row["id"],
            ts=row["ts"],
            kind=row["kind"],
            workflow=row["workflow"],
            run_id=row["run_id"],
            task=row["task"],
            actor=row["actor"],
            data=loads(row["data"]) or {},
        )

    def events(
        self, run_id: int | None = None, kind: str | None = None, limit: int = 1000
    ) -> list[EventRecord]:
        sql = "SELECT * FROM events WHERE 1=1"
        params: list[Any] = []
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return [self._event(r) for r in self._all(sql, params)]

    def due_outbox(self, now: float, limit: int = 100) -> list[OutboxItem]:
        rows = self._all(
            "SELECT o.id AS oid, o.notifier, o.target, o.key, o.attempts, e.*"
            " FROM outbox o JOIN events e ON e.id = o.event_id"
            " WHERE o.delivered_at IS NULL AND o.next_at <= ? ORDER BY o.id LIMIT ?",
            (now, limit),
        )
        return [
            OutboxItem(
                r["oid"], r["notifier"], r["target"], r["key"], r["attempts"], self._event(r)
            )
            for r in rows
        ]

    def mark_delivered(self, item_id: int) -> None:
        with self.tx():
            self._x(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
                (time.time(), item_id),
            )

    def mark_failed(self, item_id: int, error: str, next_at: float) -> None:
        with self.tx():
            self._x(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ?"
                " WHERE id = ?",
                (error[:500], next_at, item_id),
            )

    def outbox_depth(self) -> int:
        row = self._one("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
        return int(row[0]) if row else 0

    # -- message references (e.g. a chat message to edit later) -----------------

    def get_ref(self, key: str) -> str | None:
        row = self._one("SELECT ref FROM message_refs WHERE key = ?", (key,))
        return None if row is None else str(row["ref"])

    def set_ref(self, key: str, notifier: str, ref: str) -> None:
        with self.tx():
            self._x(
                "INSERT OR REPLACE INTO message_refs (key, notifier, ref, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (key, notifier, ref, time.time()),
            )

    # -- lease ------------------------------------------------------------------

    def acquire_lease(self, owner: str, ttl: float, name: str = "agent") -> str | None:
        """Take or renew the lease; returns None on success, else the current holder."""
        now = time.time()
        with self.tx():
            row = self._one("SELECT * FROM lease WHERE name = ?", (name,))
            if row is not None and row["owner"] != owner and row["expires_at"] > now:
                return str(row["owner"])
            acquired = row["acquired_at"] if row is not None and row["owner"] == owner else now
            self._x(
                "INSERT OR REPLACE INTO lease (name, owner, expires_at, acquired_at)"
                " VALUES (?, ?, ?, ?)",
                (name, owner, now + ttl, acquired),
            )
        return None

    def release_lease(self, owner: str, name: str = "agent") -> None:
        with self.tx():
            self._x("DELETE FROM lease WHERE name = ? AND owner = ?", (name, owner))

    def lease_holder(self, name: str = "agent") -> tuple[str, float] | None:
        row = self._one("SELECT owner, expires_at FROM lease WHERE name = ?", (name,))
        if row is None or row["expires_at"] <= time.time():
            return None
        return str(row["owner"]), float(row["expires_at"])

    # -- counts for metrics -----------------------------------------------------

    def count_runs_by_status(self) -> dict[str, int]:
        return {
            r["status"]: r["n"]
            for r in self._all("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
        }

    def count_tasks_by_status(self) -> dict[str, int]:
        return {
            r["status"]: r["n"]
            for r in self._all("SELECT status, COUNT(*) AS n FROM run_tasks GROUP BY status")
        }


__all__ = ["SQLiteStore"]
