"""Key/value marks, in SQL."""

from __future__ import annotations

from podium.store.sql.database import Database


class SQLMarks:
    """Small key/value marks (the ``Marks`` role)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._put = db.dialect.insert_or_replace("kv", ("key", "value"), ("key",))

    def get(self, key: str) -> str | None:
        row = self._db.one("SELECT value FROM kv WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def put(self, key: str, value: str) -> None:
        db = self._db
        with db.tx():
            db.execute(self._put, (key, value))

    def drop_marks(self, prefix: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
        db = self._db
        with db.tx():
            rows = db.all("SELECT key FROM kv WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
            for row in rows:
                if row["key"] not in keep:
                    db.execute("DELETE FROM kv WHERE key = ?", (row["key"],))


__all__ = ["SQLMarks"]
