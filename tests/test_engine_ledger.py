"""Ledger: status changes, final failures, holds and events keep the store and a run's view
in step."""

from __future__ import annotations

import time
from typing import Any

import pytest

from podium.decisions import Decisions
from podium.planner import Failure, Hold
from podium.runners.base import Outcome, OutcomeStatus
from podium.states import RunStatus, TaskStatus, TransitionError
from tests.enginekit import Kit, kit_fixture, load  # noqa: F401 - the kit fixture

WF = load(
    """\
name: w
tasks:
  - {id: build, run: make}
  - {id: test, needs: [build], run: make test}
  - {id: charge, idempotent: false, run: charge, rollback: refund}
"""
)


def test_a_task_change_is_written_and_seen(kit: Kit) -> None:
    """A status change reaches the store and the view, and the view's waiting set follows."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    kit.ledger.set_task(ctx, "build", TaskStatus.WAITING_APPROVAL)
    assert kit.statuses(run_id)["build"] is TaskStatus.WAITING_APPROVAL
    assert ctx.waiting == {"build"}
    kit.ledger.set_task(ctx, "build", TaskStatus.PENDING)
    assert kit.statuses(run_id)["build"] is TaskStatus.PENDING
    assert ctx.waiting == set()


def test_a_task_change_over_an_operator_decision_is_refused(kit: Kit) -> None:
    """Starting a task an operator skipped since the view was loaded is refused; the skip stays."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    Decisions(kit.store).skip(run_id, "build", "olga")
    with pytest.raises(TransitionError):
        kit.ledger.set_task(ctx, "build", TaskStatus.RUNNING)
    assert kit.statuses(run_id)["build"] is TaskStatus.SKIPPED
    assert ctx.status["build"] is TaskStatus.PENDING


def test_a_run_change_is_written_once(kit: Kit) -> None:
    """Moving a run to its current status changes nothing; a real move is stored."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    assert kit.ledger.set_run(ctx, RunStatus.RUNNING)
    assert not kit.ledger.set_run(ctx, RunStatus.RUNNING)
    stored = kit.store.get_run(run_id)
    assert stored.status is RunStatus.RUNNING and stored.started_at is not None
    assert ctx.run.status is RunStatus.RUNNING and ctx.run.started_at == stored.started_at


def test_an_operator_skip_is_adopted_and_releases_dependants(kit: Kit) -> None:
    """A skip decided elsewhere is adopted once, and the tasks needing it become ready."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    Decisions(kit.store).skip(run_id, "build", "olga")
    assert kit.ledger.sync_task(ctx, "build")
    assert ctx.status["build"] is TaskStatus.SKIPPED
    assert "test" in ctx.ready
    assert not kit.ledger.sync_task(ctx, "build")
    assert list(ctx.ready).count("test") == 1


def test_an_operator_fail_is_adopted_as_a_failure_of_the_run(kit: Kit) -> None:
    """A task failed by an operator marks the run's view failed; its dependants stay blocked."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    Decisions(kit.store).fail(run_id, "build", "olga")
    assert kit.ledger.sync_task(ctx, "build")
    assert ctx.status["build"] is TaskStatus.FAILED
    assert ctx.failed
    assert "test" not in ctx.ready


def test_a_final_failure_records_status_fingerprint_and_alert(kit: Kit) -> None:
    """A final failure stores status, error and failed fingerprint, and alerts with on_failure."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    kit.begin(ctx, "build")
    kit.ledger.task_failed(ctx, "build", "exit code 2", data={"exit_code": 2})
    rt = kit.store.get_run_task(run_id, "build")
    assert (rt.status, rt.error) == (TaskStatus.FAILED, "exit code 2")
    assert rt.finished_at is not None
    assert kit.store.failures_all()[("w", "build")] == Failure(ctx.fingerprints["build"], run_id)
    (event,) = kit.events(run_id, "task_failed")
    assert event.task == "build"
    assert event.data == {"error": "exit code 2", "exit_code": 2, "on_failure": "rollback"}
    assert ctx.failed


def test_a_hold_interrupts_the_task_and_asks_for_a_decision(kit: Kit) -> None:
    """A forward hold interrupts the task, keeps a hold row, announces waiting_decision."""
    run_id = kit.create(WF)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    ctx = kit.context(run_id)
    attempt = kit.begin(ctx, "charge")
    rt = kit.store.get_run_task(run_id, "charge")
    kit.ledger.hold(ctx.run, ctx.wf, rt, attempt.attempt_id, attempt.number, "run")
    stored = kit.store.get_run_task(run_id, "charge")
    assert stored.status is TaskStatus.INTERRUPTED
    assert stored.error is not None and "retry, skip or fail it" in stored.error
    hold = kit.store.holds_all()[("w", "charge")]
    assert (hold.fingerprint, hold.run_id, hold.phase) == (rt.fingerprint, run_id, "run")
    assert "the agent stopped while it ran" in hold.reason
    (event,) = kit.events(run_id, "waiting_decision")
    assert event.task == "charge"
    assert event.data == {"attempt": 1, "phase": "run", "reason": hold.reason}
    assert kit.store.get_run(run_id).status is RunStatus.RUNNING


def test_a_hold_on_a_rollback_makes_the_run_wait_for_a_decision(kit: Kit) -> None:
    """A rollback attempt cut short holds the task in its rollback phase and the run waits."""
    run_id = kit.create(WF)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.succeeded(run_id, "charge", seq=1)
    kit.store.set_task_status(run_id, "charge", TaskStatus.ROLLING_BACK)
    kit.store.set_run_status(run_id, RunStatus.ROLLING_BACK)
    ctx = kit.context(run_id)
    kit.start_rollback(ctx, "charge")
    (attempt,) = kit.started
    rt = kit.store.get_run_task(run_id, "charge")
    kit.ledger.hold(ctx.run, ctx.wf, rt, attempt.attempt_id, attempt.number, "rollback")
    assert kit.statuses(run_id)["charge"] is TaskStatus.INTERRUPTED
    assert kit.store.holds_all()[("w", "charge")] == Hold(
        rt.fingerprint,
        run_id,
        "rollback",
        "interrupted: the agent stopped while it ran;"
        " the rollback of this non-idempotent task may have had part of its effect",
    )
    assert kit.store.get_run(run_id).status is RunStatus.WAITING_DECISION
    (event,) = kit.events(run_id, "waiting_decision")
    assert event.data["phase"] == "rollback"


def test_events_go_to_the_notifiers_the_workflow_routes_them_to(kit: Kit) -> None:
    """An event is queued for the console and for each notifier whose route asks for its kind."""
    wf = load(
        """\
name: routed
notify: {slack: {channel: "#ops", on: [failed]}}
tasks:
  - {id: a, run: a}
"""
    )
    kit.config.notifiers = ("console", "slack")
    ctx = kit.context(kit.create(wf))
    kit.ledger.emit(ctx, "failed")
    kit.ledger.emit(ctx, "started")
    routes = sorted(
        (item.event.kind, item.notifier, item.target)
        for item in kit.store.due_outbox(time.time() + 1)
    )
    assert routes == [
        ("failed", "console", None),
        ("failed", "slack", "#ops"),
        ("started", "console", None),
    ]


def test_a_summary_event_carries_the_run_and_its_tasks(kit: Kit) -> None:
    """A run-level event names the revision, the trigger and every task's status."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    kit.ledger.set_run(ctx, RunStatus.RUNNING)
    kit.ledger.emit_summary(ctx, "started")
    (event,) = kit.events(run_id, "started")
    assert event.task is None
    assert event.data["revision"] == WF.revision
    assert event.data["trigger"] == "git"
    assert event.data["tasks"] == {"build": "pending", "test": "pending", "charge": "pending"}
    assert event.data["duration"] >= 0.0


def test_a_failing_hook_never_breaks_the_run_nor_the_other_hooks(kit: Kit) -> None:
    """Hooks see each outcome; one that raises is passed over and the next still runs."""
    ctx = kit.context(kit.create(WF))
    seen: list[tuple[str, dict[str, Any]]] = []

    def broken(_name: str, _data: dict[str, Any]) -> None:
        raise RuntimeError("metrics backend down")

    kit.ledger.hooks.extend([broken, lambda name, data: seen.append((name, data))])
    kit.ledger.hook("task_succeeded", ctx, "build", Outcome(OutcomeStatus.SUCCEEDED, duration=1.5))
    assert seen == [
        (
            "task_succeeded",
            {
                "workflow": "w",
                "task": "build",
                "run_id": ctx.run.id,
                "duration": 1.5,
                "status": "succeeded",
            },
        )
    ]
