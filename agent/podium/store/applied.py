"""Revisions seen, applied fingerprints, failures, workflows and files."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from podium.planner import Applied, Failure, Hold
from podium.store.connection import Connection, dumps
from podium.store.records import (
    loads,
)


class AppliedStore(Connection):
    """Revisions seen, applied fingerprints, failures, workflows and files."""

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

    def applied_rows(self, workflow: str) -> dict[str, dict[str, Any]]:
        """Every applied row of ``workflow``, by task (one query)."""
        rows = self._all("SELECT * FROM applied WHERE workflow = ?", (workflow,))
        return {str(r["task"]): dict(r) for r in rows}

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
                "INSERT INTO applied (workflow, task, fingerprint, spec_hash,"
                " inputs_hash, revision, applied_at, run_id, rollback)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workflow, task) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, spec_hash = excluded.spec_hash,"
                " inputs_hash = excluded.inputs_hash, revision = excluded.revision,"
                " applied_at = excluded.applied_at, run_id = excluded.run_id,"
                " rollback = excluded.rollback",
                (
                    workflow,
                    task,
                    applied.fingerprint,
                    applied.spec_hash,
                    applied.inputs_hash,
                    applied.revision,
                    applied.applied_at,
                    run_id,
                    None if rollback is None else dumps(rollback),
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

    # -- holds: interrupted non-idempotent attempts waiting for a human ------------

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
        with self.tx():
            self._x(
                "INSERT OR REPLACE INTO holds (workflow, task, fingerprint, phase, run_id,"
                " attempt_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (workflow, task, fingerprint, phase, run_id, attempt_id, reason, time.time()),
            )

    def clear_hold(self, workflow: str, task: str) -> bool:
        """Drop a task's hold (a human decided); False when it had none."""
        with self.tx():
            cur = self._x("DELETE FROM holds WHERE workflow = ? AND task = ?", (workflow, task))
            return cur.rowcount > 0

    def holds_all(self) -> dict[tuple[str, str], Hold]:
        return {
            (r["workflow"], r["task"]): Hold(r["fingerprint"], r["run_id"], r["phase"], r["reason"])
            for r in self._all("SELECT * FROM holds")
        }

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

    def set_workflow_status(
        self, name: str, status: str, reason: str, message: str, outstanding: int | None = None
    ) -> None:
        """A workflow's condition (Ready/Reconciling/Stalled, a reason, a message) and, when
        given, how many of its tasks the last plan found outstanding."""
        with self.tx():
            self._x(
                "UPDATE workflows SET status = ?, reason = ?, message = ?, updated_at = ?,"
                " outstanding = COALESCE(?, outstanding) WHERE name = ?",
                (status, reason, message, time.time(), outstanding, name),
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
                (file, workflow, good_revision, dumps(problems)),
            )

    def files_all(self) -> dict[str, dict[str, Any]]:
        return {
            r["file"]: {**dict(r), "problems": loads(r["problems"]) or []}
            for r in self._all("SELECT * FROM files")
        }

    def drop_file(self, file: str) -> None:
        with self.tx():
            self._x("DELETE FROM files WHERE file = ?", (file,))


__all__ = ["AppliedStore"]
