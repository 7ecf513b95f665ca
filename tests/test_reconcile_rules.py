"""What a new revision may and may not do: wrong roots, empty revisions, superseding approvals."""

from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from podium.store import Store
from tests.gitrepo import GitRepo, workflow
from tests.test_cli_engine import podium, run_ids

WF = "workflows/w.yaml"


def test_a_path_that_is_not_a_podium_root_is_an_error(repo: GitRepo, store: Store) -> None:
    """A --path without podium.yaml or workflows/ is one error line, and forgets nothing."""
    repo.commit({WF: workflow("w", "  - {id: a, run: 'true'}\n"), "docs/readme.md": "hi\n"})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    for path in ("docs", "nowhere"):
        for command in ("plan", "reconcile"):
            done = podium(command, "--repo", repo.url, "--path", path)
            assert done.returncode == 1, (command, path, done.stdout)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "is not a Podium root" in lines[0], lines
            assert "Traceback" not in done.stderr
    assert set(store.applied_all()) == {("w", "a")}
    escaping = podium("plan", "--repo", repo.url, "--path", "../x")
    assert escaping.returncode == 1 and "Traceback" not in escaping.stderr


def test_an_empty_revision_is_refused_while_tasks_are_applied(repo: GitRepo, store: Store) -> None:
    """Deleting every workflow file is refused (one alert) unless allow_empty: true."""
    repo.commit({WF: workflow("w", "  - {id: a, run: 'true'}\n"), "podium.yaml": "{}\n"})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    repo.commit({WF: None})

    planned = podium("plan", "--repo", repo.url)
    assert planned.returncode == 1
    assert "would refuse this revision" in planned.stderr
    for _ in range(2):
        done = podium("reconcile", "--repo", repo.url)
        assert done.returncode == 1
        assert "refusing to forget them" in done.stderr
    assert set(store.applied_all()) == {("w", "a")}
    alerts = [e for e in store.events() if e.kind == "empty_revision_refused"]
    assert len(alerts) == 1, "one alert per revision"

    repo.commit({"podium.yaml": "allow_empty: true\n"})
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    assert store.applied_all() == {}


def test_an_approval_is_superseded_only_when_the_waiting_task_changes(
    repo: GitRepo, store: Store, tmp_path: Path
) -> None:
    """A commit touching only a later task's script keeps the approval; the change runs after."""
    out = tmp_path / "out"
    gated = f"""\
  - {{id: build, run: echo build >> {out}}}
  - id: deploy
    needs: [build]
    approval: {{approvers: [lead@example.com]}}
    run: echo deploy >> {out}
  - id: smoke
    needs: [deploy]
    inputs: [scripts/smoke.sh]
    run: sh scripts/smoke.sh {out}
"""
    repo.commit({WF: workflow("w", gated), "scripts/smoke.sh": 'echo smoke-1 >> "$1"\n'})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    (run,) = run_ids(store)
    assert str(store.get_run(run).status) == "waiting_approval"

    repo.commit({"scripts/smoke.sh": 'echo smoke-2 >> "$1"\n'})
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    assert "superseded" not in done.stdout + done.stderr
    assert str(store.get_run(run).status) == "waiting_approval"
    assert [a.status for a in store.approvals(run_id=run)] == ["pending"]

    assert podium("approve", str(run), "deploy", "--by", "lead@example.com").returncode == 0
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    assert str(store.get_run(run).status) == "succeeded"
    # the run finished as approved (the smoke test of its revision), then the new smoke test
    assert out.read_text().splitlines() == ["build", "deploy", "smoke-1", "smoke-2"]
    assert podium("plan", "--repo", repo.url).returncode == 0


def test_a_superseded_run_is_logged_as_cancelled(repo: GitRepo, data_dir: Path) -> None:
    """The engine's run_finished line says how a superseded run ended: cancelled."""
    gate = "  - {id: d, approval: {approvers: [x@example.com]}, run: echo $V, env: {V: '%s'}}\n"
    from podium.cli.workspace import open_workspace

    repo.commit({WF: workflow("w", gate % "1")})
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    try:
        ws.acquire()
        ws.reconciler.reconcile_once()  # the engine keeps run 1, waiting, in memory
        repo.commit({WF: workflow("w", gate % "2")})
        with capture_logs() as logs:
            ws.reconciler.reconcile_once()
    finally:
        ws.close()
    finished = [e for e in logs if e["event"] == "run_finished" and e["run_id"] == 1]
    assert [e["status"] for e in finished] == ["cancelled"]


def test_status_counts_what_plan_counts_and_shows_the_last_applied_revision(
    repo: GitRepo, store: Store
) -> None:
    """Outstanding in `status` equals `plan`'s; applied revision is the newest applied one."""
    tasks = "  - {id: a, run: 'true', env: {V: '%s'}}\n  - {id: b, run: 'true'}\n"
    repo.commit({WF: workflow("w", tasks % "1")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    newest = repo.commit({WF: workflow("w", tasks % "2")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    (row,) = json.loads(podium("status", "--json").stdout)
    assert row["applied_revision"] == newest, "b's older revision is not the answer"
    assert row["outstanding"] == 0 and row["ready"] == "Ready"

    repo.commit({WF: workflow("w", tasks.replace("'true'}\n", "'false'}\n", 1) % "3")})
    assert podium("reconcile", "--repo", repo.url).returncode == 1
    planned = json.loads(podium("plan", "--repo", repo.url, "--json").stdout)
    shown = podium("status", "--json")
    (row,) = json.loads(shown.stdout)
    assert row["outstanding"] == planned["outstanding"] == 2  # a rolled back, b failed
    assert (row["ready"], row["reason"]) == ("Stalled", "TaskFailed")
    assert shown.returncode == 1
