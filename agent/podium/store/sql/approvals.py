"""Approval requests and their decisions, in SQL."""

from __future__ import annotations

import time
from typing import Any

from podium.errors import NotFoundError
from podium.store.records import ApprovalRecord, dumps, loads
from podium.store.sql.database import Database, Row


def _approval(row: Row) -> ApprovalRecord:
    return ApprovalRecord(
        **{
            **dict(row),
            "approvers": loads(row["approvers"]) or [],
            "forbid_self_approval": None
            if row["forbid_self_approval"] is None
            else bool(row["forbid_self_approval"]),
        }
    )


class SQLApprovals:
    """Approval requests and the decision on each (the ``Approvals`` role)."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        db = self._db
        with db.tx():
            approval_id = db.insert(
                "INSERT INTO approvals (run_id, task, fingerprint, revision, status, approvers,"
                " requested_at, deadline, on_timeout, author_email, committer_email,"
                " forbid_self_approval) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    task,
                    fingerprint,
                    revision,
                    dumps(approvers),
                    time.time(),
                    deadline,
                    on_timeout,
                    author_email,
                    committer_email,
                    int(forbid_self_approval),
                ),
            )
        return self.get_approval(approval_id)

    def get_approval(self, approval_id: int) -> ApprovalRecord:
        row = self._db.one("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        if row is None:
            raise NotFoundError(f"no approval request {approval_id}")
        return _approval(row)

    def approvals(
        self, run_id: int | None = None, task: str | None = None, status: str | None = None
    ) -> list[ApprovalRecord]:
        sql = "SELECT * FROM approvals WHERE 1=1"
        params: list[Any] = []
        for col, val in (("run_id", run_id), ("task", task), ("status", status)):
            if val is not None:
                sql += f" AND {col} = ?"
                params.append(val)
        return [_approval(r) for r in self._db.all(sql + " ORDER BY id", params)]

    def decide_approval(
        self,
        approval_id: int,
        status: str,
        by: str | None,
        comment: str | None = None,
        via: str | None = None,
    ) -> bool:
        db = self._db
        with db.tx():
            changed = db.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, comment = ?,"
                " via = ? WHERE id = ? AND status = 'pending'",
                (status, by, time.time(), comment, via, approval_id),
            )
            return changed == 1


__all__ = ["SQLApprovals"]
