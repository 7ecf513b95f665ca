"""The SQLite state store on real files: schema, records, transactions, outbox, lease, threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from podium.errors import ConfigError, NotFoundError
from podium.planner import Applied, Failure, Hold
from podium.states import RunStatus, TaskStatus
from podium.store import Store, open_store
from podium.store.migrations.sqlite import SCHEMA_VERSION


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "podium.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    s = open_store(db)
    yield s
    s.close()


def task_row(
    task: str, reason: str = "new", previous: Mapping[str, object] | None = None
) -> dict[str, object]:
    return {
        "task": task,
        "fingerprint": f"fp-{task}",
        "spec_hash": f"spec-{task}",
        "inputs_hash": f"in-{task}",
        "reason": reason,
        "previous": previous,
    }


def new_run(store: Store, workflow: str = "deploy", *tasks: str) -> int:
    return store.create_run(
        workflow,
        "rev1",
        "commit",
        {"name": workflow, "tasks": list(tasks or ("build",))},
        [task_row(t) for t in (tasks or ("build",))],
    )


# -- schema ----------------------------------------------------------------------------------


def test_a_first_schema_database_is_upgraded_in_place(db: Path) -> None:
    """A state file written by the first schema keeps its attempts and applied rows, and
    new attempts get ids after the old ones."""
    from podium.store.migrations.sqlite import MIGRATIONS

    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as raw:
        raw.executescript(MIGRATIONS[0])
        raw.execute("PRAGMA user_version = 1")
        raw.execute(
            "INSERT INTO runs (id, workflow, revision, status, trigger, created_at, definition)"
            " VALUES (7, 'deploy', 'rev0', 'succeeded', 'commit', 1.0, '{}')"
        )
        raw.execute(
            "INSERT INTO attempts (id, run_id, task, number, phase, status, started_at,"
            " log_path) VALUES (41, 7, 'build', 1, 'run', 'succeeded', 1.0, '/l/41')"
        )
        raw.execute(
            "INSERT INTO applied (workflow, task, fingerprint, revision, applied_at, run_id)"
            " VALUES ('deploy', 'build', 'fp-old', 'rev0', 1.0, 7)"
        )
    upgraded = open_store(db)
    try:
        assert upgraded.schema_version == SCHEMA_VERSION
        assert [(a.id, a.task, a.log_path) for a in upgraded.attempts(7)] == [
            (41, "build", "/l/41")
        ]
        assert upgraded.applied_all()[("deploy", "build")].fingerprint == "fp-old"
        run = new_run(upgraded, "deploy", "build")
        assert upgraded.start_attempt(run, "build", "run", "/l/{n}", 1).id == 42
        upgraded.set_applied("deploy", "build", Applied("fp-new", revision="rev1"), run)
        assert upgraded.applied_all()[("deploy", "build")].fingerprint == "fp-new"
    finally:
        upgraded.close()


def test_a_second_schema_database_is_upgraded_in_place(db: Path) -> None:
    """A state file written by schema 2 migrates to the current schema in place and keeps
    its runs, run tasks, attempts, applied rows and approvals; what schema 3 added works."""
    from podium.store.migrations.sqlite import MIGRATIONS

    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as raw:
        raw.executescript(MIGRATIONS[0])
        raw.executescript(MIGRATIONS[1])
        raw.execute("PRAGMA user_version = 2")
        raw.execute(
            "INSERT INTO runs (id, workflow, revision, status, trigger, created_at, started_at,"
            " definition) VALUES (7, 'deploy', 'rev0', 'waiting_approval', 'commit', 1.0, 2.0,"
            ' \'{"name": "deploy"}\')'
        )
        raw.execute(
            "INSERT INTO run_tasks (run_id, task, status, fingerprint, spec_hash, inputs_hash,"
            " reason, attempts) VALUES (7, 'build', 'succeeded', 'fp-b', 's', 'i', 'new', 1),"
            " (7, 'ship', 'waiting_approval', 'fp-s', 's', 'i', 'new', 0)"
        )
        raw.execute(
            "INSERT INTO attempts (id, run_id, task, number, phase, status, exit_code,"
            " started_at, finished_at, log_path) VALUES"
            " (41, 7, 'build', 1, 'run', 'succeeded', 0, 2.0, 3.0, '/l/41')"
        )
        raw.execute(
            "INSERT INTO applied (workflow, task, fingerprint, spec_hash, inputs_hash, revision,"
            " applied_at, run_id) VALUES ('deploy', 'build', 'fp-b', 's', 'i', 'rev0', 3.0, 7)"
        )
        raw.execute(
            "INSERT INTO approvals (id, run_id, task, fingerprint, revision, status, approvers,"
            " requested_at, on_timeout) VALUES (5, 7, 'ship', 'fp-s', 'rev0', 'pending',"
            " '[\"@sre\"]', 3.0, 'reject')"
        )
        raw.execute(
            "INSERT INTO workflows (name, file, first_seen, status) VALUES"
            " ('deploy', 'workflows/deploy.yaml', 1.0, 'Reconciling')"
        )
    upgraded = open_store(db)
    try:
        assert upgraded.schema_version == SCHEMA_VERSION
        run = upgraded.get_run(7)
        assert (run.workflow, run.revision, run.status, run.definition) == (
            "deploy",
            "rev0",
            RunStatus.WAITING_APPROVAL,
            {"name": "deploy"},
        )
        assert [r.id for r in upgraded.active_runs()] == [7]
        tasks = upgraded.run_tasks(7)
        assert {t: (r.status, r.fingerprint, r.attempts) for t, r in tasks.items()} == {
            "build": (TaskStatus.SUCCEEDED, "fp-b", 1),
            "ship": (TaskStatus.WAITING_APPROVAL, "fp-s", 0),
        }
        (attempt,) = upgraded.attempts(7)
        assert (attempt.id, attempt.task, attempt.status, attempt.exit_code) == (
            41,
            "build",
            "succeeded",
            0,
        )
        assert upgraded.applied_all() == {
            ("deploy", "build"): Applied("fp-b", "s", "i", "rev0", 3.0)
        }
        assert upgraded.applied_rows("deploy")["build"]["run_id"] == 7
        (request,) = upgraded.approvals(run_id=7)
        assert (request.id, request.status, request.approvers) == (5, "pending", ["@sre"])
        assert request.committer_email is None and request.forbid_self_approval is None
        # what schema 3 added: holds, the outstanding count, four-eyes on requests
        upgraded.set_hold("deploy", "ship", "fp-s", "run", 7, 41, "interrupted")
        assert upgraded.holds_all() == {("deploy", "ship"): Hold("fp-s", 7, "run", "interrupted")}
        upgraded.set_workflow_status("deploy", "Stalled", "WaitingApproval", "ship", 1)
        assert upgraded.workflow_rows()["deploy"]["outstanding"] == 1
        again = upgraded.create_approval(
            7, "ship", "fp-s", "rev0", ["@sre"], None, "reject", "a@x", "c@x", True
        )
        assert (again.committer_email, again.forbid_self_approval) == ("c@x", True)
        assert upgraded.start_attempt(7, "ship", "run", "/l/{n}", 1).id == 42
    finally:
        upgraded.close()


def test_attempt_numbers_stay_unique_when_the_callers_count_is_stale(store: Store) -> None:
    run = new_run(store, "deploy", "build")
    first = store.start_attempt(run, "build", "run", "/l/{n}", 1)
    again = store.start_attempt(run, "build", "run", "/l/{n}", 1)  # stale: 1 is taken
    assert (first.number, again.number) == (1, 2)
    assert again.log_path == "/l/2"


def test_database_is_in_wal_mode(store: Store, db: Path) -> None:
    """The store turns on WAL journaling, and it sticks to the file."""
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.exists()


def test_schema_version_is_recorded(store: Store, db: Path) -> None:
    """A new database carries the current schema version in PRAGMA user_version."""
    assert store.schema_version == SCHEMA_VERSION >= 1
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reopening_keeps_data_and_does_not_migrate_again(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second open of an up-to-date file runs no migration and keeps every row."""
    first = open_store(db)
    first.put("k", "v")
    run_id = new_run(first)
    first.close()
    # Were a migration to run again, this statement would fail the open.
    monkeypatch.setattr(
        "podium.store.migrations.sqlite.MIGRATIONS",
        ("CREATE TABLE runs (boom INTEGER)",) * SCHEMA_VERSION,
    )
    again = open_store(db)
    try:
        assert again.schema_version == SCHEMA_VERSION
        assert again.get("k") == "v"
        assert again.get_run(run_id).workflow == "deploy"
    finally:
        again.close()


def test_concurrent_first_opens_migrate_once(db: Path) -> None:
    """Several stores opening a brand-new file at once all succeed on one schema."""
    barrier = threading.Barrier(4)
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            barrier.wait()
            opened.append(open_store(db))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert [s.schema_version for s in opened] == [SCHEMA_VERSION] * 4
    finally:
        for s in opened:
            s.close()


def test_newer_schema_is_refused_with_one_clear_message(db: Path) -> None:
    """A database written by a newer podium gives a ConfigError saying to upgrade."""
    open_store(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError) as info:
        open_store(db)
    message = str(info.value)
    assert str(db) in message
    assert f"schema {SCHEMA_VERSION + 1}" in message and "upgrade podium" in message
    assert "\n" not in message
    with sqlite3.connect(db) as raw:  # left untouched
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_file_that_is_not_a_database_gives_config_error(db: Path) -> None:
    """Garbage in the state file is reported as a ConfigError, not a raw sqlite3 error."""
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a sqlite database, just text" * 100)
    with pytest.raises(ConfigError, match="state store"):
        open_store(db)


# -- runs, tasks, attempts ---------------------------------------------------------------------


def test_run_round_trip(store: Store) -> None:
    """A created run reads back with its definition, tasks and pending status."""
    previous = {"fingerprint": "old", "revision": "rev0"}
    run_id = store.create_run(
        "deploy",
        "rev1",
        "commit",
        {"name": "deploy", "params": {"V": "1"}},
        [task_row("build"), task_row("test", "upstream changed", previous)],
        slot=123.0,
    )
    run = store.get_run(run_id)
    assert (run.workflow, run.revision, run.trigger) == ("deploy", "rev1", "commit")
    assert run.status is RunStatus.PENDING
    assert run.definition == {"name": "deploy", "params": {"V": "1"}}
    assert run.slot == 123.0
    assert run.started_at is None and run.finished_at is None and run.duration is None
    tasks = store.run_tasks(run_id)
    assert set(tasks) == {"build", "test"}
    assert tasks["test"].status is TaskStatus.PENDING
    assert tasks["test"].reason == "upstream changed"
    assert tasks["test"].previous == previous
    assert tasks["build"].previous is None
    assert tasks["build"].fingerprint == "fp-build"
    assert store.active_runs() == [run]
    assert store.last_run("deploy") == run


def test_run_status_sets_start_and_finish_times(store: Store) -> None:
    """Leaving pending stamps started_at; a terminal status stamps finished_at and an error."""
    run_id = new_run(store)
    running = store.set_run_status(run_id, RunStatus.RUNNING)
    assert running.started_at is not None and running.finished_at is None
    failed = store.set_run_status(run_id, RunStatus.FAILED, error="build failed")
    assert failed.status is RunStatus.FAILED
    assert failed.started_at == running.started_at
    assert failed.finished_at is not None and failed.duration is not None
    assert failed.error == "build failed"
    assert store.active_runs() == []
    assert store.list_runs("deploy", active_only=True) == []


def test_restating_a_finished_run_keeps_its_finish_time(store: Store) -> None:
    """Setting a finished run's status again changes neither its times nor its error."""
    run_id = new_run(store)
    store.set_run_status(run_id, RunStatus.RUNNING)
    done = store.set_run_status(run_id, RunStatus.SUCCEEDED)
    time.sleep(0.01)
    again = store.set_run_status(run_id, RunStatus.SUCCEEDED)
    assert again == done


def test_task_status_and_fields_round_trip(store: Store) -> None:
    """set_task_status stores the status and the extra columns it is given."""
    run_id = new_run(store)
    store.set_task_status(run_id, "build", TaskStatus.RUNNING, attempts=1, started_at=10.0)
    store.set_task_status(
        run_id,
        "build",
        TaskStatus.SUCCEEDED,
        finished_at=12.5,
        completed_seq=1,
    )
    rt = store.get_run_task(run_id, "build")
    assert rt.status is TaskStatus.SUCCEEDED
    assert (rt.attempts, rt.started_at, rt.finished_at, rt.completed_seq) == (1, 10.0, 12.5, 1)


def test_task_status_refuses_unknown_columns(store: Store) -> None:
    """Only known run_tasks columns may be set (no SQL built from arbitrary names)."""
    run_id = new_run(store)
    with pytest.raises(ValueError, match="unknown run_tasks columns"):
        store.set_task_status(run_id, "build", TaskStatus.RUNNING, **{"status = 'x' --": 1})
    assert store.get_run_task(run_id, "build").status is TaskStatus.PENDING


def test_missing_run_and_task_raise_not_found(store: Store) -> None:
    """Unknown ids raise NotFoundError, not None or a KeyError."""
    run_id = new_run(store)
    with pytest.raises(NotFoundError):
        store.get_run(run_id + 1)
    with pytest.raises(NotFoundError):
        store.get_run_task(run_id, "nope")
    with pytest.raises(NotFoundError):
        store.get_attempt(999)
    with pytest.raises(NotFoundError):
        store.get_approval(999)


def test_attempt_numbers_count_per_run_task_and_phase(store: Store) -> None:
    """Attempts are numbered 1, 2, … separately for each (run, task, phase)."""
    run_a = new_run(store, "deploy", "build", "test")
    run_b = new_run(store, "deploy", "build")
    numbers = [
        store.start_attempt(run, task, phase, "logs/{n}.log").number
        for run, task, phase in [
            (run_a, "build", "run"),
            (run_a, "build", "run"),
            (run_a, "build", "rollback"),
            (run_a, "test", "run"),
            (run_b, "build", "run"),
            (run_a, "build", "run"),
        ]
    ]
    assert numbers == [1, 2, 1, 1, 1, 3]
    assert [a.log_path for a in store.attempts(run_a, "build")] == [
        "logs/1.log",
        "logs/2.log",
        "logs/1.log",
        "logs/3.log",
    ]


def test_attempt_round_trip(store: Store) -> None:
    """An attempt records its outcome, output tail and finish time."""
    run_id = new_run(store)
    attempt = store.start_attempt(run_id, "build", "run", "x.log")
    assert attempt.status == "running" and attempt.finished_at is None
    assert [a.id for a in store.running_attempts(run_id)] == [attempt.id]
    store.finish_attempt(attempt.id, "failed", exit_code=2, output_tail="boom", error="exit 2")
    done = store.get_attempt(attempt.id)
    assert (done.status, done.exit_code, done.output_tail, done.error) == (
        "failed",
        2,
        "boom",
        "exit 2",
    )
    assert done.http_status is None and done.finished_at is not None
    assert store.running_attempts(run_id) == []
    assert store.attempts(run_id) == [done]


# -- approvals -------------------------------------------------------------------------------


def test_approval_is_decided_only_once(store: Store) -> None:
    """The first decision wins; a second one returns False and changes nothing."""
    run_id = new_run(store)
    req = store.create_approval(run_id, "build", "fp-build", "rev1", ["@sre"], None, "reject")
    assert req.status == "pending" and req.approvers == ["@sre"]
    assert store.decide_approval(req.id, "approved", "U1", "lgtm", "slack") is True
    assert store.decide_approval(req.id, "rejected", "U2", "no", "cli") is False
    got = store.get_approval(req.id)
    assert (got.status, got.decided_by, got.comment, got.via) == ("approved", "U1", "lgtm", "slack")
    assert got.fingerprint == "fp-build" and got.decided_at is not None
    assert store.approvals(run_id=run_id, status="pending") == []
    assert store.approvals(run_id=run_id, task="build") == [got]


def test_concurrent_decisions_have_one_winner(db: Path) -> None:
    """Two stores racing to decide the same request: exactly one succeeds."""
    a, b = open_store(db), open_store(db)
    try:
        run_id = new_run(a)
        req = a.create_approval(run_id, "build", "fp", "rev1", ["x"], 10.0, "approve")
        results: list[bool] = []
        barrier = threading.Barrier(2)

        def decide(s: Store, status: str) -> None:
            barrier.wait()
            results.append(s.decide_approval(req.id, status, status))

        threads = [
            threading.Thread(target=decide, args=(a, "approved")),
            threading.Thread(target=decide, args=(b, "rejected")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False, True]
        assert a.get_approval(req.id).status == a.get_approval(req.id).decided_by
    finally:
        a.close()
        b.close()


# -- events and outbox -----------------------------------------------------------------------


def test_emit_writes_the_event_and_one_outbox_item_per_route(store: Store) -> None:
    """An event is logged once and queued once for each (notifier, target) route."""
    event_id = store.emit(
        "run_failed",
        workflow="deploy",
        run_id=1,
        task="build",
        actor="agent",
        data={"error": "x"},
        routes=[("slack", "#ops"), ("console", None), ("slack", "#ops")],
    )
    (event,) = store.events()
    assert event.id == event_id
    assert (event.kind, event.workflow, event.run_id, event.task, event.actor) == (
        "run_failed",
        "deploy",
        1,
        "build",
        "agent",
    )
    assert event.data == {"error": "x"}
    items = store.due_outbox(now=time.time() + 1)
    assert [(i.notifier, i.target) for i in items] == [("slack", "#ops"), ("console", None)]
    assert all(i.event == event and i.attempts == 0 for i in items)
    assert store.outbox_depth() == 2


def test_exception_in_a_transaction_leaves_no_event_and_no_outbox(store: Store) -> None:
    """Events and their outbox rows commit together: an error inside tx() drops both."""

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.tx():
        store.emit("started", run_id=1, routes=[("slack", "#ops")])
        store.emit("task_started", run_id=1, routes=[("console", None)])
        raise Boom
    assert store.events() == []
    assert store.outbox_depth() == 0
    assert store.due_outbox(now=time.time() + 1) == []
    store.emit("started", routes=[("console", None)])  # the store is usable afterwards
    assert len(store.events()) == 1 and store.outbox_depth() == 1


def test_nested_transactions_commit_once_with_the_outer(store: Store, db: Path) -> None:
    """Writes in a nested tx() are invisible to other connections until the outer commits."""
    with store.tx():
        with store.tx():
            store.put("k", "inner")
        with sqlite3.connect(db) as raw:
            assert raw.execute("SELECT value FROM kv WHERE key = 'k'").fetchone() is None
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT value FROM kv WHERE key = 'k'").fetchone() == ("inner",)


def test_outbox_retry_schedule(store: Store) -> None:
    """mark_failed hides an item until next_at; mark_delivered removes it for good."""
    store.emit("failed", routes=[("slack", "#a"), ("slack", "#b")])
    now = time.time() + 1
    first, second = store.due_outbox(now)
    store.mark_failed(first.id, "rate limited " * 100, next_at=now + 60)
    assert [i.id for i in store.due_outbox(now)] == [second.id]
    assert [i.id for i in store.due_outbox(now + 59)] == [second.id]
    retried = store.due_outbox(now + 60)
    assert [i.id for i in retried] == [first.id, second.id]
    assert retried[0].attempts == 1
    store.mark_delivered(first.id)
    store.mark_delivered(second.id)
    assert store.due_outbox(now + 3600) == []
    assert store.outbox_depth() == 0


def test_due_outbox_respects_the_limit_in_order(store: Store) -> None:
    """due_outbox returns the oldest items first, at most ``limit`` of them."""
    for n in range(5):
        store.emit(f"e{n}", routes=[("console", None)])
    items = store.due_outbox(time.time() + 1, limit=3)
    assert [i.event.kind for i in items] == ["e0", "e1", "e2"]


# -- lease -----------------------------------------------------------------------------------


def test_lease_is_held_by_one_owner_until_it_expires(store: Store) -> None:
    """A second owner is refused while the lease is live and gets it once it expired."""
    assert store.acquire_lease("agent-a", ttl=60) is None
    assert store.acquire_lease("agent-b", ttl=60) == "agent-a"
    holder = store.lease_holder()
    assert holder is not None and holder[0] == "agent-a"
    assert store.acquire_lease("agent-a", ttl=0.05) is None  # renew with a tiny ttl
    time.sleep(0.1)
    assert store.lease_holder() is None
    assert store.acquire_lease("agent-b", ttl=60) is None
    assert store.acquire_lease("agent-a", ttl=60) == "agent-b"


def test_lease_release(store: Store) -> None:
    """Only the holder's release frees the lease; then anyone may take it."""
    store.acquire_lease("agent-a", ttl=60)
    store.release_lease("agent-b")
    assert store.acquire_lease("agent-b", ttl=60) == "agent-a"
    store.release_lease("agent-a")
    assert store.lease_holder() is None
    assert store.acquire_lease("agent-b", ttl=60) is None


def test_renewing_keeps_the_acquired_time(store: Store, db: Path) -> None:
    """A holder renewing its lease extends expiry but keeps when it first acquired it."""
    store.acquire_lease("agent-a", ttl=60)
    with sqlite3.connect(db) as raw:
        (acquired, expires) = raw.execute("SELECT acquired_at, expires_at FROM lease").fetchone()
    time.sleep(0.01)
    store.acquire_lease("agent-a", ttl=120)
    with sqlite3.connect(db) as raw:
        (acquired2, expires2) = raw.execute("SELECT acquired_at, expires_at FROM lease").fetchone()
    assert acquired2 == acquired and expires2 > expires


def test_two_stores_contend_for_one_lease(db: Path) -> None:
    """Two agents on one file: the second is refused while the first holds the lease."""
    a, b = open_store(db), open_store(db)
    try:
        assert a.acquire_lease("a", ttl=60) is None
        assert b.acquire_lease("b", ttl=60) == "a"
        a.release_lease("a")
        assert b.acquire_lease("b", ttl=60) is None
        assert a.acquire_lease("a", ttl=60) == "b"
    finally:
        a.close()
        b.close()


# -- applied state ---------------------------------------------------------------------------


def test_applied_set_and_read(store: Store) -> None:
    """set_applied is what applied_all (the planner's input) returns."""
    store.set_applied("deploy", "build", Applied("fp1", "s1", "i1", "rev1", 10.0), run_id=1)
    store.set_applied("deploy", "test", Applied("fp2", "s2", "i2", "rev1", 11.0), run_id=1)
    store.set_applied("deploy", "build", Applied("fp3", "s3", "i3", "rev2", 12.0), run_id=2)
    assert store.applied_all() == {
        ("deploy", "build"): Applied("fp3", "s3", "i3", "rev2", 12.0),
        ("deploy", "test"): Applied("fp2", "s2", "i2", "rev1", 11.0),
    }


def test_restore_applied_puts_back_the_previous_row_exactly(store: Store) -> None:
    """Rollback restores the row a run replaced, column for column."""
    store.set_applied(
        "deploy", "build", Applied("old", "s0", "i0", "rev0", 5.0), run_id=1, rollback={"run": "x"}
    )
    previous = store.applied_rows("deploy").get("build")
    assert previous is not None
    store.set_applied("deploy", "build", Applied("new", "s1", "i1", "rev1", 9.0), run_id=2)
    assert store.applied_all()[("deploy", "build")].fingerprint == "new"
    store.restore_applied("deploy", "build", previous)
    assert store.applied_rows("deploy").get("build") == previous


def test_restore_applied_with_none_deletes(store: Store) -> None:
    """Restoring ``None`` (the task had never been applied) removes the row."""
    store.set_applied("deploy", "build", Applied("new", "s", "i", "rev1", 9.0), run_id=2)
    store.set_applied("deploy", "test", Applied("t", "s", "i", "rev1", 9.0), run_id=2)
    store.restore_applied("deploy", "build", None)
    assert store.applied_rows("deploy").get("build") is None
    assert list(store.applied_all()) == [("deploy", "test")]


def test_forget_applied_and_failures(store: Store) -> None:
    """Forgetting tasks drops their applied rows and failures; other workflows stay."""
    for wf, task in [("a", "x"), ("a", "y"), ("b", "x")]:
        store.set_applied(wf, task, Applied("fp"), run_id=None)
        store.set_failure(wf, task, "bad", run_id=3)
    store.forget_applied("a", ["x"])
    assert set(store.applied_all()) == {("a", "y"), ("b", "x")}
    assert set(store.failures_all()) == {("a", "y"), ("b", "x")}
    store.forget_applied("a")
    assert set(store.applied_all()) == {("b", "x")}
    assert store.failures_all() == {("b", "x"): Failure("bad", 3)}


# -- concurrency -----------------------------------------------------------------------------


def test_many_threads_share_one_store(store: Store) -> None:
    """Four threads of 50 emits each (with reads in between) give 200 events and no errors."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(50):
                store.emit("tick", run_id=n, data={"i": i}, routes=[("console", None)])
                store.events(run_id=n, limit=5)
                store.outbox_depth()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = store.events(limit=1000)
    assert len(events) == 200
    assert len({e.id for e in events}) == 200
    for n in range(4):
        assert [e.data["i"] for e in store.events(run_id=n)] == list(range(50))
    assert store.outbox_depth() == 200


def test_two_stores_on_one_file_see_each_others_writes(db: Path) -> None:
    """Two Store objects (like two processes) share committed state both ways."""
    a, b = open_store(db), open_store(db)
    try:
        run_id = new_run(a)
        assert b.get_run(run_id).status is RunStatus.PENDING
        b.set_run_status(run_id, RunStatus.RUNNING)
        assert a.get_run(run_id).status is RunStatus.RUNNING
        b.set_applied("deploy", "build", Applied("fp"), run_id=run_id)
        assert a.applied_all() == {("deploy", "build"): Applied("fp")}
        a.emit("hello", routes=[("console", None)])
        assert [e.kind for e in b.events()] == ["hello"]
        assert b.outbox_depth() == 1
    finally:
        a.close()
        b.close()


def test_two_stores_writing_concurrently_lose_nothing(db: Path) -> None:
    """Two stores on one file writing at once both get every write committed."""
    stores = [open_store(db), open_store(db)]
    errors: list[BaseException] = []

    def work(s: Store, n: int) -> None:
        try:
            for i in range(25):
                with s.tx():
                    s.emit("w", run_id=n, data={"i": i})
                    s.put(f"{n}:{i}", "x")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, n)) for n, s in enumerate(stores)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(stores[0].events()) == 50
        assert stores[1].get("1:24") == "x" and stores[1].get("0:24") == "x"
    finally:
        for s in stores:
            s.close()
