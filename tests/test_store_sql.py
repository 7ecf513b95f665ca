"""The store's SQL layer on real SQLite files: each part alone, the dialect seam, and the
compare-and-set promises of the Store protocol."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from podium.planner import Applied, Failure, Hold
from podium.states import RunStatus, TaskStatus
from podium.store import Store, open_store
from podium.store.sql.database import Database, Row
from podium.store.sql.dialect import Dialect, column_list, value_marks
from podium.store.sql.lease import SQLLease
from podium.store.sql.marks import SQLMarks
from podium.store.sql.runs import SQLRunLog
from podium.store.sql.store import SQLStore
from podium.store.sqlite import SQLITE, SQLiteDatabase

SQLITE_ONLY = ("INSERT OR", "REPLACE INTO", "PRAGMA", "BEGIN IMMEDIATE", "AUTOINCREMENT")
"""Spellings PostgreSQL does not accept: only a dialect may produce them."""


class ConflictClauseDialect:
    """Conflicts spelled the way PostgreSQL spells them (``ON CONFLICT``), which SQLite
    also understands; everything else as SQLite's dialect has it."""

    name = "conflict-clause"
    begin = SQLITE.begin
    returning_id = SQLITE.returning_id
    skip_locked = SQLITE.skip_locked

    def placeholders(self, sql: str) -> str:
        return sql

    def insert_or_ignore(self, table: str, columns: Sequence[str]) -> str:
        return (
            f"INSERT INTO {table} ({column_list(columns)}) VALUES ({value_marks(columns)})"  # noqa: S608 - constant names
            " ON CONFLICT DO NOTHING"
        )

    def insert_or_replace(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        return (
            f"INSERT INTO {table} ({column_list(columns)}) VALUES ({value_marks(columns)})"  # noqa: S608 - constant names
            f" ON CONFLICT ({column_list(key)}) DO UPDATE SET {updates}"
        )

    def schema_version(self, database: Database) -> int:
        return SQLITE.schema_version(database)

    def set_schema_version(self, database: Database, version: int) -> None:
        SQLITE.set_schema_version(database, version)


class Recording:
    """A Database that hands every statement to a real one and keeps its text."""

    def __init__(self, inner: SQLiteDatabase) -> None:
        self.inner = inner
        self.statements: list[str] = []

    @property
    def dialect(self) -> Dialect:
        return self.inner.dialect

    @property
    def path(self) -> Path:
        return self.inner.path

    @property
    def version(self) -> Hashable:
        return self.inner.version

    @property
    def schema_version(self) -> int:
        return self.inner.schema_version

    def tx(self) -> AbstractContextManager[None]:
        return self.inner.tx()

    def savepoint(self) -> AbstractContextManager[None]:
        return self.inner.savepoint()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.statements.append(sql)
        return self.inner.execute(sql, params)

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.statements.append(sql)
        self.inner.execute_many(sql, rows)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.statements.append(sql)
        return self.inner.insert(sql, params)

    def try_insert(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        self.statements.append(sql)
        return self.inner.try_insert(sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.statements.append(sql)
        return self.inner.one(sql, params)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.statements.append(sql)
        return self.inner.all(sql, params)

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.statements.append(sql)
        return self.inner.tuples(sql, params)

    def writable(self) -> bool:
        return self.inner.writable()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SQLiteDatabase]:
    db = SQLiteDatabase(tmp_path / "state.db")
    yield db
    db.close()


def task_row(task: str) -> dict[str, object]:
    return {
        "task": task,
        "fingerprint": f"fp-{task}",
        "spec_hash": "s",
        "inputs_hash": "i",
        "reason": "new",
        "previous": None,
    }


def exercise(store: Store) -> dict[str, object]:
    """Every kind of write the store makes, conflicts included, and what reads back."""
    run_id = store.create_run("w", "rev1", "commit", {"name": "w"}, [task_row("a")])
    assert store.claim_task(run_id, "a", attempts=1) is None
    first = store.start_attempt(run_id, "a", "run", "/l/{n}", 1)
    stale = store.start_attempt(run_id, "a", "run", "/l/{n}", 1)  # 1 is taken: next free
    store.finish_attempt(stale.id, "succeeded", exit_code=0)
    store.set_task_status(run_id, "a", TaskStatus.SUCCEEDED, current=TaskStatus.RUNNING)
    store.set_run_status(run_id, RunStatus.RUNNING)
    store.record_revision("rev1", "first", "Ann", "ann@x")
    store.record_revision("rev1", "again", "Bob", "bob@x")  # the first record wins
    store.set_applied("w", "a", Applied("fp-a", "s", "i", "rev1", 1.0), run_id)
    store.set_failure("w", "b", "bad-1", run_id)
    store.set_failure("w", "b", "bad-2", run_id)
    store.set_hold("w", "c", "fp-c", "run", run_id, None, "first")
    store.set_hold("w", "c", "fp-c", "rollback", run_id, first.id, "second")
    store.touch_workflow("w", "workflows/w.yaml", 1.0)
    store.set_file_state("workflows/w.yaml", "w", "rev1", [])
    store.set_file_state("workflows/w.yaml", None, None, ["w.yaml:1: bad"])
    request = store.create_approval(run_id, "a", "fp-a", "rev1", ["@sre"], None, "reject")
    decided = store.decide_approval(request.id, "approved", "ann")
    event = store.emit("e", run_id=run_id, routes=[("slack", "#a"), ("slack", "#a")])
    store.set_ref("k", "slack", "ts-1")
    store.set_ref("k", "slack", "ts-2")
    store.put("mark", "1")
    store.put("mark", "2")
    store.acquire_lease("one", ttl=60)
    renewed = store.acquire_lease("one", ttl=120)
    refused = store.acquire_lease("two", ttl=60)
    return {
        "attempt numbers": [(a.number, a.log_path) for a in store.attempts(run_id)],
        "task": store.get_run_task(run_id, "a").status,
        "revision": (store.revision_info("rev1") or {}).get("subject"),
        "applied": store.applied_all(),
        "failures": store.failures_all(),
        "holds": store.holds_all(),
        "file": {k: v for k, v in store.files_all()["workflows/w.yaml"].items() if k != "file"},
        "decided": (decided, store.get_approval(request.id).status),
        "outbox": [(i.event.id == event, i.target) for i in store.due_outbox(time.time() + 1)],
        "ref": store.get_ref("k"),
        "mark": store.get("mark"),
        "lease": (renewed, refused, (store.lease_holder() or ("",))[0]),
    }


EXPECTED: dict[str, object] = {
    "attempt numbers": [(1, "/l/1"), (2, "/l/2")],
    "task": TaskStatus.SUCCEEDED,
    "revision": "first",
    "applied": {("w", "a"): Applied("fp-a", "s", "i", "rev1", 1.0)},
    "failures": {("w", "b"): Failure("bad-2", 1)},
    "holds": {("w", "c"): Hold("fp-c", 1, "rollback", "second")},
    "file": {"workflow": "w", "good_revision": "rev1", "problems": ["w.yaml:1: bad"]},
    "decided": (True, "approved"),
    "outbox": [(True, "#a")],
    "ref": "ts-2",
    "mark": "2",
    "lease": (None, "one", "one"),
}


def test_the_sqlite_store_keeps_every_promise_of_the_exercise(tmp_path: Path) -> None:
    """The store open_store gives makes each conflicting write ignore or replace as promised."""
    store = open_store(tmp_path / "state.db")
    try:
        assert exercise(store) == EXPECTED
    finally:
        store.close()


def test_parts_send_only_shared_sql_so_another_dialect_plugs_in(tmp_path: Path) -> None:
    """With conflicts spelled the PostgreSQL way by the dialect, the store behaves the same,
    and no statement any part sends carries a SQLite-only spelling."""
    recording = Recording(SQLiteDatabase(tmp_path / "state.db", dialect=ConflictClauseDialect()))
    store = SQLStore(recording)
    try:
        assert exercise(store) == EXPECTED
        sent = " ".join(recording.statements).upper()
        assert "ON CONFLICT DO NOTHING" in sent and "DO UPDATE SET" in sent
        assert [s for s in SQLITE_ONLY if s in sent] == []
    finally:
        store.close()


def test_each_part_works_alone_on_a_database(database: SQLiteDatabase) -> None:
    """A part needs only the database: runs, the lease and marks each work with no other
    part built."""
    runs = SQLRunLog(database)
    run_id = runs.create_run("w", "rev", "commit", {}, [task_row("a")])
    assert runs.claim_task(run_id, "a") is None
    assert runs.get_run_task(run_id, "a").status is TaskStatus.RUNNING
    lease = SQLLease(database)
    assert lease.acquire_lease("me", ttl=60) is None
    assert lease.acquire_lease("you", ttl=60) == "me"
    marks = SQLMarks(database)
    marks.put("a:1", "x")
    marks.put("a:2", "y")
    marks.put("b:1", "z")
    marks.drop_marks("a:", keep={"a:2"})
    assert [marks.get(k) for k in ("a:1", "a:2", "b:1")] == [None, "y", "z"]


def test_a_part_failing_inside_a_transaction_undoes_the_other_parts_writes(
    database: SQLiteDatabase,
) -> None:
    """Parts share the database's transaction: one exception undoes every part's writes."""
    runs, marks = SQLRunLog(database), SQLMarks(database)
    with pytest.raises(ValueError), database.tx():
        marks.put("k", "v")
        run_id = runs.create_run("w", "rev", "commit", {}, [task_row("a")])
        runs.set_task_status(run_id, "a", TaskStatus.RUNNING, bogus=1)
    assert marks.get("k") is None
    assert runs.list_runs() == []


def test_concurrent_claims_of_one_task_have_one_winner(tmp_path: Path) -> None:
    """Two stores claiming the same pending task at once: exactly one claims it, the other
    is told it is running now."""
    a, b = open_store(tmp_path / "state.db"), open_store(tmp_path / "state.db")
    try:
        run_id = a.create_run("w", "rev", "commit", {}, [task_row("t")])
        barrier = threading.Barrier(2)
        results: list[TaskStatus | None] = []

        def claim(store: Store) -> None:
            barrier.wait()
            results.append(store.claim_task(run_id, "t", attempts=1))

        threads = [threading.Thread(target=claim, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count(None) == 1 and TaskStatus.RUNNING in results
        assert a.get_run_task(run_id, "t").attempts == 1
    finally:
        a.close()
        b.close()
