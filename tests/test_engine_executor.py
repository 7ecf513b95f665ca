"""The engine drives runs through any Executor: here one that runs nothing and reports what a
script says, including reports that come twice, late, or only after a cancellation."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from podium.cli.workspace import Workspace, open_workspace
from podium.executor.base import AttemptOrder
from podium.runners.base import Outcome
from podium.states import RunStatus
from podium.store import Store
from tests.executors import OK, ScriptedExecutor, fail
from tests.gitrepo import GitRepo, workflow

WF = "workflows/w.yaml"
DAG = """\
  - {id: build, run: make build, env: {TOKEN: {secret: DEPLOY_TOKEN}}}
  - {id: test, needs: [build], run: make test, rollback: make untest}
  - {id: deploy, needs: [test], run: make deploy, rollback: make undeploy}
"""


def _workspace(repo: GitRepo, data_dir: Path, executor: ScriptedExecutor) -> Workspace:
    ws = open_workspace(repo.url, None, "", None, str(data_dir), executor=executor)
    ws.acquire()
    return ws


def _attempts(store: Store, run_id: int) -> list[tuple[str, str, int, str]]:
    return [(a.task, a.phase, a.number, a.status) for a in store.attempts(run_id)]


def test_orders_carry_what_a_remote_worker_needs_and_no_secret_values(
    repo: GitRepo, data_dir: Path
) -> None:
    """Each order names its secrets instead of carrying them; the run succeeds in DAG order."""
    repo.commit({WF: workflow("w", DAG)})
    executor = ScriptedExecutor()
    ws = _workspace(repo, data_dir, executor)
    try:
        result = ws.reconciler.reconcile_once()
        (run_id,) = result.started
        assert ws.store.get_run(run_id).status is RunStatus.SUCCEEDED
        assert [o.task for o in executor.orders] == ["build", "test", "deploy"]
        build = executor.orders[0]
        assert build.secrets == {"TOKEN": "DEPLOY_TOKEN"} and "TOKEN" not in build.env
        assert build.kind == "run" and build.config == "make build" and build.phase == "run"
        assert build.revision == ws.store.get_run(run_id).revision
        assert build.env["PODIUM_ATTEMPT_ID"] == str(build.attempt_id)
        assert Path(build.cwd) == data_dir / "checkouts" / f"run-{run_id}"  # removed since
        assert build.log_path.endswith("build.run.1.log")
        assert {t for (_w, t) in ws.store.applied_all()} == {"build", "test", "deploy"}
    finally:
        ws.close()
    assert executor.closed


def test_a_failure_rolls_back_through_the_executor_newest_first(
    repo: GitRepo, data_dir: Path
) -> None:
    """A final failure sends rollback orders for the run's successes, newest first."""
    repo.commit({WF: workflow("w", DAG.replace("make deploy", "make deploy-broken"))})

    def script(order: AttemptOrder) -> Outcome:
        return fail(2) if order.config == "make deploy-broken" else OK

    executor = ScriptedExecutor(script)
    ws = _workspace(repo, data_dir, executor)
    try:
        (run_id,) = ws.reconciler.reconcile_once().started
        assert ws.store.get_run(run_id).status is RunStatus.ROLLED_BACK
        rollbacks = [(o.task, o.kind, o.config) for o in executor.orders if o.phase == "rollback"]
        assert rollbacks == [("test", "run", "make untest")]  # build has no rollback
        assert ("deploy", "run", 1, "failed") in _attempts(ws.store, run_id)
    finally:
        ws.close()


def test_an_outcome_reported_twice_or_late_is_recorded_once(repo: GitRepo, data_dir: Path) -> None:
    """At-least-once delivery: a second report of an attempt, or one of an unknown attempt,
    changes nothing."""
    repo.commit({WF: workflow("w", DAG)})

    def script(order: AttemptOrder) -> Outcome:
        if order.task == "test":
            executor.report(999_999, fail())  # an attempt nobody waits for
        return OK

    executor = ScriptedExecutor(script, twice=True)
    ws = _workspace(repo, data_dir, executor)
    try:
        with capture_logs() as logs:
            (run_id,) = ws.reconciler.reconcile_once().started
        assert ws.store.get_run(run_id).status is RunStatus.SUCCEEDED
        assert [(t, n, s) for t, _p, n, s in _attempts(ws.store, run_id)] == [
            ("build", 1, "succeeded"),
            ("test", 1, "succeeded"),
            ("deploy", 1, "succeeded"),
        ]
        ignored = [e for e in logs if e["event"] == "attempt_report_ignored"]
        assert len(ignored) >= 3 and any(e["attempt_id"] == 999_999 for e in ignored)
    finally:
        ws.close()


def test_a_retry_is_a_new_order_with_the_next_attempt_number(repo: GitRepo, data_dir: Path) -> None:
    """A failed attempt with retries left is ordered again as attempt 2."""
    repo.commit({WF: workflow("w", "  - {id: flaky, run: x, retries: {count: 1, delay: 0s}}\n")})
    seen: list[int] = []

    def script(order: AttemptOrder) -> Outcome:
        seen.append(order.number)
        return fail() if order.number == 1 else OK

    ws = _workspace(repo, data_dir, ScriptedExecutor(script))
    try:
        (run_id,) = ws.reconciler.reconcile_once().started
        assert seen == [1, 2]
        assert _attempts(ws.store, run_id) == [
            ("flaky", "run", 1, "failed"),
            ("flaky", "run", 2, "succeeded"),
        ]
    finally:
        ws.close()


def test_a_stop_cancels_what_never_reports_and_resumes_it_later(
    repo: GitRepo, data_dir: Path
) -> None:
    """An attempt that never reports is cancelled at shutdown, recorded as interrupted, and
    an idempotent task runs again at the next start."""
    repo.commit({WF: workflow("w", "  - {id: slow, run: sleep 1000}\n")})
    executor = ScriptedExecutor(lambda _order: None)  # holds every attempt
    ws = _workspace(repo, data_dir, executor)
    ws.engine.config.shutdown_grace = 0.0
    try:
        (run_id,) = ws.reconciler.reconcile_once(drive=False).started
        ws.engine.drive(wait=False)
        assert list(executor.held) and not executor.cancelled
        ws.engine.stop()
        ws.engine.drive()
        assert executor.cancelled == [executor.orders[0].attempt_id]
        assert _attempts(ws.store, run_id) == [("slow", "run", 1, "interrupted")]
        assert str(ws.store.get_run_task(run_id, "slow").status) == "pending"
    finally:
        ws.close()
    again = ScriptedExecutor()
    ws = _workspace(repo, data_dir, again)
    try:
        ws.engine.drive()
        assert [o.number for o in again.orders] == [2]
        assert ws.store.get_run(run_id).status is RunStatus.SUCCEEDED
    finally:
        ws.close()
