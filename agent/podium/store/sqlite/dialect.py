"""SQLite's spelling of what SQL dialects disagree on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from podium.store.sql.dialect import column_list, value_marks

if TYPE_CHECKING:
    from podium.store.sql.database import Database


class SQLiteDialect:
    """``?`` placeholders, ``INSERT OR IGNORE``/``INSERT OR REPLACE``, ``lastrowid``, no
    row locks (one writer at a time), ``BEGIN IMMEDIATE``, ``PRAGMA user_version``."""

    name = "sqlite"
    begin = "BEGIN IMMEDIATE"
    returning_id = ""
    skip_locked = ""

    def placeholders(self, sql: str) -> str:
        return sql

    def insert_or_ignore(self, table: str, columns: Sequence[str]) -> str:
        return (
            f"INSERT OR IGNORE INTO {table} ({column_list(columns)})"  # noqa: S608 - constant names
            f" VALUES ({value_marks(columns)})"
        )

    def insert_or_replace(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        return (
            f"INSERT OR REPLACE INTO {table} ({column_list(columns)})"  # noqa: S608 - constant names
            f" VALUES ({value_marks(columns)})"
        )

    def schema_version(self, database: Database) -> int:
        row = database.one("PRAGMA user_version")
        return 0 if row is None else int(row["user_version"])

    def set_schema_version(self, database: Database, version: int) -> None:
        database.execute(f"PRAGMA user_version={int(version)}")


SQLITE = SQLiteDialect()

__all__ = ["SQLITE", "SQLiteDialect"]
