"""Runs, their tasks and the attempts of each task."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from podium.errors import NotFoundError
from podium.states import RUN_TERMINAL, RunStatus, TaskStatus, check_run, check_task
from podium.store.connection import Connection, dumps
from podium.store.records import (
    AttemptRecord,
    RunRecord,
    RunTaskRecord,
    loads,
    loads_definition,
)

ACTIVE_STATUSES = tuple(s.value for s in RunStatus if s not in RUN_TERMINAL)
TASK_COLUMNS = frozenset(
    {"attempts", "completed_seq", "started_at", "finished_at", "error", "not_before"}
)
"""The run_tasks columns a status change may set besides the status."""


def _check_columns(fields: dict[str, Any]) -> None:
    if not fields.keys() <= TASK_COLUMNS:
        raise ValueError(f"unknown run_tasks columns {sorted(fields.keys() - TASK_COLUMNS)}")


class RunStore(Connection):
    """Runs, their tasks and the attempts of each task."""

    # -- runs -------------------------------------------------------------------

    def _run(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            **{
                **dict(row),
                "status": RunStatus(row["status"]),
                "definition": loads_definition(row["definition"]),
            }
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
                (workflow, revision, RunStatus.PENDING, trigger, slot, now, dumps(definition)),
            )
            run_id = int(cur.lastrowid or 0)
            with self._lock:
                self._db.executemany(
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
        row = self._one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFoundError(f"no run {run_id}")
        return self._run(row)

    def workflow_of_run(self, run_id: int) -> str | None:
        """The workflow of a run, read without decoding anything else."""
        row = self._one("SELECT workflow FROM runs WHERE id = ?", (run_id,))
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

    def run_finish_times(self) -> list[tuple[int, float | None]]:
        """(id, finished_at) of every run; None for one that has not finished."""
        rows = self._all("SELECT id, finished_at FROM runs ORDER BY id")
        return [(int(r["id"]), r["finished_at"]) for r in rows]

    def active_run_heads(self) -> list[tuple[int, str, RunStatus]]:
        """(id, workflow, status) of every run not finished yet, oldest first; nothing else
        is read or decoded (a run with a damaged definition still shows here)."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._all(
            f"SELECT id, workflow, status FROM runs WHERE status IN ({marks}) ORDER BY id",  # noqa: S608
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
            **{**dict(row), "status": TaskStatus(row["status"]), "previous": loads(row["previous"])}
        )

    def run_tasks(self, run_id: int) -> dict[str, RunTaskRecord]:
        return {
            r["task"]: self._task(r)
            for r in self._all("SELECT * FROM run_tasks WHERE run_id = ?", (run_id,))
        }

    def task_status_counts(self, run_id: int) -> dict[str, int]:
        """How many of the run's tasks are in each status."""
        rows = self._all(
            "SELECT status, COUNT(*) AS n FROM run_tasks WHERE run_id = ? GROUP BY status",
            (run_id,),
        )
        return {str(r["status"]): int(r["n"]) for r in rows}

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
        _check_columns(fields)
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

    def claim_task(self, run_id: int, task: str, **fields: Any) -> TaskStatus | None:
        """Move a pending task to running (with ``fields``) unless someone else changed it
        since: None when claimed, else the status it has now."""
        _check_columns(fields)
        sets = "".join(f", {k} = ?" for k in fields)
        with self.tx():
            cur = self._x(
                f"UPDATE run_tasks SET status = 'running'{sets}"  # noqa: S608
                " WHERE run_id = ? AND task = ? AND status = 'pending'",
                (*fields.values(), run_id, task),
            )
            if cur.rowcount == 1:
                return None
            return self.get_run_task(run_id, task).status

    def _attempt(self, row: sqlite3.Row) -> AttemptRecord:
        return AttemptRecord(**dict(row))

    def start_attempt(
        self, run_id: int, task: str, phase: str, log_path: str, number: int | None = None
    ) -> AttemptRecord:
        """A new running attempt; ``number`` is the caller's count of earlier attempts + 1
        (looked up when not given, or when the caller's count turns out stale)."""
        with self.tx():
            if number is not None:
                with contextlib.suppress(sqlite3.IntegrityError):
                    return self._insert_attempt(run_id, task, number, phase, log_path)
            row = self._one(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts"
                " WHERE run_id = ? AND task = ? AND phase = ?",
                (run_id, task, phase),
            )
            return self._insert_attempt(run_id, task, int(row[0]) if row else 1, phase, log_path)

    def _insert_attempt(
        self, run_id: int, task: str, number: int, phase: str, log_path: str
    ) -> AttemptRecord:
        now = time.time()
        path = log_path.replace("{n}", str(number))
        cur = self._x(
            "INSERT INTO attempts (run_id, task, number, phase, status, started_at, log_path)"
            " VALUES (?, ?, ?, ?, 'running', ?, ?)",
            (run_id, task, number, phase, now, path),
        )
        return AttemptRecord(
            int(cur.lastrowid or 0),
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


__all__ = ["ACTIVE_STATUSES", "RunStore"]
