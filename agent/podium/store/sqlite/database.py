"""The SQLite database under the store: one file, WAL mode, short transactions.

Durability: every state transition is committed (``synchronous=NORMAL`` in WAL mode)
before the side effect it announces, so a killed agent (SIGKILL) never loses a
committed transition; ``durable=True`` uses ``synchronous=FULL`` to also survive power
loss. One connection is shared by the threads of a process behind a re-entrant lock;
several processes share the file through SQLite's own locking.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from podium.errors import ConfigError
from podium.store.migrations import migrate
from podium.store.migrations import sqlite as sqlite_migrations
from podium.store.sql.database import Row
from podium.store.sql.dialect import Dialect
from podium.store.sqlite.dialect import SQLITE


def _explain(exc: sqlite3.Error, path: Path) -> str:
    """A one-line reason a state file cannot be opened or written."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return "it is read-only (file, directory or filesystem); Podium must write its state"
    if "unable to open" in text:
        where = path if path.exists() else path.parent
        return f"cannot open it (check that {where} exists and is writable)"
    return text


class _Transaction:
    """``with database.tx():`` — the dialect's BEGIN at the outermost entry, COMMIT at its
    exit (ROLLBACK on an exception); inner entries join. Holds the connection's lock
    throughout, so other threads wait instead of interleaving statements."""

    __slots__ = ("_db",)

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    def __enter__(self) -> None:
        db = self._db
        db._lock.acquire()
        if db._depth == 0:
            try:
                db._conn.execute(db._begin)
            except BaseException:
                db._lock.release()
                raise
        db._depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db = self._db
        try:
            db._depth -= 1
            if db._depth == 0:
                if exc_type is None:
                    try:
                        db._conn.execute("COMMIT")
                    except BaseException:
                        db._rollback()
                        raise
                    db._writes += 1
                else:
                    db._rollback()
        finally:
            db._lock.release()


class SQLiteDatabase:
    """One SQLite file: opening it, migrating it, statements, transactions, savepoints."""

    def __init__(
        self,
        path: Path | str,
        *,
        durable: bool = False,
        read_only: bool = False,
        dialect: Dialect = SQLITE,
    ) -> None:
        """Open (creating it and its directory if needed) and migrate the file. With
        ``read_only`` the opening writes nothing once the schema is current; otherwise it
        proves at once that the file can be written. ``dialect`` spells the statements
        (SQLite's own unless a test swaps it)."""
        self._path = Path(path)
        self._dialect = dialect
        self._begin = dialect.begin
        self._lock = threading.RLock()
        self._depth = 0
        self._writes = 0
        self._tx = _Transaction(self)
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
            raise ConfigError(
                f"state store {self._path}: cannot create {self._path.parent}: {reason}"
            ) from None
        try:
            self._conn = sqlite3.connect(
                str(self._path), isolation_level=None, check_same_thread=False, timeout=30
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._retry_locked(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._retry_locked(lambda: migrate(self, sqlite_migrations.MIGRATIONS, str(self._path)))
            if not read_only:  # an immutable file or a read-only mount says so at once
                with self.tx():
                    self._conn.execute(
                        "INSERT OR REPLACE INTO kv (key, value) VALUES ('opened', 1)"
                    )
        except sqlite3.Error as exc:
            raise ConfigError(f"state store {self._path}: {_explain(exc, self._path)}") from None

    @staticmethod
    def _retry_locked(step: Callable[[], object], attempts: int = 50) -> None:
        """Run a set-up step, retrying while another opener holds the new file's lock."""
        for attempt in range(attempts):
            try:
                step()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))

    # -- what the store promises about the database ---------------------------------

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def path(self) -> Path:
        return self._path

    @property
    def version(self) -> tuple[int, int]:
        """(``PRAGMA data_version``, commits made here): the first changes when another
        connection commits, the second when this one does."""
        with self._lock:
            other = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            return other, self._writes

    @property
    def schema_version(self) -> int:
        return self._dialect.schema_version(self)

    def tx(self) -> _Transaction:
        return self._tx

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.tx():
            name = f"sp{self._depth}"
            self._conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute(f"ROLLBACK TO {name}")
                    self._conn.execute(f"RELEASE {name}")
                raise
            self._conn.execute(f"RELEASE {name}")

    def _rollback(self) -> None:
        # SQLite may have rolled back already (some errors do): nothing more to undo then
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")

    def writable(self) -> bool:
        try:
            with self.tx():
                self._conn.execute(
                    "INSERT OR REPLACE INTO kv (key, value) VALUES ('probe', ?)", (time.time(),)
                )
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- statements -------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._conn.executemany(sql, rows)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return int(self._conn.execute(sql, params).lastrowid or 0)

    def try_insert(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        with self._lock:
            cur = self._conn.execute(sql, params)
            return int(cur.lastrowid or 0) if cur.rowcount > 0 else None

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            rows: list[Row] = self._conn.execute(sql, params).fetchall()
            return rows

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._conn.cursor()
            cur.row_factory = None  # plain tuples: this can be tens of thousands of rows
            rows: list[tuple[Any, ...]] = cur.execute(sql, params).fetchall()
            return rows


__all__ = ["SQLiteDatabase"]
