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
