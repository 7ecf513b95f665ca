"""Runs, their tasks and the attempts of each task, in SQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from podium.errors import NotFoundError
from podium.states import RUN_TERMINAL, RunStatus, TaskStatus, check_run, check_task
from podium.store.records import (
    AttemptRecord,
    RunRecord,
    RunTaskRecord,
    dumps,
    loads,
    loads_definition,
)
from podium.store.sql.database import Database, Row
from podium.store.sql.dialect import column_list, value_marks

ACTIVE_STATUSES = tuple(s.value for s in RunStatus if s not in RUN_TERMINAL)
TASK_COLUMNS = frozenset(
    {"attempts", "completed_seq", "started_at", "finished_at", "error", "not_before"}
)
"""The run_tasks columns a status change may set besides the status."""

_ACTIVE_MARKS = ", ".join("?" for _ in ACTIVE_STATUSES)
_RUNNING = "running"
_ATTEMPT_COLUMNS = ("run_id", "task", "number", "phase", "status", "started_at", "log_path")
_ADD_ATTEMPT = (
    f"INSERT INTO attempts ({column_list(_ATTEMPT_COLUMNS)})"  # noqa: S608 - constant names
    f" VALUES ({value_marks(_ATTEMPT_COLUMNS)})"
)


def _check_columns(fields: dict[str, Any]) -> None:
    if not fields.keys() <= TASK_COLUMNS:
        raise ValueError(f"unknown run_tasks columns {sorted(fields.keys() - TASK_COLUMNS)}")


def _run(row: Row) -> RunRecord:
    return RunRecord(
        **{
            **dict(row),
            "status": RunStatus(row["status"]),
            "definition": loads_definition(row["definition"]),
        }
    )


def _task(row: Row) -> RunTaskRecord:
    return RunTaskRecord(
        **{**dict(row), "status": TaskStatus(row["status"]), "previous": loads(row["previous"])}
    )


def _attempt(row: Row) -> AttemptRecord:
    return AttemptRecord(**dict(row))


def _running_attempt(
    attempt_id: int, run_id: int, task: str, number: int, phase: str, now: float, path: str
) -> AttemptRecord:
    return AttemptRecord(
        id=attempt_id,
        run_id=run_id,
        task=task,
        number=number,
        phase=phase,
        status=_RUNNING,
        exit_code=None,
        http_status=None,
        started_at=now,
        finished_at=None,
        pid=None,
        log_path=path,
        output_tail=None,
        error=None,
    )


class SQLRunLog:
    """Runs, their tasks and the attempts of each task (the ``RunLog`` role)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._add_attempt_unless_taken = db.dialect.insert_or_ignore("attempts", _ATTEMPT_COLUMNS)

    # -- runs -------------------------------------------------------------------

    def create_run(
        self,
        workflow: str,
        revision: str,
        trigger: str,
        definition: dict[str, Any],
        tasks: Sequence[dict[str, Any]],
        slot: float | None = None,
    ) -> int:
        db = self._db
        now = time.time()
        with db.tx():
            run_id = db.insert(
                "INSERT INTO runs (workflow, revision, status, trigger, slot, created_at,"
                " definition) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (workflow, revision, RunStatus.PENDING, trigger, slot, now, dumps(definition)),
            )
            db.execute_many(
                "INSERT INTO run_tasks (run_id, task, status, fingerprint, spec_hash,"
                " inputs_hash, reason, previous) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        t["task"],
                        t.get("status", TaskStatus.PENDING),
                        t["fingerprint"],
                        t["spec_hash"],
                        t["inputs_hash"],
                        t["reason"],
                        None if t.get("previous") is None else dumps(t["previous"]),
                    )
                    for t in tasks
                ],
            )
        return run_id

    def get_run(self, run_id: int) -> RunRecord:
        row = self._db.one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFoundError(f"no run {run_id}")
        return _run(row)

    def workflow_of_run(self, run_id: int) -> str | None:
        row = self._db.one("SELECT workflow FROM runs WHERE id = ?", (run_id,))
        return None if row is None else str(row["workflow"])

    def list_runs(
        self, workflow: str | None = None, limit: int = 50, active_only: bool = False
    ) -> list[RunRecord]:
        sql = "SELECT * FROM runs WHERE 1=1"
        params: list[Any] = []
        if workflow:
            sql += " AND workflow = ?"
            params.append(workflow)
        if active_only:
            sql += f" AND status IN ({_ACTIVE_MARKS})"
            params.extend(ACTIVE_STATUSES)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_run(r) for r in self._db.all(sql, params)]

    def active_run_statuses(self) -> dict[int, RunStatus]:
        rows = self._db.all(
            f"SELECT id, status FROM runs WHERE status IN ({_ACTIVE_MARKS}) ORDER BY id",  # noqa: S608
            ACTIVE_STATUSES,
        )
        return {int(r["id"]): RunStatus(r["status"]) for r in rows}

    def run_finish_times(self) -> list[tuple[int, float | None]]:
        rows = self._db.all("SELECT id, finished_at FROM runs ORDER BY id")
        return [(int(r["id"]), r["finished_at"]) for r in rows]

    def active_run_heads(self) -> list[tuple[int, str, RunStatus]]:
        rows = self._db.all(
            f"SELECT id, workflow, status FROM runs WHERE status IN ({_ACTIVE_MARKS})"  # noqa: S608
            " ORDER BY id",
            ACTIVE_STATUSES,
        )
        return [(int(r["id"]), str(r["workflow"]), RunStatus(r["status"])) for r in rows]

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
        db = self._db
        with db.tx():
            row = db.one(
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
            db.execute(
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

    # -- the tasks of a run -------------------------------------------------------

    def run_tasks(self, run_id: int) -> dict[str, RunTaskRecord]:
        return {
            r["task"]: _task(r)
            for r in self._db.all("SELECT * FROM run_tasks WHERE run_id = ?", (run_id,))
        }

    def task_status_counts(self, run_id: int) -> dict[str, int]:
        rows = self._db.all(
            "SELECT status, COUNT(*) AS n FROM run_tasks WHERE run_id = ? GROUP BY status",
            (run_id,),
        )
        return {str(r["status"]): int(r["n"]) for r in rows}

    def get_run_task(self, run_id: int, task: str) -> RunTaskRecord:
        row = self._db.one("SELECT * FROM run_tasks WHERE run_id = ? AND task = ?", (run_id, task))
        if row is None:
            raise NotFoundError(f"run {run_id} has no task {task!r}")
        return _task(row)

    def set_task_status(
        self,
        run_id: int,
        task: str,
        status: TaskStatus,
        *,
        current: TaskStatus | None = None,
        **fields: Any,
    ) -> None:
        _check_columns(fields)
        db = self._db
        sets = ", ".join(f"{k} = ?" for k in ["status", *fields])
        with db.tx():
            if current is not None:
                check_task(current, status)
                changed = db.execute(
                    f"UPDATE run_tasks SET {sets} WHERE run_id = ? AND task = ? AND status = ?",  # noqa: S608
                    (status, *fields.values(), run_id, task, current),
                )
                if changed == 1:
                    return
            stored = self.get_run_task(run_id, task)
            check_task(stored.status, status)
            db.execute(
                f"UPDATE run_tasks SET {sets} WHERE run_id = ? AND task = ?",  # noqa: S608
                (status, *fields.values(), run_id, task),
            )

    def claim_task(self, run_id: int, task: str, **fields: Any) -> TaskStatus | None:
        _check_columns(fields)
        db = self._db
        sets = "".join(f", {k} = ?" for k in fields)
        with db.tx():
            changed = db.execute(
                f"UPDATE run_tasks SET status = 'running'{sets}"  # noqa: S608
                " WHERE run_id = ? AND task = ? AND status = 'pending'",
                (*fields.values(), run_id, task),
            )
            if changed == 1:
                return None
            return self.get_run_task(run_id, task).status

    # -- attempts -----------------------------------------------------------------

    def start_attempt(
        self, run_id: int, task: str, phase: str, log_path: str, number: int | None = None
    ) -> AttemptRecord:
        db = self._db
        with db.tx():
            now = time.time()
            if number is not None:
                path = log_path.replace("{n}", str(number))
                new_id = db.try_insert(
                    self._add_attempt_unless_taken,
                    (run_id, task, number, phase, _RUNNING, now, path),
                )
                if new_id is not None:
                    return _running_attempt(new_id, run_id, task, number, phase, now, path)
            row = db.one(
                "SELECT COALESCE(MAX(number), 0) + 1 AS n FROM attempts"
                " WHERE run_id = ? AND task = ? AND phase = ?",
                (run_id, task, phase),
            )
            number = 1 if row is None else int(row["n"])
            path = log_path.replace("{n}", str(number))
            new_id = db.insert(_ADD_ATTEMPT, (run_id, task, number, phase, _RUNNING, now, path))
            return _running_attempt(new_id, run_id, task, number, phase, now, path)

    def get_attempt(self, attempt_id: int) -> AttemptRecord:
        row = self._db.one("SELECT * FROM attempts WHERE id = ?", (attempt_id,))
        if row is None:
            raise NotFoundError(f"no attempt {attempt_id}")
        return _attempt(row)

    def finish_attempt(
        self,
        attempt_id: int,
        status: str,
        exit_code: int | None = None,
        http_status: int | None = None,
        output_tail: str | None = None,
        error: str | None = None,
    ) -> None:
        db = self._db
        with db.tx():
            db.execute(
                "UPDATE attempts SET status = ?, exit_code = ?, http_status = ?,"
                " output_tail = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, exit_code, http_status, output_tail, error, time.time(), attempt_id),
            )

    def attempts(self, run_id: int, task: str | None = None) -> list[AttemptRecord]:
        if task is None:
            rows = self._db.all("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
        else:
            rows = self._db.all(
                "SELECT * FROM attempts WHERE run_id = ? AND task = ? ORDER BY id",
                (run_id, task),
            )
        return [_attempt(r) for r in rows]

    def running_attempts(self, run_id: int) -> list[AttemptRecord]:
        rows = self._db.all(
            "SELECT * FROM attempts WHERE run_id = ? AND status = 'running' ORDER BY id",
            (run_id,),
        )
        return [_attempt(r) for r in rows]

    # -- counts for metrics -------------------------------------------------------

    def count_runs_by_status(self) -> dict[str, int]:
        rows = self._db.all("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def count_tasks_by_status(self) -> dict[str, int]:
        rows = self._db.all("SELECT status, COUNT(*) AS n FROM run_tasks GROUP BY status")
        return {r["status"]: r["n"] for r in rows}


__all__ = ["ACTIVE_STATUSES", "TASK_COLUMNS", "SQLRunLog"]
