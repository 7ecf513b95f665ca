"""What the SQL parts of the store need from a database: statements, rows, transactions.

The parts (runs, applied state, approvals, events, lease, marks) hold one ``Database``
and write their SQL once, in the text both SQLite and PostgreSQL accept, with ``?``
placeholders; what the dialects spell differently comes from ``database.dialect``.
A database whose driver takes another placeholder style translates each statement with
its dialect's ``placeholders()`` (SQLite's driver takes ``?`` as written).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from podium.store.sql.dialect import Dialect


class Row(Protocol):
    """One result row: its columns by name (``dict(row)`` gives them all)."""

    def keys(self) -> Iterable[str]: ...

    def __getitem__(self, column: str, /) -> Any: ...


class Database(Protocol):
    """A connection to the state database, safe to share between the threads of a process."""

    @property
    def dialect(self) -> Dialect:
        """How this database spells what SQL dialects disagree on."""
        ...

    @property
    def path(self) -> Path:
        """Where the state lives."""
        ...

    @property
    def version(self) -> Hashable:
        """Changes whenever anyone (this process or another) commits a write."""
        ...

    @property
    def schema_version(self) -> int:
        """The number of migrations applied to the stored data."""
        ...

    def tx(self) -> AbstractContextManager[None]:
        """One write transaction, re-entrant (see ``podium.store.base.Transactions``)."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A part of the current write transaction that an exception undoes alone."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns how many rows it changed."""
        ...

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        ...

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT of one row into a table with an ``id`` key; returns the new id."""
        ...

    def try_insert(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """Like ``insert`` for a statement that ignores conflicts
        (``dialect.insert_or_ignore``): None when a conflict made it insert nothing. The
        transaction goes on either way."""
        ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a query, if any."""
        ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
        ...

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query as a plain tuple (for large reads)."""
        ...

    def writable(self) -> bool:
        """True when a write transaction can be taken now."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


__all__ = ["Database", "Row"]
