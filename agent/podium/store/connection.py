"""The state store's connection: opening, migrations, transactions, key/value."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from podium.errors import ConfigError
from podium.store.schema import MIGRATIONS, SCHEMA_VERSION


def dumps(value: Any) -> str:
    """Canonical JSON for stored columns."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


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
    """``with store.tx():`` — BEGIN IMMEDIATE at the outermost entry, COMMIT at its exit
    (ROLLBACK on an exception); inner entries join. Holds the connection's lock throughout,
    so other threads wait instead of interleaving statements."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        conn = self._conn
        conn._lock.acquire()
        if conn._depth == 0:
            try:
                conn._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                conn._lock.release()
                raise
        conn._depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        try:
            conn._depth -= 1
            if conn._depth == 0:
                if exc_type is None:
                    try:
                        conn._db.execute("COMMIT")
                    except BaseException:
                        conn._rollback()
                        raise
                    conn._writes += 1
                else:
                    conn._rollback()
        finally:
            conn._lock.release()


class Connection:
    """The state store's connection: opening, migrations, transactions, key/value."""

    def __init__(self, path: Path | str, *, durable: bool = False, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._writes = 0
        self._tx = _Transaction(self)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
            raise ConfigError(
                f"state store {self.path}: cannot create {self.path.parent}: {reason}"
            ) from None
        try:
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout=30000")
            self._retry_locked(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._retry_locked(self._migrate)
            if not read_only:  # an immutable file or a read-only mount says so at once
                with self.tx():
                    self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('opened', 1)")
        except sqlite3.Error as exc:
            raise ConfigError(f"state store {self.path}: {_explain(exc, self.path)}") from None

    # -- plumbing -------------------------------------------------------------

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

    def _migrate(self) -> None:
        with self.tx():
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"state store {self.path} has schema {version}, newer than this"
                    f" podium understands ({SCHEMA_VERSION}): upgrade podium"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number + 1}")

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever anyone (this process or another) committed a write."""
        with self._lock:
            other = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            return other, self._writes

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def tx(self) -> _Transaction:
        """One write transaction (re-entrant: inner blocks join the outer one)."""
        return self._tx

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the current write transaction that an exception undoes alone: the
        writes before it stay, the transaction goes on (opens one if none is open)."""
        with self.tx():
            name = f"sp{self._depth}"
            self._db.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute(f"ROLLBACK TO {name}")
                    self._db.execute(f"RELEASE {name}")
                raise
            self._db.execute(f"RELEASE {name}")

    def _rollback(self) -> None:
        # SQLite may have rolled back already (some errors do): nothing more to undo then
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def _x(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    def writable(self) -> bool:
        """True when a write transaction can be taken now (for readiness checks)."""
        try:
            with self.tx():
                self._x(
                    "INSERT OR REPLACE INTO kv (key, value) VALUES ('probe', ?)", (time.time(),)
                )
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- key/value --------------------------------------------------------------

    def get(self, key: str) -> str | None:
        row = self._one("SELECT value FROM kv WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def put(self, key: str, value: str) -> None:
        with self.tx():
            self._x("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def drop_marks(self, prefix: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Delete the key/value marks whose key starts with ``prefix``, but those in ``keep``."""
        with self.tx():
            rows = self._all(
                "SELECT key FROM kv WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            )
            for row in rows:
                if row["key"] not in keep:
                    self._x("DELETE FROM kv WHERE key = ?", (row["key"],))


__all__ = ["Connection", "dumps"]
