"""Saga: after a final failure a run stops, goes on, or rolls back its successes newest-first,
putting back what was applied before it."""

from __future__ import annotations

import time

import pytest

from podium.decisions import Decisions
from podium.engine.context import InFlight, RunContext
from podium.planner import Applied
from podium.runners.base import Outcome, OutcomeStatus
from podium.states import RunStatus, TaskStatus
from tests.enginekit import Kit, kit_fixture, load  # noqa: F401 - the kit fixture

TASKS = """\
  - {id: db, run: migrate, rollback: unmigrate}
  - {id: cache, run: warm}
  - {id: app, needs: [db], run: deploy, rollback: undeploy}
  - {id: smoke, needs: [app, cache], run: smoke}
  - {id: docs, needs: [smoke], run: publish}
  - id: announce
    run: announce
    approval: {approvers: [alice@example.com]}
"""
OK = Outcome(OutcomeStatus.SUCCEEDED, exit_code=0)
CUT = Outcome(OutcomeStatus.CANCELLED, error="cancelled")


def _failed_run(kit: Kit, on_failure: str = "rollback", trigger: str = "git") -> RunContext:
    """A run where db, cache and app succeeded (in that order), smoke failed for good, docs
    never started and announce waits for approval."""
    wf = load(f"name: w\non_failure: {on_failure}\ntasks:\n{TASKS}")
    run_id = kit.create(wf, trigger=trigger)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    for seq, name in enumerate(("db", "cache", "app"), start=1):
        kit.succeeded(run_id, name, seq)
    ctx = kit.context(run_id)
    kit.begin(ctx, "smoke")
    kit.ledger.task_failed(ctx, "smoke", "exit code 1")
    kit.ledger.set_task(ctx, "announce", TaskStatus.WAITING_APPROVAL)
    rt = kit.store.get_run_task(run_id, "announce")
    kit.store.create_approval(
        run_id, "announce", rt.fingerprint, wf.revision, ["alice@example.com"], None, "reject"
    )
    ctx.running.clear()
    return ctx


def _finish(kit: Kit, ctx: RunContext, attempt: InFlight, out: Outcome) -> None:
    """Report a rollback attempt's outcome, then take the saga's next step (as the engine
    does once the outcome is in)."""
    ctx.running.discard(attempt.task)
    kit.saga.record(ctx, attempt, out, out.output_tail)
    kit.saga.step(ctx)


def test_the_rollback_order_is_newest_completion_first(kit: Kit) -> None:
    """Rollback order is newest completion first; resuming includes tasks already rolling back."""
    ctx = _failed_run(kit)
    run_id = ctx.run.id
    assert kit.saga.rollback_order(run_id, resume=False) == ["app", "cache", "db"]
    kit.store.set_task_status(run_id, "app", TaskStatus.ROLLING_BACK)
    assert kit.saga.rollback_order(run_id, resume=False) == ["cache", "db"]
    assert kit.saga.rollback_order(run_id, resume=True) == ["app", "cache", "db"]


@pytest.mark.parametrize("policy", ["stop", "continue"])
def test_without_rollback_the_run_fails_and_keeps_what_it_applied(kit: Kit, policy: str) -> None:
    """stop and continue cancel what did not start and fail the run without rolling back."""
    ctx = _failed_run(kit, policy)
    run_id = ctx.run.id
    kit.saga.after_failure(ctx)
    statuses = kit.statuses(run_id)
    assert statuses["docs"] is TaskStatus.CANCELLED
    assert statuses["announce"] is TaskStatus.CANCELLED
    assert [a.status for a in kit.store.approvals(run_id=run_id)] == ["cancelled"]
    assert {statuses[n] for n in ("db", "cache", "app")} == {TaskStatus.SUCCEEDED}
    assert kit.store.get_run(run_id).status is RunStatus.FAILED
    assert len(kit.events(run_id, "failed")) == 1
    assert kit.started == []
    assert {t for (_w, t) in kit.store.applied_all()} == {"db", "cache", "app"}
    assert not ctx.ready and not ctx.delayed


def test_a_rollback_undoes_successes_newest_first_and_restores_what_was_applied(
    kit: Kit,
) -> None:
    """Rollback undoes successes newest-first, restores applied rows, and ends rolled_back."""
    before = Applied("fp-of-last-week", "s", "i", "rev-last-week", time.time() - 86400)
    kit.store.set_applied("w", "db", before, None)
    ctx = _failed_run(kit)
    run_id = ctx.run.id
    kit.saga.after_failure(ctx)
    assert kit.store.get_run(run_id).status is RunStatus.ROLLING_BACK
    assert len(kit.events(run_id, "rolling_back")) == 1
    assert [a.task for a in kit.started] == ["app"]
    assert kit.statuses(run_id)["app"] is TaskStatus.ROLLING_BACK
    _finish(kit, ctx, kit.started[0], OK)
    assert [a.task for a in kit.started] == ["app", "db"]
    assert kit.statuses(run_id)["app"] is TaskStatus.ROLLED_BACK
    assert kit.statuses(run_id)["cache"] is TaskStatus.ROLLED_BACK
    _finish(kit, ctx, kit.started[1], OK)
    statuses = kit.statuses(run_id)
    assert {statuses[n] for n in ("db", "cache", "app")} == {TaskStatus.ROLLED_BACK}
    assert kit.store.applied_all() == {("w", "db"): before}
    assert kit.store.get_run(run_id).status is RunStatus.ROLLED_BACK
    (event,) = kit.events(run_id, "rolled_back")
    assert event.data["tasks"]["cache"] == "rolled_back"
    assert [(a.task, a.status) for a in kit.store.attempts(run_id) if a.phase == "rollback"] == [
        ("app", "succeeded"),
        ("db", "succeeded"),
    ]


def test_a_failing_rollback_goes_on_and_ends_the_run_rollback_failed(kit: Kit) -> None:
    """A failed rollback alerts, older successes still roll back, the run ends rollback_failed."""
    ctx = _failed_run(kit)
    run_id = ctx.run.id
    kit.saga.after_failure(ctx)
    broken = Outcome(OutcomeStatus.FAILED, exit_code=2, output_tail="undeploy: no such app")
    _finish(kit, ctx, kit.started[0], broken)
    rt = kit.store.get_run_task(run_id, "app")
    assert (rt.status, rt.error) == (TaskStatus.ROLLBACK_FAILED, "exit code 2")
    (alert,) = kit.events(run_id, "task_rollback_failed")
    assert alert.task == "app"
    assert alert.data == {"error": "exit code 2", "output_tail": "undeploy: no such app"}
    assert [a.task for a in kit.started] == ["app", "db"]
    _finish(kit, ctx, kit.started[1], OK)
    assert kit.statuses(run_id)["db"] is TaskStatus.ROLLED_BACK
    assert kit.store.get_run(run_id).status is RunStatus.ROLLBACK_FAILED
    assert len(kit.events(run_id, "rollback_failed")) == 1


def test_a_prune_that_rolls_back_is_announced_as_pruned(kit: Kit) -> None:
    """Removing tasks on purpose ends rolled_back with a pruned event, not a failure alert."""
    ctx = _failed_run(kit, trigger="prune")
    run_id = ctx.run.id
    kit.saga.after_failure(ctx)
    _finish(kit, ctx, kit.started[0], OK)
    _finish(kit, ctx, kit.started[1], OK)
    assert kit.store.get_run(run_id).status is RunStatus.ROLLED_BACK
    assert len(kit.events(run_id, "pruned")) == 1
    assert kit.events(run_id, "rolled_back") == []


def test_no_rollback_starts_while_an_attempt_runs_or_the_agent_stops(kit: Kit) -> None:
    """The next rollback waits for attempts in flight and is not started during shutdown."""
    ctx = _failed_run(kit)
    ctx.rollback_queue = kit.saga.rollback_order(ctx.run.id, resume=False)
    ctx.running.add("smoke")
    assert not kit.saga.step(ctx)
    ctx.running.clear()
    kit.stopping = True
    assert not kit.saga.step(ctx)
    assert kit.started == []
    assert kit.statuses(ctx.run.id)["app"] is TaskStatus.SUCCEEDED


def test_a_non_idempotent_rollback_cut_short_at_shutdown_is_held(kit: Kit) -> None:
    """A non-idempotent rollback cut short by a shutdown is held; the run waits for a decision."""
    wf = load(
        """\
name: w
tasks:
  - {id: charge, idempotent: false, run: charge, rollback: refund}
  - {id: check, needs: [charge], run: check}
"""
    )
    run_id = kit.create(wf)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.succeeded(run_id, "charge", 1)
    ctx = kit.context(run_id)
    kit.begin(ctx, "check")
    kit.ledger.task_failed(ctx, "check", "exit code 1")
    ctx.running.clear()
    kit.saga.after_failure(ctx)
    (attempt,) = kit.started
    kit.stopping = True
    ctx.running.discard("charge")
    kit.saga.record(ctx, attempt, CUT, None)
    assert kit.store.get_attempt(attempt.attempt_id).status == "interrupted"
    assert kit.statuses(run_id)["charge"] is TaskStatus.INTERRUPTED
    hold = kit.store.holds_all()[("w", "charge")]
    assert (hold.phase, hold.run_id) == ("rollback", run_id)
    assert kit.store.get_run(run_id).status is RunStatus.WAITING_DECISION
    assert ctx.run.status is RunStatus.WAITING_DECISION
    assert ctx.paused
    assert len(kit.events(run_id, "waiting_decision")) == 1


def test_an_idempotent_rollback_cut_short_at_shutdown_resumes_later(kit: Kit) -> None:
    """An idempotent rollback cut short by a shutdown stays to do, the run still rolling back."""
    ctx = _failed_run(kit)
    run_id = ctx.run.id
    kit.saga.after_failure(ctx)
    kit.stopping = True
    ctx.running.discard("app")
    kit.saga.record(ctx, kit.started[0], CUT, None)
    assert kit.store.get_attempt(kit.started[0].attempt_id).status == "interrupted"
    assert kit.statuses(run_id)["app"] is TaskStatus.ROLLING_BACK
    assert kit.store.get_run(run_id).status is RunStatus.ROLLING_BACK
    assert kit.store.holds_all() == {}
    assert kit.saga.rollback_order(run_id, resume=True)[0] == "app"


def test_a_decision_made_meanwhile_is_kept_when_the_rest_is_cancelled(kit: Kit) -> None:
    """A task an operator skipped after the run was loaded stays skipped, not cancelled."""
    ctx = _failed_run(kit, "stop")
    Decisions(kit.store).skip(ctx.run.id, "docs", "olga")
    kit.saga.after_failure(ctx)
    statuses = kit.statuses(ctx.run.id)
    assert statuses["docs"] is TaskStatus.SKIPPED
    assert statuses["announce"] is TaskStatus.CANCELLED
