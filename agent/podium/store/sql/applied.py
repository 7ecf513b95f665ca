"""Revisions seen, applied fingerprints, failures, holds, workflows and files, in SQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from podium.planner import Applied, Failure, Hold
from podium.store.records import dumps, loads
from podium.store.sql.database import Database
from podium.store.sql.dialect import column_list, value_marks


class SQLAppliedState:
    """What has been applied, and the workflows and files known (the ``AppliedState``
    role)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        d = db.dialect
        self._add_revision = d.insert_or_ignore(
            "revisions", ("sha", "seen_at", "subject", "author", "author_email")
        )
        self._put_failure = d.insert_or_replace(
            "failures", ("workflow", "task", "fingerprint", "run_id", "failed_at"), _TASK_KEY
        )
        self._put_hold = d.insert_or_replace(
            "holds",
            (
                "workflow",
                "task",
                "fingerprint",
                "phase",
                "run_id",
                "attempt_id",
                "reason",
                "created_at",
            ),
            _TASK_KEY,
        )
        self._put_file = d.insert_or_replace(
            "files", ("file", "workflow", "good_revision", "problems"), ("file",)
        )

    # -- revisions --------------------------------------------------------------

    def record_revision(self, sha: str, subject: str, author: str, email: str) -> None:
        db = self._db
        with db.tx():
            db.execute(self._add_revision, (sha, time.time(), subject, author, email))

    def revision_info(self, sha: str) -> dict[str, Any] | None:
        row = self._db.one("SELECT * FROM revisions WHERE sha = ?", (sha,))
        return None if row is None else dict(row)

    # -- applied state and failures ---------------------------------------------

    def applied_all(self) -> dict[tuple[str, str], Applied]:
        rows = self._db.tuples(
            "SELECT workflow, task, fingerprint, spec_hash, inputs_hash, revision, applied_at"
            " FROM applied"
        )
        return {(r[0], r[1]): Applied(r[2], r[3], r[4], r[5], r[6]) for r in rows}

    def applied_rows(self, workflow: str) -> dict[str, dict[str, Any]]:
        rows = self._db.all("SELECT * FROM applied WHERE workflow = ?", (workflow,))
        return {str(r["task"]): dict(r) for r in rows}

    def set_applied(
        self,
        workflow: str,
        task: str,
        applied: Applied,
        run_id: int | None,
        rollback: Any = None,
    ) -> None:
        db = self._db
        with db.tx():
            db.execute(
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
        db = self._db
        with db.tx():
            db.execute("DELETE FROM applied WHERE workflow = ? AND task = ?", (workflow, task))
            if previous is not None:
                db.execute(
                    f"INSERT INTO applied ({column_list(list(previous))})"  # noqa: S608
                    f" VALUES ({value_marks(list(previous))})",
                    tuple(previous.values()),
                )

    def forget_applied(self, workflow: str, tasks: Sequence[str] | None = None) -> None:
        db = self._db
        with db.tx():
            if tasks is None:
                db.execute("DELETE FROM applied WHERE workflow = ?", (workflow,))
                db.execute("DELETE FROM failures WHERE workflow = ?", (workflow,))
            else:
                for task in tasks:
                    db.execute(
                        "DELETE FROM applied WHERE workflow = ? AND task = ?", (workflow, task)
                    )
                    db.execute(
                        "DELETE FROM failures WHERE workflow = ? AND task = ?", (workflow, task)
                    )

    def failures_all(self) -> dict[tuple[str, str], Failure]:
        return {
            (r["workflow"], r["task"]): Failure(r["fingerprint"], r["run_id"])
            for r in self._db.all("SELECT * FROM failures")
        }

    def set_failure(self, workflow: str, task: str, fingerprint: str, run_id: int) -> None:
        db = self._db
        with db.tx():
            db.execute(self._put_failure, (workflow, task, fingerprint, run_id, time.time()))

    def clear_failures(self, workflow: str) -> None:
        db = self._db
        with db.tx():
            db.execute("DELETE FROM failures WHERE workflow = ?", (workflow,))

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
        db = self._db
        with db.tx():
            db.execute(
                self._put_hold,
                (workflow, task, fingerprint, phase, run_id, attempt_id, reason, time.time()),
            )

    def clear_hold(self, workflow: str, task: str) -> bool:
        db = self._db
        with db.tx():
            return (
                db.execute("DELETE FROM holds WHERE workflow = ? AND task = ?", (workflow, task))
                > 0
            )

    def holds_all(self) -> dict[tuple[str, str], Hold]:
        return {
            (r["workflow"], r["task"]): Hold(r["fingerprint"], r["run_id"], r["phase"], r["reason"])
            for r in self._db.all("SELECT * FROM holds")
        }

    # -- workflows and files ----------------------------------------------------

    def touch_workflow(self, name: str, file: str, now: float) -> None:
        db = self._db
        with db.tx():
            db.execute(
                "INSERT INTO workflows (name, file, first_seen, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET file = excluded.file",
                (name, file, now, now),
            )

    def workflow_rows(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: dict(r) for r in self._db.all("SELECT * FROM workflows")}

    def set_workflow_status(
        self, name: str, status: str, reason: str, message: str, outstanding: int | None = None
    ) -> None:
        db = self._db
        with db.tx():
            db.execute(
                "UPDATE workflows SET status = ?, reason = ?, message = ?, updated_at = ?,"
                " outstanding = COALESCE(?, outstanding) WHERE name = ?",
                (status, reason, message, time.time(), outstanding, name),
            )

    def set_workflow_applied_revision(self, name: str, revision: str) -> None:
        db = self._db
        with db.tx():
            db.execute("UPDATE workflows SET applied_revision = ? WHERE name = ?", (revision, name))

    def set_last_slot(self, name: str, slot: float) -> None:
        db = self._db
        with db.tx():
            db.execute("UPDATE workflows SET last_slot = ? WHERE name = ?", (slot, name))

    def remove_workflow(self, name: str) -> None:
        db = self._db
        with db.tx():
            db.execute("DELETE FROM workflows WHERE name = ?", (name,))

    def set_file_state(
        self, file: str, workflow: str | None, good_revision: str | None, problems: list[str]
    ) -> None:
        db = self._db
        with db.tx():
            row = db.one("SELECT * FROM files WHERE file = ?", (file,))
            if good_revision is None and row is not None:
                good_revision = row["good_revision"]
                workflow = workflow or row["workflow"]
            db.execute(self._put_file, (file, workflow, good_revision, dumps(problems)))

    def files_all(self) -> dict[str, dict[str, Any]]:
        return {
            r["file"]: {**dict(r), "problems": loads(r["problems"]) or []}
            for r in self._db.all("SELECT * FROM files")
        }

    def drop_file(self, file: str) -> None:
        db = self._db
        with db.tx():
            db.execute("DELETE FROM files WHERE file = ?", (file,))


_TASK_KEY = ("workflow", "task")

__all__ = ["SQLAppliedState"]
