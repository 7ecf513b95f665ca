"""OutcomeRecorder: what an attempt's outcome does to its run (applied, retried, failed for
good, or cut short by a shutdown)."""

from __future__ import annotations

import json
import time
from typing import Any

from podium import secrets
from podium.engine.outcomes import OutcomeRecorder
from podium.planner import Applied, Failure
from podium.runners.base import Outcome, OutcomeStatus
from podium.states import RunStatus, TaskStatus
from tests.enginekit import Kit, kit_fixture, load  # noqa: F401 - the kit fixture

WF = load(
    """\
name: w
tasks:
  - {id: build, run: make, rollback: make clean}
  - {id: test, needs: [build], run: make test}
  - {id: flaky, run: flaky, retries: {count: 2, delay: 10s, backoff: 3, jitter: 0}}
  - {id: slow, run: slow, timeout: 30s}
  - {id: charge, idempotent: false, run: charge}
"""
)
OK = Outcome(OutcomeStatus.SUCCEEDED, exit_code=0, duration=2.0)
CUT = Outcome(OutcomeStatus.CANCELLED, error="cancelled")


def _recorder(kit: Kit) -> OutcomeRecorder:
    return OutcomeRecorder(kit.store, kit.ledger, kit.saga, lambda: kit.stopping)


def test_a_success_is_applied_and_releases_its_dependants(kit: Kit) -> None:
    """A success is applied with its rollback, numbered, releases dependants and reaches hooks."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    heard: list[tuple[str, dict[str, Any]]] = []
    kit.ledger.hooks.append(lambda name, data: heard.append((name, data)))
    attempt = kit.begin(ctx, "build")
    _recorder(kit).record(ctx, attempt, OK)
    assert "build" not in ctx.running
    assert kit.store.get_attempt(attempt.attempt_id).status == "succeeded"
    rt = kit.store.get_run_task(run_id, "build")
    assert (rt.status, rt.completed_seq) == (TaskStatus.SUCCEEDED, 1)
    applied = kit.store.applied_rows("w")["build"]
    assert applied["fingerprint"] == ctx.fingerprints["build"]
    assert (applied["spec_hash"], applied["inputs_hash"]) == ctx.hashes["build"]
    assert (applied["revision"], applied["run_id"]) == (WF.revision, run_id)
    assert json.loads(applied["rollback"]) == ["run", "make clean"]
    assert "test" in ctx.ready
    assert [(name, data["task"], data["status"]) for name, data in heard] == [
        ("task_succeeded", "build", "succeeded")
    ]


def test_successes_are_numbered_in_the_order_they_complete(kit: Kit) -> None:
    """Completion numbers follow the order outcomes arrive in (the rollback order)."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    recorder = _recorder(kit)
    slow, build = kit.begin(ctx, "slow"), kit.begin(ctx, "build")
    recorder.record(ctx, build, OK)
    recorder.record(ctx, slow, OK)
    tasks = kit.store.run_tasks(run_id)
    assert (tasks["build"].completed_seq, tasks["slow"].completed_seq) == (1, 2)


def test_a_failure_with_retries_left_is_retried_after_its_backoff(kit: Kit) -> None:
    """A failure with retries left is pending again after delay, then delay times backoff."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    recorder = _recorder(kit)
    waits = []
    for _ in range(2):
        attempt = kit.begin(ctx, "flaky")
        before = time.time()
        recorder.record(ctx, attempt, Outcome(OutcomeStatus.FAILED, exit_code=1))
        after = time.time()
        rt = kit.store.get_run_task(run_id, "flaky")
        assert rt.status is TaskStatus.PENDING and rt.error == "exit code 1"
        assert rt.not_before is not None
        waits.append((rt.not_before - after, rt.not_before - before))
        assert [name for _at, name in ctx.delayed] == ["flaky"]
        assert "flaky" not in ctx.ready
        ctx.delayed.clear()
    (low1, high1), (low2, high2) = waits
    assert low1 <= 10 <= high1
    assert low2 <= 30 <= high2
    assert ctx.failures == {"flaky": 2}
    assert [a.status for a in kit.store.attempts(run_id, "flaky")] == ["failed", "failed"]
    assert kit.store.failures_all() == {}
    assert not ctx.failed


def test_a_final_failure_is_recorded_with_its_fingerprint(kit: Kit) -> None:
    """The last allowed failure fails the task, records its fingerprint and alerts with details."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    recorder = _recorder(kit)
    failed = Outcome(OutcomeStatus.FAILED, exit_code=3, output_tail="boom")
    for _ in range(3):
        recorder.record(ctx, kit.begin(ctx, "flaky"), failed)
        ctx.delayed.clear()
    rt = kit.store.get_run_task(run_id, "flaky")
    assert (rt.status, rt.error) == (TaskStatus.FAILED, "exit code 3")
    assert kit.store.failures_all() == {("w", "flaky"): Failure(ctx.fingerprints["flaky"], run_id)}
    (event,) = kit.events(run_id, "task_failed")
    assert event.data["exit_code"] == 3
    assert event.data["attempts"] == 3
    assert event.data["output_tail"] == "boom"
    assert ctx.failed
    assert len(kit.store.attempts(run_id, "flaky")) == 3


def test_a_timeout_is_recorded_as_timed_out(kit: Kit) -> None:
    """A timed-out attempt without retries ends the task timed_out, saying after how long."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    attempt = kit.begin(ctx, "slow")
    _recorder(kit).record(ctx, attempt, Outcome(OutcomeStatus.TIMED_OUT))
    rt = kit.store.get_run_task(run_id, "slow")
    assert (rt.status, rt.error) == (TaskStatus.TIMED_OUT, "timed out after 30.0s")
    assert kit.store.get_attempt(attempt.attempt_id).status == "timed_out"


def test_a_secret_in_the_output_is_not_stored(kit: Kit) -> None:
    """The output tail kept with the attempt has secret values redacted."""
    value = "hunter2-outcome-recorder-secret"
    secrets.register(value)
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    attempt = kit.begin(ctx, "build")
    _recorder(kit).record(
        ctx, attempt, Outcome(OutcomeStatus.SUCCEEDED, exit_code=0, output_tail=f"token {value}")
    )
    tail = kit.store.get_attempt(attempt.attempt_id).output_tail
    assert tail is not None and value not in tail and tail.startswith("token ")


def test_a_cancellation_outside_a_shutdown_is_a_failure(kit: Kit) -> None:
    """An attempt cancelled while the agent is not stopping counts as failed."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    _recorder(kit).record(ctx, kit.begin(ctx, "charge"), CUT)
    assert kit.statuses(run_id)["charge"] is TaskStatus.FAILED
    assert kit.store.holds_all() == {}


def test_a_shutdown_sends_an_idempotent_task_back_to_pending(kit: Kit) -> None:
    """Cut short by a shutdown, an idempotent task is pending again, its attempt interrupted."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    attempt = kit.begin(ctx, "build")
    kit.stopping = True
    _recorder(kit).record(ctx, attempt, CUT)
    stored = kit.store.get_attempt(attempt.attempt_id)
    assert (stored.status, stored.error) == ("interrupted", "cancelled: the agent is shutting down")
    assert kit.statuses(run_id)["build"] is TaskStatus.PENDING
    assert ctx.status["build"] is TaskStatus.PENDING
    assert kit.store.failures_all() == {} and kit.store.holds_all() == {}
    assert not ctx.failed


def test_a_shutdown_holds_a_non_idempotent_task(kit: Kit) -> None:
    """Cut short by a shutdown, a non-idempotent task is interrupted, held and announced."""
    run_id = kit.create(WF)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    ctx = kit.context(run_id)
    attempt = kit.begin(ctx, "charge")
    kit.stopping = True
    _recorder(kit).record(ctx, attempt, CUT)
    assert kit.store.get_attempt(attempt.attempt_id).status == "interrupted"
    assert kit.statuses(run_id)["charge"] is TaskStatus.INTERRUPTED
    assert ctx.status["charge"] is TaskStatus.INTERRUPTED
    hold = kit.store.holds_all()[("w", "charge")]
    assert (hold.fingerprint, hold.phase) == (ctx.fingerprints["charge"], "run")
    assert "shut down" in hold.reason
    (event,) = kit.events(run_id, "waiting_decision")
    assert event.data["attempt"] == 1


def test_a_rollback_outcome_goes_to_the_saga(kit: Kit) -> None:
    """The outcome of a rollback attempt rolls the task back (its applied row goes)."""
    run_id = kit.create(WF)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.succeeded(run_id, "build", 1)
    kit.store.set_task_status(run_id, "build", TaskStatus.ROLLING_BACK)
    kit.store.set_run_status(run_id, RunStatus.ROLLING_BACK)
    ctx = kit.context(run_id)
    assert ctx.rollback_queue == ["build"]
    kit.start_rollback(ctx, "build")
    _recorder(kit).record(ctx, kit.started[0], OK)
    assert "build" not in ctx.running
    assert kit.statuses(run_id)["build"] is TaskStatus.ROLLED_BACK
    assert kit.store.applied_all() == {}
    assert ctx.rollback_queue == []


def test_applied_is_what_the_run_was_made_for(kit: Kit) -> None:
    """The applied record is the run's own fingerprint and revision, whatever was applied before."""
    run_id = kit.create(WF)
    ctx = kit.context(run_id)
    kit.store.set_applied("w", "build", Applied("other", "s", "i", "rev-other", 1.0), None)
    _recorder(kit).record(ctx, kit.begin(ctx, "build"), OK)
    applied = kit.store.applied_all()[("w", "build")]
    assert (applied.fingerprint, applied.revision) == (ctx.fingerprints["build"], WF.revision)
