"""The lease that makes one agent at a time the store's owner, in SQL."""

from __future__ import annotations

import time

from podium.store.sql.database import Database


class SQLLease:
    """A named lease row: owner and expiry (the ``Lease`` role). Expiry is judged by this
    host's clock; the agents sharing a SQLite file share that clock."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._put = db.dialect.insert_or_replace(
            "lease", ("name", "owner", "expires_at", "acquired_at"), ("name",)
        )

    def acquire_lease(self, owner: str, ttl: float, name: str = "agent") -> str | None:
        db = self._db
        now = time.time()
        with db.tx():
            row = db.one("SELECT * FROM lease WHERE name = ?", (name,))
            if row is not None and row["owner"] != owner and row["expires_at"] > now:
                return str(row["owner"])
            acquired = row["acquired_at"] if row is not None and row["owner"] == owner else now
            db.execute(self._put, (name, owner, now + ttl, acquired))
        return None

    def release_lease(self, owner: str, name: str = "agent") -> None:
        db = self._db
        with db.tx():
            db.execute("DELETE FROM lease WHERE name = ? AND owner = ?", (name, owner))

    def lease_holder(self, name: str = "agent") -> tuple[str, float] | None:
        row = self._db.one("SELECT owner, expires_at FROM lease WHERE name = ?", (name,))
        if row is None or row["expires_at"] <= time.time():
            return None
        return str(row["owner"]), float(row["expires_at"])


__all__ = ["SQLLease"]
