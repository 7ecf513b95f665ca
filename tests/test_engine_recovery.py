"""Recovery: after a restart, what a dead agent left running is stopped and settled; an
idempotent task runs again, another waits for a human."""

from __future__ import annotations

import os
import signal
import subprocess

from podium.engine.recovery import Recovery
from podium.states import RunStatus, TaskStatus
from tests.enginekit import Kit, kit_fixture, load  # noqa: F401 - the kit fixture

WF = load(
    """\
name: w
tasks:
  - {id: build, run: make, rollback: make clean}
  - {id: charge, idempotent: false, run: charge, rollback: refund}
"""
)
OTHER = load("name: other\ntasks:\n  - {id: sync, run: sync}\n")

SetAsideCalls = list[tuple[int, str, Exception]]


def _recovery(kit: Kit) -> Recovery:
    return Recovery(kit.store, kit.ledger, kit.data_dir, grace=1.0)


def _recover(kit: Kit) -> SetAsideCalls:
    """Recover as a restarted agent does; returns the runs it set aside."""
    calls: SetAsideCalls = []
    _recovery(kit).recover(lambda run_id, workflow, exc: calls.append((run_id, workflow, exc)))
    return calls


def _running(kit: Kit, wf: str = "w", task: str = "build") -> tuple[int, int]:
    """A running run whose ``task`` has an attempt the dead agent left running."""
    run_id = kit.create(WF if wf == "w" else OTHER)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    attempt = kit.begin(kit.context(run_id), task)
    return run_id, attempt.attempt_id


def _rolling_back(kit: Kit, task: str) -> tuple[int, int]:
    """A run rolling back ``task``, whose rollback attempt the dead agent left running."""
    run_id = kit.create(WF, [task])
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.succeeded(run_id, task, 1)
    kit.store.set_task_status(run_id, task, TaskStatus.ROLLING_BACK)
    kit.store.set_run_status(run_id, RunStatus.ROLLING_BACK)
    kit.start_rollback(kit.context(run_id), task)
    return run_id, kit.started[-1].attempt_id


def test_an_idempotent_task_left_running_runs_again(kit: Kit) -> None:
    """An idempotent task left running is pending again, announced by task_resumed."""
    run_id, attempt_id = _running(kit)
    assert _recover(kit) == []
    stored = kit.store.get_attempt(attempt_id)
    assert (stored.status, stored.error) == ("interrupted", "agent stopped while the attempt ran")
    assert kit.statuses(run_id)["build"] is TaskStatus.PENDING
    (event,) = kit.events(run_id, "task_resumed")
    assert (event.task, event.data) == ("build", {"attempt": 1})
    assert kit.store.holds_all() == {}


def test_a_non_idempotent_task_left_running_waits_for_a_human(kit: Kit) -> None:
    """A non-idempotent task left running is interrupted, held and announced, not run again."""
    run_id, attempt_id = _running(kit, task="charge")
    _recover(kit)
    assert kit.store.get_attempt(attempt_id).status == "interrupted"
    assert kit.statuses(run_id)["charge"] is TaskStatus.INTERRUPTED
    hold = kit.store.holds_all()[("w", "charge")]
    rt = kit.store.get_run_task(run_id, "charge")
    assert (hold.fingerprint, hold.run_id, hold.phase) == (rt.fingerprint, run_id, "run")
    (event,) = kit.events(run_id, "waiting_decision")
    assert event.data["phase"] == "run"
    assert kit.events(run_id, "task_resumed") == []


def test_a_non_idempotent_rollback_left_running_makes_the_run_wait(kit: Kit) -> None:
    """A non-idempotent rollback left running is held in its rollback phase; the run waits."""
    run_id, attempt_id = _rolling_back(kit, "charge")
    _recover(kit)
    assert kit.store.get_attempt(attempt_id).status == "interrupted"
    assert kit.statuses(run_id)["charge"] is TaskStatus.INTERRUPTED
    assert kit.store.holds_all()[("w", "charge")].phase == "rollback"
    assert kit.store.get_run(run_id).status is RunStatus.WAITING_DECISION


def test_an_idempotent_rollback_left_running_is_resumed_with_the_run(kit: Kit) -> None:
    """An idempotent rollback left running stays rolling back and is resumed with the run."""
    run_id, attempt_id = _rolling_back(kit, "build")
    _recover(kit)
    assert kit.store.get_attempt(attempt_id).status == "interrupted"
    assert kit.statuses(run_id)["build"] is TaskStatus.ROLLING_BACK
    assert kit.store.get_run(run_id).status is RunStatus.ROLLING_BACK
    assert kit.store.holds_all() == {}
    assert kit.context(run_id).rollback_queue == ["build"]


def test_a_task_decided_meanwhile_keeps_the_decision(kit: Kit) -> None:
    """An attempt whose task is no longer running (decided elsewhere) is only closed."""
    run_id, attempt_id = _running(kit)
    kit.store.set_task_status(run_id, "build", TaskStatus.CANCELLED)
    _recover(kit)
    assert kit.store.get_attempt(attempt_id).status == "interrupted"
    assert kit.statuses(run_id)["build"] is TaskStatus.CANCELLED
    assert kit.events(run_id, "task_resumed") == []


def test_an_unreadable_run_is_set_aside_and_the_others_still_recover(kit: Kit) -> None:
    """An unreadable run goes to set_aside with its workflow; the other runs still recover."""
    bad, bad_attempt = _running(kit)
    good, _ = _running(kit, wf="other", task="sync")
    kit.damage(bad)
    ((run_id, workflow, exc),) = _recover(kit)
    assert (run_id, workflow) == (bad, "w")
    assert isinstance(exc, Exception)
    assert kit.statuses(good)["sync"] is TaskStatus.PENDING
    assert kit.store.get_attempt(bad_attempt).status == "running"


def test_nothing_of_the_dead_attempt_stays_alive(kit: Kit) -> None:
    """A process the dead attempt left (known by its marker) is stopped."""
    run_id, attempt_id = _running(kit)
    marker = {"PODIUM_ATTEMPT_ID": str(attempt_id), "PODIUM_DATA_DIR": str(kit.data_dir)}
    leftover = subprocess.Popen(["sleep", "60"], env={**os.environ, **marker})
    try:
        _recover(kit)
        assert leftover.wait(timeout=10) == -signal.SIGTERM
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()
    assert kit.statuses(run_id)["build"] is TaskStatus.PENDING


def test_runs_with_nothing_left_running_are_untouched(kit: Kit) -> None:
    """Recovery changes nothing in a run none of whose attempts was running."""
    run_id = kit.create(WF)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    before = kit.statuses(run_id)
    assert _recover(kit) == []
    assert kit.statuses(run_id) == before
    assert kit.store.events(run_id=run_id) == []
