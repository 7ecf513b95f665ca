"""The run engine through its Python API (open_workspace, Reconciler, Engine): real git, SQLite."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.cli.workspace import open_workspace
from podium.decisions import Decisions
from podium.errors import DecisionError
from podium.reconciler import PassResult
from podium.states import RunStatus, TaskStatus
from podium.store import Store, open_store
from tests.gitrepo import (  # noqa: F401  (the fixtures)
    GitRepo,
    data_dir_fixture,
    reconcile,
    repo_fixture,
    workflow,
)

WF = "workflows/w.yaml"


def plan_of(repo: GitRepo, data_dir: Path) -> object:
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    try:
        rev = ws.reconciler.fetch().revision
        assert rev is not None
        return ws.reconciler.plan(rev)[1]
    finally:
        ws.close()


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    """The state store the workspace uses, opened by the test for reading."""
    s = open_store(data_dir / "state.db")
    yield s
    s.close()


def only_run(result: PassResult) -> int:
    assert len(result.started) == 1, result
    return result.started[0]


def statuses(store: Store, run_id: int) -> dict[str, str]:
    return {n: str(t.status) for n, t in store.run_tasks(run_id).items()}


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


# -- desired vs executed ---------------------------------------------------------------


def test_changed_task_runs_with_its_dependants_and_a_revert_runs_them_again(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """Changing one task runs exactly it and its dependants; reverting the commit reruns them."""
    tasks = """\
  - {id: a, run: echo a-v1}
  - {id: b, needs: [a], run: echo b}
  - {id: c, run: echo c}
  - {id: d, needs: [c], run: echo d}
"""
    repo.commit({WF: workflow("w", tasks)})
    first = only_run(reconcile(repo, data_dir))
    assert store.get_run(first).status is RunStatus.SUCCEEDED
    assert set(store.run_tasks(first)) == {"a", "b", "c", "d"}

    change = repo.commit({WF: workflow("w", tasks.replace("a-v1", "a-v2"))})
    second = only_run(reconcile(repo, data_dir))
    assert store.get_run(second).status is RunStatus.SUCCEEDED
    rts = store.run_tasks(second)
    assert {n: t.reason for n, t in rts.items()} == {"a": "changed", "b": "upstream changed"}
    assert sorted((a.task, a.number, a.status) for a in store.attempts(second)) == [
        ("a", 1, "succeeded"),
        ("b", 1, "succeeded"),
    ]

    repo.revert(change)
    third = only_run(reconcile(repo, data_dir))
    assert store.get_run(third).status is RunStatus.SUCCEEDED
    assert set(store.run_tasks(third)) == {"a", "b"}
    assert [a.task for a in store.attempts(third)] == ["a", "b"]
    assert reconcile(repo, data_dir).started == []


def test_failure_rolls_back_successes_in_reverse_completion_order(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """A final failure rolls back the run's successes newest-first and restores applied state."""
    log = tmp_path / "rollbacks.log"
    tasks = f"""\
  - id: slow
    run: sleep 0.4; echo {{v}}
    rollback: echo slow >> {log}
  - id: fast
    run: echo fast {{v}}
    rollback: echo fast >> {log}
  - id: boom
    needs: [slow, fast]
    run: {{boom}}
"""
    repo.commit({WF: workflow("w", tasks.format(v="v1", boom="echo ok"))})
    only_run(reconcile(repo, data_dir))
    applied_before = store.applied_all()
    assert len(applied_before) == 3

    repo.commit({WF: workflow("w", tasks.format(v="v2", boom="exit 3"))})
    run_id = only_run(reconcile(repo, data_dir))
    run = store.get_run(run_id)
    assert run.status is RunStatus.ROLLED_BACK
    assert lines(log) == ["slow", "fast"]  # fast completed first, so it is undone last
    assert statuses(store, run_id) == {
        "slow": "rolled_back",
        "fast": "rolled_back",
        "boom": "failed",
    }
    rollback_attempts = [a for a in store.attempts(run_id) if a.phase == "rollback"]
    assert [(a.task, a.status) for a in rollback_attempts] == [
        ("slow", "succeeded"),
        ("fast", "succeeded"),
    ]
    assert store.applied_all() == applied_before

    the_plan = plan_of(repo, data_dir)
    wp = the_plan.workflow("w")  # type: ignore[attr-defined]
    assert {t.id for t in wp.outstanding} == {"slow", "fast", "boom"}
    assert wp.blocked_task == "boom" and not wp.startable
    assert reconcile(repo, data_dir).started == []

    Decisions(store).retry(run_id, by="ops")
    again = only_run(reconcile(repo, data_dir))
    assert store.get_run(again).status is RunStatus.ROLLED_BACK
    assert lines(log) == ["slow", "fast", "slow", "fast"]

    repo.commit({WF: workflow("w", tasks.format(v="v2", boom="echo ok"))})
    fixed = only_run(reconcile(repo, data_dir))
    assert store.get_run(fixed).status is RunStatus.SUCCEEDED
    assert set(store.run_tasks(fixed)) == {"slow", "fast", "boom"}


def test_first_run_rollback_forgets_applied_state(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """Rolling back a workflow's first run leaves nothing applied: its tasks are new again."""
    repo.commit(
        {
            WF: workflow(
                "w",
                "  - {id: one, run: 'true'}\n  - {id: two, needs: [one], run: 'exit 1'}\n",
            )
        }
    )
    run_id = only_run(reconcile(repo, data_dir))
    assert store.get_run(run_id).status is RunStatus.ROLLED_BACK
    assert store.applied_all() == {}
    wp = plan_of(repo, data_dir).workflow("w")  # type: ignore[attr-defined]
    assert [(t.id, str(t.reason)) for t in wp.outstanding] == [("one", "new"), ("two", "new")]


def test_on_failure_stop_and_continue(repo: GitRepo, data_dir: Path, store: Store) -> None:
    """`stop` cancels what has not started; `continue` still runs the independent tasks."""
    tasks = """\
  - {id: bad, run: 'exit 1'}
  - {id: after, needs: [bad], run: 'true'}
  - {id: other, needs: [gate], run: 'true'}
  - {id: gate, run: 'sleep 0.3'}
"""
    repo.commit(
        {
            "workflows/stop.yaml": workflow("s", tasks, on_failure="stop", concurrency=1),
            "workflows/continue.yaml": workflow("c", tasks, on_failure="continue"),
        }
    )
    result = reconcile(repo, data_dir)
    stop_run, continue_run = sorted(
        result.started, key=lambda i: store.get_run(i).workflow, reverse=True
    )
    assert store.get_run(stop_run).status is RunStatus.FAILED
    assert statuses(store, stop_run) == {
        "bad": "failed",
        "after": "cancelled",
        "other": "cancelled",
        "gate": "cancelled",
    }
    assert store.get_run(continue_run).status is RunStatus.FAILED
    assert statuses(store, continue_run) == {
        "bad": "failed",
        "after": "skipped",
        "other": "succeeded",
        "gate": "succeeded",
    }
    assert {t for (w, t) in store.applied_all() if w == "c"} == {"other", "gate"}


# -- retries, timeouts, parallelism --------------------------------------------------------


def test_retries_with_backoff_until_success(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """A task failing twice then succeeding ends succeeded after 3 attempts, with growing delays."""
    counter = tmp_path / "counter"
    task = f"""\
  - id: flaky
    retries: {{count: 3, delay: 200ms, backoff: 2, jitter: 0}}
    run: |
      n=$(cat {counter} 2>/dev/null || echo 0)
      n=$((n + 1))
      echo $n > {counter}
      echo "attempt $n"
      [ "$n" -ge 3 ]
"""
    repo.commit({WF: workflow("w", task)})
    run_id = only_run(reconcile(repo, data_dir))
    assert store.get_run(run_id).status is RunStatus.SUCCEEDED
    rt = store.get_run_task(run_id, "flaky")
    assert rt.status is TaskStatus.SUCCEEDED and rt.attempts == 3
    attempts = store.attempts(run_id, "flaky")
    assert [(a.number, a.status) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    gaps = [b.started_at - (a.finished_at or 0.0) for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.35, gaps
    assert gaps[1] < 5, gaps
    assert attempts[0].exit_code == 1 and "attempt 1" in (attempts[0].output_tail or "")


def test_timeout_kills_the_whole_process_group(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """A timed-out task is stopped with its grandchildren; the task ends timed_out."""
    pidfile = tmp_path / "pid"
    task = f"""\
  - id: hang
    timeout: 1s
    run: sh -c 'sleep 60 & echo $! > {pidfile}; wait'
"""
    repo.commit({WF: workflow("w", task)})
    began = time.monotonic()
    run_id = only_run(reconcile(repo, data_dir))
    assert time.monotonic() - began < 15
    rt = store.get_run_task(run_id, "hang")
    assert rt.status is TaskStatus.TIMED_OUT
    assert [a.status for a in store.attempts(run_id, "hang")] == ["timed_out"]
    assert store.get_run(run_id).status in (RunStatus.ROLLED_BACK, RunStatus.FAILED)
    grandchild = int(pidfile.read_text())
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_independent_tasks_run_in_parallel(repo: GitRepo, data_dir: Path, store: Store) -> None:
    """Two independent 1-second tasks with concurrency 2 take well under 2 seconds together."""
    tasks = "  - {id: one, run: sleep 1}\n  - {id: two, run: sleep 1}\n"
    repo.commit({WF: workflow("w", tasks, concurrency=2)})
    run_id = only_run(reconcile(repo, data_dir))
    run = store.get_run(run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert run.duration is not None and 1.0 <= run.duration < 1.9, run.duration


# -- safety --------------------------------------------------------------------------------


def test_parameters_with_shell_syntax_are_never_executed(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """Parameters and env values holding $(...), ; and backticks reach the task as plain text."""
    p = f"$(touch {tmp_path}/pwned)"
    q = f"; touch {tmp_path}/pwned2"
    e = f"`touch {tmp_path}/pwned3`"
    text = workflow(
        "w",
        f"""\
  - id: show
    env: {{E: "{e}"}}
    run: echo "$P"; echo "$Q"; echo "$E"
""",
        params=f"{{P: '{p}', Q: '{q}'}}",
    )
    repo.commit({WF: text})
    run_id = only_run(reconcile(repo, data_dir))
    assert store.get_run(run_id).status is RunStatus.SUCCEEDED
    for name in ("pwned", "pwned2", "pwned3"):
        assert not (tmp_path / name).exists()
        assert not list(data_dir.rglob(name))
    (attempt,) = store.attempts(run_id, "show")
    output = Path(attempt.log_path or "").read_text()
    assert output.splitlines() == [p, q, e]


# -- shutdown, rollback failures, decisions -------------------------------------------------


def stop_once_started(repo: GitRepo, data_dir: Path, mark: Path) -> float:
    """Run a pass in a thread, stop the engine once ``mark`` exists (a task started), and
    return how long the stop took (the pass must have returned)."""
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    ws.engine.config.shutdown_grace = 0.2
    ws.engine.config.grace = 0.5
    try:
        ws.acquire()
        worker = threading.Thread(target=ws.reconciler.reconcile_once)
        worker.start()
        deadline = time.monotonic() + 10
        while not mark.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        began = time.monotonic()
        ws.engine.stop()
        worker.join(timeout=10)
        assert not worker.is_alive()
        return time.monotonic() - began
    finally:
        ws.close()


def test_graceful_stop_interrupts_a_running_task_and_the_next_pass_resumes(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """Engine.stop cancels a task still running after shutdown_grace; the next pass reruns it."""
    mark = tmp_path / "started"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - id: long
    run: |
      if [ "$PODIUM_ATTEMPT" = 1 ]; then touch {mark}; sleep 30; fi
      echo finished
""",
            )
        }
    )
    assert stop_once_started(repo, data_dir, mark) < 3
    assert str(store.get_run(1).status) == "running"
    assert store.get_run_task(1, "long").status is TaskStatus.PENDING
    (attempt,) = store.attempts(1, "long")
    assert attempt.status == "interrupted" and "shutting down" in (attempt.error or "")

    assert reconcile(repo, data_dir).started == []
    assert store.get_run(1).status is RunStatus.SUCCEEDED
    assert [(a.number, a.status) for a in store.attempts(1, "long")] == [
        (1, "interrupted"),
        (2, "succeeded"),
    ]


def test_failing_rollback_marks_the_run_rollback_failed(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """A failing rollback action leaves the run rollback_failed; the other rollbacks still run."""
    log = tmp_path / "undo"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - {{id: one, run: echo one, rollback: echo one >> {log}}}
  - {{id: two, needs: [one], run: echo two, rollback: "echo two >> {log}; exit 4"}}
  - {{id: three, needs: [two], run: exit 1}}
""",
            )
        }
    )
    run_id = only_run(reconcile(repo, data_dir))
    assert store.get_run(run_id).status is RunStatus.ROLLBACK_FAILED
    assert lines(log) == ["two", "one"]
    assert statuses(store, run_id) == {
        "one": "rolled_back",
        "two": "rollback_failed",
        "three": "failed",
    }
    assert [e.kind for e in store.events(run_id=run_id, kind="task_rollback_failed")] == [
        "task_rollback_failed"
    ]
    assert ("w", "one") not in store.applied_all()


def test_missing_secret_fails_the_task_with_a_clear_error(
    repo: GitRepo, data_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task whose secret cannot be resolved fails (no crash) and says which secret is missing."""
    monkeypatch.delenv("PODIUM_TEST_MISSING", raising=False)
    repo.commit(
        {WF: workflow("w", "  - {id: t, env: {X: {secret: PODIUM_TEST_MISSING}}, run: echo x}\n")}
    )
    run_id = only_run(reconcile(repo, data_dir))
    assert store.get_run(run_id).status is RunStatus.ROLLED_BACK
    rt = store.get_run_task(run_id, "t")
    assert rt.status is TaskStatus.FAILED
    assert "PODIUM_TEST_MISSING" in (rt.error or "")


def approval_tasks(approvers: str = "[lead@example.com]") -> str:
    return f"""\
  - id: gate
    approval: {{approvers: {approvers}}}
    run: echo gated
  - {{id: after, needs: [gate], run: echo after}}
"""


def test_skipping_a_task_waiting_for_approval_lets_the_run_continue(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """Skipping a gated task cancels its request; the run goes back to running and completes."""
    repo.commit({WF: workflow("w", approval_tasks())})
    run_id = only_run(reconcile(repo, data_dir))
    assert store.get_run(run_id).status is RunStatus.WAITING_APPROVAL
    Decisions(store).skip(run_id, "gate", by="ops")
    assert [a.status for a in store.approvals(run_id=run_id)] == ["cancelled"]

    transitions: list[str] = []
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    ws.engine.hooks.append(lambda name, data: transitions.append(str(store.get_run(run_id).status)))
    try:
        ws.acquire()
        ws.reconciler.reconcile_once()
    finally:
        ws.close()
    assert store.get_run(run_id).status is RunStatus.SUCCEEDED
    assert statuses(store, run_id) == {"gate": "skipped", "after": "succeeded"}
    assert transitions == ["running"]  # `after` ran while the run said running, not waiting


def test_four_eyes_refuses_the_author_of_the_change(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """With forbid_self_approval the commit's author cannot approve; another approver can."""
    repo.commit(
        {
            WF: workflow(
                "w",
                approval_tasks("[lead@example.com, ada@example.com]"),
                forbid_self_approval="true",
            )
        }
    )
    run_id = only_run(reconcile(repo, data_dir))
    decisions = Decisions(store)
    with pytest.raises(DecisionError, match="four-eyes"):
        decisions.decide(run_id, "gate", "ada@example.com", approve=True)
    decisions.decide(run_id, "gate", "lead@example.com", approve=True)
    assert reconcile(repo, data_dir).started == []
    assert store.get_run(run_id).status is RunStatus.SUCCEEDED
    kinds = [e.kind for e in store.events(run_id=run_id)]
    assert "decision_refused" in kinds and "approval_decided" in kinds


def test_stop_while_a_retry_is_scheduled_returns_at_once(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """Engine.stop during a retry backoff returns at once; the retry is kept for the next pass."""
    repo.commit(
        {
            WF: workflow(
                "w",
                "  - id: flaky\n    retries: {count: 1, delay: 30s}\n"
                "    run: '[ \"$PODIUM_ATTEMPT\" = 2 ]'\n",
            )
        }
    )
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    try:
        ws.acquire()
        worker = threading.Thread(target=ws.reconciler.reconcile_once)
        worker.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not [
            a for a in store.attempts(1, "flaky") if a.status == "failed"
        ]:
            time.sleep(0.02)
        began = time.monotonic()
        ws.engine.stop()
        worker.join(timeout=5)
        assert not worker.is_alive()
        assert time.monotonic() - began < 2
    finally:
        ws.close()
    rt = store.get_run_task(1, "flaky")
    assert rt.status is TaskStatus.PENDING and rt.not_before is not None
    assert rt.not_before > time.time() + 20


def test_superseded_and_finished_runs_leave_no_checkouts(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """A run superseded while waiting has its checkout removed like any finished run's."""
    tasks = "  - {id: prep, run: echo prep}\n" + approval_tasks().replace(
        "  - id: gate\n", "  - id: gate\n    needs: [prep]\n"
    )
    repo.commit({WF: workflow("w", tasks)})
    first = only_run(reconcile(repo, data_dir))
    assert store.get_run(first).status is RunStatus.WAITING_APPROVAL
    repo.commit({WF: workflow("w", tasks.replace("echo gated", "echo gated v2"))})
    result = reconcile(repo, data_dir)
    assert result.superseded == [first]
    second = only_run(result)
    assert store.get_run(first).status is RunStatus.CANCELLED
    Decisions(store).decide(second, "gate", "lead@example.com", approve=True)
    reconcile(repo, data_dir)
    assert store.get_run(second).status is RunStatus.SUCCEEDED
    checkouts = data_dir / "checkouts"
    assert not checkouts.exists() or sorted(p.name for p in checkouts.iterdir()) == []


def test_operator_decisions_while_the_run_is_running_are_honoured(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """Skipping a pending task and failing another while the run executes never crashes the pass."""
    release = tmp_path / "release"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - id: first
    run: while [ ! -f {release} ]; do sleep 0.02; done
  - {{id: skipped, needs: [first], run: echo never}}
  - {{id: after, needs: [skipped], run: echo after}}
""",
            ),
            "workflows/f.yaml": workflow(
                "f",
                f"""\
  - id: first
    run: while [ ! -f {release} ]; do sleep 0.02; done
  - {{id: failed, needs: [first], run: echo never}}
""",
                on_failure="stop",
            ),
        }
    )
    errors: list[BaseException] = []

    def pass_() -> None:
        try:
            reconcile(repo, data_dir)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=pass_)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while len(store.list_runs()) < 2 or any(
            store.get_run_task(r.id, "first").status is not TaskStatus.RUNNING
            for r in store.list_runs()
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        w_run, f_run = store.list_runs("w")[0].id, store.list_runs("f")[0].id
        Decisions(store).skip(w_run, "skipped", by="ops")
        Decisions(store).fail(f_run, "failed", by="ops")
    finally:
        release.touch()
        worker.join(timeout=10)
    assert errors == []
    assert store.get_run(w_run).status is RunStatus.SUCCEEDED
    assert statuses(store, w_run) == {
        "first": "succeeded",
        "skipped": "skipped",
        "after": "succeeded",
    }
    assert store.attempts(w_run, "skipped") == []
    assert store.get_run(f_run).status is RunStatus.FAILED
    assert statuses(store, f_run) == {"first": "succeeded", "failed": "failed"}
    assert store.attempts(f_run, "failed") == []


def test_invalid_podium_yaml_does_not_forget_applied_state(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """A broken podium.yaml hides its workflows_dir, but nothing applied is forgotten or rerun."""
    repo.commit(
        {
            "podium.yaml": "workflows_dir: pipelines\n",
            "pipelines/w.yaml": workflow("w", "  - {id: a, run: echo a}\n"),
        }
    )
    only_run(reconcile(repo, data_dir))
    applied = store.applied_all()
    repo.commit({"podium.yaml": "workflows_dir: pipelines\ncolour: blue\n"})
    broken = reconcile(repo, data_dir)
    assert broken.started == [] and broken.plan is not None
    assert [str(p) for p in broken.plan.problems] == ["podium.yaml:2: unknown key 'colour'"]
    assert store.applied_all() == applied
    repo.commit({"podium.yaml": "workflows_dir: pipelines\n"})
    assert reconcile(repo, data_dir).started == []
    assert store.applied_all() == applied


def test_tasks_running_at_a_failure_finish_and_are_rolled_back_too(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """On failure nothing new starts; a task still running finishes and is then rolled back."""
    log = tmp_path / "undo"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - {{id: slow, run: sleep 0.5, rollback: echo slow >> {log}}}
  - {{id: bad, run: exit 1}}
  - {{id: later, needs: [slow], run: echo later}}
""",
            )
        }
    )
    run_id = only_run(reconcile(repo, data_dir))
    assert store.get_run(run_id).status is RunStatus.ROLLED_BACK
    assert statuses(store, run_id) == {
        "slow": "rolled_back",
        "bad": "failed",
        "later": "cancelled",
    }
    assert store.attempts(run_id, "later") == []
    assert lines(log) == ["slow"]


def test_a_late_approval_is_refused_and_the_timeout_rejects(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """Once an approval's timeout has passed, approving is refused; the next pass rejects."""
    tasks = approval_tasks().replace(
        "approval: {approvers: [lead@example.com]}",
        "approval: {approvers: [lead@example.com], timeout: 300ms}",
    )
    repo.commit({WF: workflow("w", tasks)})
    run_id = only_run(reconcile(repo, data_dir))
    assert store.get_run(run_id).status is RunStatus.WAITING_APPROVAL
    time.sleep(0.4)
    with pytest.raises(DecisionError, match="expired"):
        Decisions(store).decide(run_id, "gate", "lead@example.com", approve=True)
    reconcile(repo, data_dir)
    assert store.get_run(run_id).status is RunStatus.ROLLED_BACK
    (request,) = store.approvals(run_id=run_id)
    assert (request.status, request.decided_by) == ("rejected", "timeout")


def test_a_lost_lease_stops_the_engine(repo: GitRepo, data_dir: Path) -> None:
    """When another agent took the lease (this one stalled past its TTL), renewal stops it."""
    repo.commit({WF: workflow("w", "  - {id: a, run: echo a}\n")})
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    try:
        ws.acquire()
        assert ws.renew() and not ws.engine.stopping
        ws.store.release_lease(ws.owner)
        assert ws.store.acquire_lease("elsewhere:1:x", 30) is None
        assert not ws.renew()
        assert ws.engine.stopping
        holder = ws.store.lease_holder()
        assert holder is not None and holder[0] == "elsewhere:1:x"
    finally:
        ws.close()


def test_stopping_during_a_rollback_resumes_it_at_the_next_start(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """A rollback cancelled by shutdown is not a failed rollback: the next pass finishes it."""
    mark, log = tmp_path / "mark", tmp_path / "undo"
    rollback = (
        f'if [ "$PODIUM_ATTEMPT" = 1 ]; then touch {mark}; sleep 30; fi; echo undone >> {log}'
    )
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - id: one
    run: echo one
    rollback: '{rollback}'
  - {{id: two, needs: [one], run: exit 1}}
""",
            )
        }
    )
    stop_once_started(repo, data_dir, mark)
    assert store.get_run(1).status is RunStatus.ROLLING_BACK
    assert store.get_run_task(1, "one").status is TaskStatus.ROLLING_BACK
    assert [(a.phase, a.status) for a in store.attempts(1, "one")] == [
        ("run", "succeeded"),
        ("rollback", "interrupted"),
    ]
    reconcile(repo, data_dir)
    assert store.get_run(1).status is RunStatus.ROLLED_BACK
    assert lines(log) == ["undone"]
    assert store.get_run_task(1, "one").status is TaskStatus.ROLLED_BACK
