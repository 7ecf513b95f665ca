"""Approval rules through the decision service: directory, groups, four-eyes, expiry."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.cli.workspace import open_workspace
from podium.decisions import Decisions
from podium.errors import DecisionError
from tests.gitrepo import AUTHOR_EMAIL, GitRepo, workflow

CONFIG = """\
directory:
  users: {U0CAROL: [carol@example.com]}
  groups: {sre: [U0CAROL]}
"""

GATE = """\
  - id: ship
    approval: {approvers: ["@sre", "%s"], timeout: %s, on_timeout: %s}
    run: echo shipped >> "$OUT"
"""


def _waiting(repo: GitRepo, data_dir: Path, tmp_path: Path, **top: object) -> tuple[Decisions, int]:
    out = tmp_path / "out.txt"
    approver = top.pop("approver", AUTHOR_EMAIL)
    timeout = top.pop("timeout", "4h")
    on_timeout = top.pop("on_timeout", "reject")
    repo.commit(
        {
            "podium.yaml": CONFIG,
            "workflows/w.yaml": workflow(
                "w", GATE % (approver, timeout, on_timeout), params=f"{{OUT: {out}}}", **top
            ),
        }
    )
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    ws.reconciler.reconcile_once()
    run = ws.store.list_runs("w")[0]
    assert str(run.status) == "waiting_approval"
    ws.close()
    ws2 = open_workspace(repo.url, None, "", None, str(data_dir))
    return Decisions(ws2.store), run.id


def _drive(repo: GitRepo, data_dir: Path) -> str:
    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    ws.reconciler.reconcile_once()
    status = str(ws.store.list_runs("w")[0].status)
    ws.close()
    return status


def test_group_members_approve_by_id_or_alias(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """A member of an @group approves by user id or by an alias the directory lists."""
    decisions, run_id = _waiting(repo, data_dir, tmp_path)
    with pytest.raises(DecisionError, match="not an approver"):
        decisions.decide(run_id, "ship", "dave@example.com", True)
    result = decisions.decide(run_id, "ship", "carol@example.com", True, "ok")
    assert result.approval is not None and result.approval.status == "approved"
    assert _drive(repo, data_dir) == "succeeded"
    assert (tmp_path / "out.txt").read_text() == "shipped\n"


def test_four_eyes_refuses_the_author_of_the_change(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """With forbid_self_approval the commit author cannot approve; another approver can."""
    decisions, run_id = _waiting(repo, data_dir, tmp_path, forbid_self_approval="true")
    with pytest.raises(DecisionError, match="four-eyes"):
        decisions.decide(run_id, "ship", AUTHOR_EMAIL, True)
    refusals = decisions.store.events(run_id=run_id, kind="decision_refused")
    assert [e.actor for e in refusals] == [AUTHOR_EMAIL]
    decisions.decide(run_id, "ship", "U0CAROL", True)
    assert _drive(repo, data_dir) == "succeeded"


def test_without_four_eyes_the_author_may_approve(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """Four-eyes is opt-in: by default a listed approver who wrote the change may approve."""
    decisions, run_id = _waiting(repo, data_dir, tmp_path)
    decisions.decide(run_id, "ship", AUTHOR_EMAIL, True)
    assert _drive(repo, data_dir) == "succeeded"


def test_a_decided_request_cannot_be_decided_again(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """After a rejection, a later approval is refused and the run stays failed."""
    decisions, run_id = _waiting(repo, data_dir, tmp_path)
    decisions.decide(run_id, "ship", "U0CAROL", False, "not today")
    with pytest.raises(DecisionError, match="already rejected"):
        decisions.decide(run_id, "ship", "U0CAROL", True)
    assert _drive(repo, data_dir) in ("failed", "rolled_back")
    assert not (tmp_path / "out.txt").exists()


def test_expiry_with_on_timeout_approve_runs_the_task(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """An expired request with on_timeout: approve lets the task run."""
    import time

    _decisions, _run_id = _waiting(repo, data_dir, tmp_path, timeout="1s", on_timeout="approve")
    time.sleep(1.1)
    assert _drive(repo, data_dir) == "succeeded"
    assert (tmp_path / "out.txt").read_text() == "shipped\n"
