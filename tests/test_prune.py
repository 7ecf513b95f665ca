"""Tasks removed from Git: forgotten by default, rolled back first with ``prune: true``."""

from __future__ import annotations

from pathlib import Path

from podium.cli.workspace import open_workspace
from tests.gitrepo import GitRepo, workflow

TWO = """\
  - id: keep
    run: echo keep >> "$OUT"
  - id: gone
    run: echo gone >> "$OUT"
    rollback: echo "undo gone at $V" >> "$OUT"
"""
ONE = """\
  - id: keep
    run: echo keep >> "$OUT"
"""


def _pass(repo: GitRepo, data_dir: Path) -> tuple[list[str], set[tuple[str, str]]]:
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    try:
        ws.reconciler.reconcile_once()
        statuses = [f"{r.trigger}:{r.status}" for r in reversed(ws.store.list_runs("w"))]
        return statuses, set(ws.store.applied_all())
    finally:
        ws.close()


def test_prune_runs_the_rollback_of_a_removed_task(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """With prune: true, removing a task runs its rollback as defined when it was applied."""
    out = tmp_path / "out.txt"
    params = f"{{OUT: {out}, V: old}}"
    repo.commit({"workflows/w.yaml": workflow("w", TWO, params=params, prune="true")})
    _pass(repo, data_dir)
    repo.commit({"workflows/w.yaml": workflow("w", ONE, params=params, prune="true")})
    runs, applied = _pass(repo, data_dir)
    assert runs[-1] == "prune:rolled_back"
    assert applied == {("w", "keep")}
    lines = out.read_text().splitlines()
    assert lines[-1] == "undo gone at old"
    runs_after, _ = _pass(repo, data_dir)
    assert runs_after == runs, "nothing left to do once pruned"


def test_without_prune_a_removed_task_is_only_forgotten(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """By default a removed task's applied record is dropped and nothing runs."""
    out = tmp_path / "out.txt"
    repo.commit({"workflows/w.yaml": workflow("w", TWO, params=f"{{OUT: {out}, V: x}}")})
    _pass(repo, data_dir)
    before = out.read_text()
    repo.commit({"workflows/w.yaml": workflow("w", ONE, params=f"{{OUT: {out}, V: x}}")})
    runs, applied = _pass(repo, data_dir)
    assert applied == {("w", "keep")}
    assert out.read_text() == before
    assert all(not r.startswith("prune") for r in runs)


SWAPPED = """\
  - id: keep
    run: echo keep >> "$OUT"
  - id: fresh
    run: echo fresh >> "$OUT"
"""


def test_prune_and_a_new_task_in_one_commit_both_happen_in_one_reconcile(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """Removing one task and adding another in one commit: the rollback, then the new task."""
    from tests.test_cli_engine import podium

    out = tmp_path / "out.txt"
    params = f"{{OUT: {out}, V: old}}"
    repo.commit({"workflows/w.yaml": workflow("w", TWO, params=params, prune="true")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    repo.commit({"workflows/w.yaml": workflow("w", SWAPPED, params=params, prune="true")})

    planned = podium("plan", "--repo", repo.url)
    assert planned.returncode == 2
    assert "- gone" in planned.stdout and "removed (rollback)" in planned.stdout
    assert "1 task to run in 1 workflow, 1 to roll back, 0 to forget" in planned.stdout

    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    assert "Nothing outstanding" not in done.stdout
    assert out.read_text().splitlines()[-2:] == ["undo gone at old", "fresh"]
    runs, applied = _pass(repo, data_dir)
    assert runs == ["git:succeeded", "prune:rolled_back", "git:succeeded"]
    assert applied == {("w", "keep"), ("w", "fresh")}
    assert podium("plan", "--repo", repo.url).returncode == 0


def test_the_agent_prunes_then_runs_the_new_task(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """Under the agent, the same commit leads to the rollback and then to the new task."""
    from tests.agentproc import AgentProcess, wait_until

    out = tmp_path / "out.txt"
    params = f"{{OUT: {out}, V: old}}"
    repo.commit({"workflows/w.yaml": workflow("w", TWO, params=params, prune="true")})
    state = tmp_path / "state.db"
    with AgentProcess(repo.url, state, "--interval", "1s", listen=False) as agent:
        wait_until(lambda: out.exists() and "gone" in out.read_text(), timeout=15)
        repo.commit({"workflows/w.yaml": workflow("w", SWAPPED, params=params, prune="true")})
        wait_until(lambda: "fresh" in out.read_text(), timeout=20)
        assert agent.stop() == 0
    assert out.read_text().splitlines()[-2:] == ["undo gone at old", "fresh"]
