"""Approvals, the event log and outbox, chat message references, the lease, counts."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from podium.errors import NotFoundError
from podium.store.connection import Connection, dumps
from podium.store.records import (
    ApprovalRecord,
    EventRecord,
    OutboxItem,
    loads,
)


class AuditStore(Connection):
    """Approvals, the event log and outbox, chat message references, the lease, counts."""

    # -- approvals --------------------------------------------------------------

    def _approval(self, row: sqlite3.Row) -> ApprovalRecord:
        return ApprovalRecord(
            **{
                **dict(row),
                "approvers": loads(row["approvers"]) or [],
                "forbid_self_approval": None
                if row["forbid_self_approval"] is None
                else bool(row["forbid_self_approval"]),
            }
        )

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
        """A pending request; the four-eyes rule and the people it concerns are kept with it."""
        with self.tx():
            cur = self._x(
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
                (now, kind, workflow, run_id, task, actor, dumps(data or {})),
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
        # explicit columns: outbox rows join the event's columns with their own
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


__all__ = ["AuditStore"]
