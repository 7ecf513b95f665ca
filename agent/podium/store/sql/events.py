"""The event log, the outbox that delivers it, and notifiers' message references, in SQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from podium.store.records import EventRecord, OutboxItem, dumps, loads
from podium.store.sql.database import Database, Row


def _event(row: Row) -> EventRecord:
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


class SQLEventLog:
    """Events, the outbox and message references (the ``EventLog`` role)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        d = db.dialect
        self._queue = d.insert_or_ignore(
            "outbox", ("event_id", "notifier", "target", "key", "next_at", "created_at")
        )
        self._put_ref = d.insert_or_replace(
            "message_refs", ("key", "notifier", "ref", "updated_at"), ("key",)
        )

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
        db = self._db
        now = time.time()
        with db.tx():
            event_id = db.insert(
                "INSERT INTO events (ts, kind, workflow, run_id, task, actor, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, kind, workflow, run_id, task, actor, dumps(data or {})),
            )
            for notifier, target in routes:
                db.execute(
                    self._queue,
                    (event_id, notifier, target, f"{event_id}:{notifier}:{target}", now, now),
                )
        return event_id

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
        return [_event(r) for r in self._db.all(sql, params)]

    def due_outbox(self, now: float, limit: int = 100) -> list[OutboxItem]:
        rows = self._db.all(
            "SELECT o.id AS oid, o.notifier, o.target, o.key, o.attempts, e.*"
            " FROM outbox o JOIN events e ON e.id = o.event_id"
            " WHERE o.delivered_at IS NULL AND o.next_at <= ? ORDER BY o.id LIMIT ?",
            (now, limit),
        )
        return [
            OutboxItem(r["oid"], r["notifier"], r["target"], r["key"], r["attempts"], _event(r))
            for r in rows
        ]

    def mark_delivered(self, item_id: int) -> None:
        db = self._db
        with db.tx():
            db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
                (time.time(), item_id),
            )

    def mark_failed(self, item_id: int, error: str, next_at: float) -> None:
        db = self._db
        with db.tx():
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ?"
                " WHERE id = ?",
                (error[:500], next_at, item_id),
            )

    def outbox_depth(self) -> int:
        row = self._db.one("SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL")
        return 0 if row is None else int(row["n"])

    # -- message references (e.g. a chat message to edit later) -----------------

    def get_ref(self, key: str) -> str | None:
        row = self._db.one("SELECT ref FROM message_refs WHERE key = ?", (key,))
        return None if row is None else str(row["ref"])

    def set_ref(self, key: str, notifier: str, ref: str) -> None:
        db = self._db
        with db.tx():
            db.execute(self._put_ref, (key, notifier, ref, time.time()))


__all__ = ["SQLEventLog"]
