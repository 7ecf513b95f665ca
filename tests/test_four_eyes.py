"""Four-eyes and approver lists cannot be defeated by the commit under review."""

from __future__ import annotations

from pathlib import Path

from podium.store import Store
from tests.gitrepo import AUTHOR_EMAIL, GitRepo, workflow
from tests.test_cli_engine import podium, run_ids

WF = "workflows/w.yaml"


def _gated(approvers: str, version: str, forbid: str = "true") -> str:
    return workflow(
        "w",
        f"""\
  - id: deploy
    approval: {{approvers: [{approvers}]}}
    env: {{VERSION: "{version}"}}
    run: echo deploy $VERSION
""",
        forbid_self_approval=forbid,
    )


def test_the_committer_cannot_approve_what_they_committed_under_another_author(
    repo: GitRepo, store: Store
) -> None:
    """`git commit --author "Lead <...>"` does not let the committer approve their own change."""
    approvers = f"{AUTHOR_EMAIL}, lead@example.com"
    repo.commit({WF: _gated(approvers, "1")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    assert podium("approve", "1", "deploy", "--by", "lead@example.com").returncode == 0
    assert podium("reconcile", "--repo", repo.url).returncode == 0

    repo.commit({WF: _gated(approvers, "2")}, author="Lead <lead@example.com>")
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    run = run_ids(store)[-1]
    refused = podium("approve", str(run), "deploy", "--by", AUTHOR_EMAIL)
    assert refused.returncode == 1
    assert "four-eyes" in refused.stderr and AUTHOR_EMAIL in refused.stderr
    (request,) = store.approvals(run_id=run)
    assert (request.author_email, request.committer_email) == ("lead@example.com", AUTHOR_EMAIL)
    assert [e.kind for e in store.events(run_id=run)].count("decision_refused") == 1


def test_a_commit_cannot_lower_its_own_bar(repo: GitRepo, store: Store, tmp_path: Path) -> None:
    """Approvers and four-eyes come from the last applied revision, not the commit itself."""
    repo.commit({WF: _gated("lead@example.com", "1")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    assert podium("approve", "1", "deploy", "--by", "lead@example.com").returncode == 0
    assert podium("reconcile", "--repo", repo.url).returncode == 0

    # mallory names herself approver, turns four-eyes off and changes the deploy
    mallory = "Mallory <mallory@example.com>"
    repo.commit({WF: _gated("mallory@example.com", "2", forbid="false")}, author=mallory)
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    run = run_ids(store)[-1]
    (request,) = store.approvals(run_id=run)
    assert request.approvers == ["lead@example.com"] and request.forbid_self_approval is True
    refused = podium("approve", str(run), "deploy", "--by", "mallory@example.com")
    assert refused.returncode == 1 and "not an approver" in refused.stderr
    assert podium("approve", str(run), "deploy", "--by", "lead@example.com").returncode == 0
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    assert str(store.get_run(run).status) == "succeeded"

    # once applied, her rules gate the next commit
    repo.commit({WF: _gated("mallory@example.com", "3", forbid="false")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    run = run_ids(store)[-1]
    (request,) = store.approvals(run_id=run)
    assert request.approvers == ["mallory@example.com"]
    assert podium("approve", str(run), "deploy", "--by", "mallory@example.com").returncode == 0


def test_removing_a_gate_does_not_ungate_the_commit_that_removes_it(
    repo: GitRepo, store: Store
) -> None:
    """A commit that deletes a task's approval still waits for that approval itself."""
    repo.commit({WF: _gated("lead@example.com", "1")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    assert podium("approve", "1", "deploy", "--by", "lead@example.com").returncode == 0
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    repo.commit({WF: workflow("w", "  - {id: deploy, run: echo deploy 2}\n")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    run = run_ids(store)[-1]
    assert str(store.get_run(run).status) == "waiting_approval"


def test_rules_are_read_from_git_when_the_store_does_not_have_them(
    repo: GitRepo, store: Store
) -> None:
    """A state made before rules were kept (no marks) still gates by the applied revision."""
    repo.commit({WF: _gated("lead@example.com", "1")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    assert podium("approve", "1", "deploy", "--by", "lead@example.com").returncode == 0
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    store.drop_marks("rules:")
    repo.commit({WF: _gated("mallory@example.com", "2")}, author="Mallory <mallory@example.com>")
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    (request,) = store.approvals(run_id=run_ids(store)[-1])
    assert request.approvers == ["lead@example.com"]
