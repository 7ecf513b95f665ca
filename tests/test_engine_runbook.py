"""RunBook: the views of active runs, reloaded only when the store says something changed."""

from __future__ import annotations

import time

from podium.decisions import Decisions
from podium.gates import Gate
from podium.states import RunStatus, TaskStatus
from tests.enginekit import Kit, kit_fixture, load  # noqa: F401 - the kit fixture

TWO = load(
    """\
name: w
tasks:
  - {id: build, run: make}
  - {id: test, needs: [build], run: make test}
"""
)
GATED = load(
    """\
name: g
tasks:
  - id: deploy
    run: make deploy
    approval: {approvers: [alice@example.com]}
"""
)


def _wait_for_approval(kit: Kit, run_id: int) -> None:
    """Move a run of GATED to waiting on its request (as the engine leaves it)."""
    rt = kit.store.get_run_task(run_id, "deploy")
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.store.set_task_status(run_id, "deploy", TaskStatus.WAITING_APPROVAL)
    kit.store.create_approval(
        run_id, "deploy", rt.fingerprint, GATED.revision, ["alice@example.com"], None, "reject"
    )
    kit.store.set_run_status(run_id, RunStatus.WAITING_APPROVAL)


def test_a_new_run_is_tracked_with_its_ready_tasks(kit: Kit) -> None:
    """A run created in the store gets a view: tasks without needs ready, the rest counted."""
    run_id = kit.create(TWO)
    found = kit.book.refresh()
    assert not found.ended and not found.unreadable
    ctx = kit.book.contexts[run_id]
    assert list(ctx.ready) == ["build"]
    assert ctx.unmet == {"build": 0, "test": 1}
    assert ctx.dependants == {"build": ["test"], "test": []}
    assert ctx.log_dir == str(kit.data_dir / "logs" / f"run-{run_id}")


def test_nothing_is_reloaded_while_nothing_changed(kit: Kit) -> None:
    """Without a run status change or a decision the view stays, even if a task row changed."""
    run_id = kit.create(TWO)
    kit.book.refresh()
    ctx = kit.book.contexts[run_id]
    kit.store.set_task_status(run_id, "build", TaskStatus.RUNNING)
    kit.book.refresh()
    assert kit.book.contexts[run_id] is ctx
    assert ctx.status["build"] is TaskStatus.PENDING


def test_a_run_status_changed_elsewhere_reloads_its_view(kit: Kit) -> None:
    """A status written by someone else makes the next refresh read the run again."""
    run_id = kit.create(TWO)
    kit.book.refresh()
    old = kit.book.contexts[run_id]
    kit.store.set_task_status(run_id, "build", TaskStatus.SKIPPED)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.book.refresh()
    fresh = kit.book.contexts[run_id]
    assert fresh is not old
    assert fresh.run.status is RunStatus.RUNNING
    assert fresh.status["build"] is TaskStatus.SKIPPED
    assert list(fresh.ready) == ["test"]


def test_a_decision_reloads_waiting_runs_only(kit: Kit) -> None:
    """An approval recorded elsewhere reloads a run waiting for it; a running run is kept."""
    waiting = kit.create(GATED)
    _wait_for_approval(kit, waiting)
    running = kit.create(TWO)
    kit.store.set_run_status(running, RunStatus.RUNNING)
    kit.book.refresh()
    before = dict(kit.book.contexts)
    Decisions(kit.store).decide(waiting, "deploy", "alice@example.com", approve=True)
    kit.book.refresh()
    assert kit.book.contexts[waiting] is not before[waiting]
    assert kit.book.contexts[running] is before[running]
    again = kit.book.contexts[waiting]
    kit.book.refresh()  # the same decision is not taken twice
    assert kit.book.contexts[waiting] is again


def test_a_decision_leaves_the_view_of_a_run_with_an_attempt_in_flight(kit: Kit) -> None:
    """A decision does not replace the view of a waiting run an attempt still reports to."""
    run_id = kit.create(GATED)
    _wait_for_approval(kit, run_id)
    kit.book.refresh()
    ctx = kit.book.contexts[run_id]
    ctx.running.add("deploy")
    Decisions(kit.store).decide(run_id, "deploy", "alice@example.com", approve=True)
    kit.book.refresh()
    assert kit.book.contexts[run_id] is ctx


def test_a_reloaded_view_keeps_the_attempts_still_in_flight(kit: Kit) -> None:
    """Attempts in flight when a run is read again still report to its new view."""
    run_id = kit.create(TWO)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.book.refresh()
    kit.book.contexts[run_id].running.add("build")
    kit.store.set_run_status(run_id, RunStatus.WAITING_DECISION)
    kit.book.refresh()
    fresh = kit.book.contexts[run_id]
    assert fresh.run.status is RunStatus.WAITING_DECISION
    assert fresh.running == {"build"}


def test_a_run_that_ended_elsewhere_is_reported_once_nothing_runs(kit: Kit) -> None:
    """A run ended elsewhere is reported once with its final record, after its attempts report."""
    run_id = kit.create(TWO)
    kit.book.refresh()
    kit.book.contexts[run_id].running.add("build")
    kit.store.set_run_status(run_id, RunStatus.CANCELLED)
    assert kit.book.refresh().ended == []
    assert run_id in kit.book.contexts
    kit.book.contexts[run_id].running.clear()
    (ended,) = kit.book.refresh().ended
    assert ended.run.id == run_id and ended.run.status is RunStatus.CANCELLED
    assert run_id not in kit.book.contexts
    assert kit.book.refresh().ended == []


def test_an_unreadable_run_is_reported_and_the_others_still_load(kit: Kit) -> None:
    """An unreadable run is reported, the others still load, and a run set aside is not read."""
    bad = kit.create(TWO)
    good = kit.create(GATED)
    kit.damage(bad)
    found = kit.book.refresh()
    ((run_id, workflow, exc),) = found.unreadable
    assert (run_id, workflow) == (bad, "w")
    assert isinstance(exc, Exception)
    assert set(kit.book.contexts) == {good}
    assert kit.book.refresh(skip={bad}).unreadable == []


def test_a_resumed_run_is_rebuilt_from_the_store(kit: Kit) -> None:
    """A resumed run reads back completions, failure counts, retries in backoff and due ones."""
    wf = load(
        """\
name: w
on_failure: continue
tasks:
  - {id: a, run: a}
  - {id: later, needs: [a], run: b}
  - {id: due, needs: [a], run: c}
  - {id: flaky, run: d}
"""
    )
    run_id = kit.create(wf)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.succeeded(run_id, "a", seq=1)
    now = time.time()
    kit.store.set_task_status(run_id, "later", TaskStatus.PENDING, not_before=now + 3600)
    kit.store.set_task_status(run_id, "due", TaskStatus.PENDING, not_before=now - 1)
    for number in (1, 2):
        attempt = kit.store.start_attempt(run_id, "flaky", "run", "log", number)
        kit.store.finish_attempt(attempt.id, "failed", exit_code=1)
    kit.store.set_task_status(run_id, "flaky", TaskStatus.FAILED, attempts=2)
    ctx = kit.context(run_id)
    assert list(ctx.ready) == ["due"]
    assert [name for _at, name in ctx.delayed] == ["later"]
    assert ctx.failures == {"flaky": 2}
    assert ctx.attempts == {"a": 1, "flaky": 2}
    assert ctx.completed == 1
    assert ctx.failed


def test_a_run_rolling_back_resumes_its_rollback_newest_first(kit: Kit) -> None:
    """A run rolling back resumes with what is left to roll back, newest first."""
    run_id = kit.create(TWO)
    kit.store.set_run_status(run_id, RunStatus.RUNNING)
    kit.succeeded(run_id, "build", seq=1)
    kit.succeeded(run_id, "test", seq=2)
    kit.store.set_task_status(run_id, "test", TaskStatus.ROLLING_BACK)
    kit.store.set_run_status(run_id, RunStatus.ROLLING_BACK)
    assert kit.context(run_id).rollback_queue == ["test", "build"]


def test_a_run_held_on_a_rollback_is_paused_and_one_held_on_a_task_is_not(kit: Kit) -> None:
    """A run held on a rollback step is paused; one held on a forward step is not."""
    paused: dict[str, bool] = {}
    for phase in ("rollback", "run"):
        run_id = kit.create(TWO)
        kit.store.set_run_status(run_id, RunStatus.RUNNING)
        kit.store.set_task_status(run_id, "build", TaskStatus.RUNNING)
        kit.store.set_task_status(run_id, "build", TaskStatus.INTERRUPTED)
        rt = kit.store.get_run_task(run_id, "build")
        kit.store.set_hold("w", "build", rt.fingerprint, phase, run_id, None, "interrupted")
        kit.store.set_run_status(run_id, RunStatus.WAITING_DECISION)
        paused[phase] = kit.context(run_id).paused
        kit.store.clear_hold("w", "build")
    assert paused == {"rollback": True, "run": False}


def test_the_gates_frozen_in_the_run_are_the_ones_it_uses(kit: Kit) -> None:
    """A run's approval rules come from its stored definition, not from its workflow."""
    frozen = Gate(approvers=("carol@example.com",), forbid_self_approval=True)
    run_id = kit.create(GATED, gates={"deploy": frozen})
    assert kit.context(run_id).gate("deploy") == frozen


def test_forget_idle_keeps_only_runs_with_attempts_in_flight(kit: Kit) -> None:
    """Forgetting idle views drops those with nothing in flight; the next refresh reads them."""
    idle = kit.create(TWO)
    busy = kit.create(TWO)
    kit.book.refresh()
    kit.book.contexts[busy].running.add("build")
    kept = kit.book.contexts[busy]
    kit.book.forget_idle()
    assert set(kit.book.contexts) == {busy}
    kit.book.refresh()
    assert set(kit.book.contexts) == {idle, busy}
    assert kit.book.contexts[busy] is kept
