"""The thin dialect layer: what SQL databases spell differently, in one small object.

The store's statements are shared text wherever SQLite and PostgreSQL agree (plain
SELECT/INSERT/UPDATE/DELETE, ``ON CONFLICT (key) DO UPDATE SET col = excluded.col``,
``COALESCE``, ``substr``, savepoints). Only what follows differs, and only a ``Dialect``
spells it: the placeholder style, inserting while ignoring or replacing a conflicting
row, handing back a new row's id, row locks for claims, the statement that opens a
write transaction, and where the schema version is kept. Each dialect brings its own
chain of migrations (``podium.store.migrations``).

A PostgreSQL dialect (psycopg 3) would give ``%s`` placeholders, ``ON CONFLICT DO
NOTHING`` and ``ON CONFLICT (key) DO UPDATE``, ``RETURNING id``, ``FOR UPDATE SKIP
LOCKED``, ``BEGIN``, and a one-row table for the schema version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from podium.store.sql.database import Database


class Dialect(Protocol):
    """How one kind of SQL database spells what the others spell differently."""

    @property
    def name(self) -> str:
        """The dialect's name ("sqlite", "postgresql")."""
        ...

    @property
    def begin(self) -> str:
        """The statement that opens a write transaction (SQLite: ``BEGIN IMMEDIATE``, which
        takes the write lock at once so a read-then-write cannot deadlock)."""
        ...

    @property
    def returning_id(self) -> str:
        """What an INSERT appends to hand back the new row's id: empty when the driver
        reports it by itself (SQLite's ``lastrowid``), `` RETURNING id`` otherwise."""
        ...

    @property
    def skip_locked(self) -> str:
        """What a SELECT that claims rows appends to lock them and pass over rows another
        transaction holds: empty on SQLite (one writer at a time),
        `` FOR UPDATE SKIP LOCKED`` on PostgreSQL."""
        ...

    def placeholders(self, sql: str) -> str:
        """Shared statement text (``?`` placeholders) in this driver's parameter style."""
        ...

    def insert_or_ignore(self, table: str, columns: Sequence[str]) -> str:
        """An INSERT of one row (one placeholder per column) that inserts nothing, and
        raises nothing, when the row conflicts with a primary or unique key."""
        ...

    def insert_or_replace(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """An INSERT of one row (one placeholder per column) that replaces the stored row
        with the same ``key``; ``columns`` are all the table's columns that matter."""
        ...

    def schema_version(self, database: Database) -> int:
        """The schema version stored in ``database`` (0 for an empty one)."""
        ...

    def set_schema_version(self, database: Database, version: int) -> None:
        """Store ``version`` as the schema version, in the current transaction."""
        ...


def column_list(columns: Sequence[str]) -> str:
    """``a, b, c``: the column list of an INSERT."""
    return ", ".join(columns)


def value_marks(columns: Sequence[str]) -> str:
    """``?, ?, ?``: one placeholder per column."""
    return ", ".join("?" for _ in columns)


__all__ = ["Dialect", "column_list", "value_marks"]
