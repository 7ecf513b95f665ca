"""The real ``podium agent`` daemon against a real local Git repository."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from podium.store import Store, open_store
from tests.agentproc import PODIUM, AgentProcess, wait_until
from tests.gitrepo import GitRepo, workflow

SECRET = "webhook-s3cret"


def _store(path: Path) -> Store:
    return open_store(path)


def _runs(state: Path, workflow_name: str) -> list[str]:
    store = _store(state)
    try:
        return [str(r.status) for r in reversed(store.list_runs(workflow_name))]
    finally:
        store.close()


def _task_status(state: Path, run_id: int, task: str) -> str | None:
    store = _store(state)
    try:
        return str(store.get_run_task(run_id, task).status)
    except Exception:
        return None
    finally:
        store.close()


def _attempts(state: Path, run_id: int, task: str) -> list[str]:
    store = _store(state)
    try:
        return [a.status for a in store.attempts(run_id, task) if a.phase == "run"]
    finally:
        store.close()


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_commit_pushed_while_running_is_applied_within_one_interval(
    repo: GitRepo, tmp_path: Path
) -> None:
    """A commit pushed to the remote while the agent runs is executed within one poll interval."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    state = tmp_path / "state.db"
    with AgentProcess(repo.url, state, "--interval", "1s") as agent:
        wait_until(lambda: _runs(state, "w") == ["succeeded"])
        repo.commit(
            {
                "workflows/w.yaml": workflow(
                    "w", "  - {id: a, run: 'true'}\n  - {id: b, run: 'true'}\n"
                )
            }
        )
        pushed = time.monotonic()
        wait_until(lambda: _runs(state, "w") == ["succeeded", "succeeded"], timeout=10)
        assert time.monotonic() - pushed < 1.0 + 2.0
        store = _store(state)
        assert set(store.run_tasks(2)) == {"b"}
        store.close()
        assert agent.stop() == 0


def test_webhook_push_triggers_reconcile_well_before_the_interval(
    repo: GitRepo, tmp_path: Path
) -> None:
    """A signed GitHub push webhook starts the new work at once; bad signatures get 401."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    state = tmp_path / "state.db"
    env = {"PODIUM_WEBHOOK_SECRET": SECRET}
    with AgentProcess(repo.url, state, "--interval", "60s", env=env) as agent:
        wait_until(lambda: _runs(state, "w") == ["succeeded"])
        repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'echo 2'}\n")})
        body = json.dumps({"ref": "refs/heads/main", "after": repo.head()}).encode()
        bad = httpx.post(
            agent.url + "/webhooks/git",
            content=body,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64},
        )
        assert bad.status_code == 401
        unsigned = httpx.post(
            agent.url + "/webhooks/git", content=body, headers={"X-GitHub-Event": "push"}
        )
        assert unsigned.status_code == 401
        time.sleep(0.5)
        assert _runs(state, "w") == ["succeeded"], "a refused webhook must not trigger anything"
        sent = time.monotonic()
        ok = httpx.post(
            agent.url + "/webhooks/git",
            content=body,
            headers={
                "X-GitHub-Event": "push",
                "X-Hub-Signature-256": _sign(body),
                "X-GitHub-Delivery": "d-1",
                "Content-Type": "application/json",
            },
        )
        assert ok.status_code == 202
        wait_until(lambda: _runs(state, "w") == ["succeeded", "succeeded"], timeout=10)
        assert time.monotonic() - sent < 5.0
        assert agent.stop() == 0


def test_gitlab_token_webhook_is_checked(repo: GitRepo, tmp_path: Path) -> None:
    """GitLab pushes are accepted with the right X-Gitlab-Token and refused otherwise."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    state = tmp_path / "state.db"
    with AgentProcess(
        repo.url, state, "--interval", "60s", env={"PODIUM_GITLAB_TOKEN": "gl-token"}
    ) as agent:
        headers = {"X-Gitlab-Event": "Push Hook"}
        wrong = httpx.post(
            agent.url + "/webhooks/git",
            content=b"{}",
            headers={**headers, "X-Gitlab-Token": "nope"},
        )
        assert wrong.status_code == 401
        right = httpx.post(
            agent.url + "/webhooks/git",
            content=b"{}",
            headers={**headers, "X-Gitlab-Token": "gl-token"},
        )
        assert right.status_code == 202
        assert agent.stop() == 0


def test_sigterm_mid_run_leaves_resumable_state(repo: GitRepo, tmp_path: Path) -> None:
    """SIGTERM while a task runs exits cleanly; the next agent resumes and completes the run."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: slow, run: 'sleep 2'}\n")})
    state = tmp_path / "state.db"
    agent = AgentProcess(
        repo.url, state, "--interval", "1s", "--shutdown-grace", "0.2s", listen=False
    )
    with agent:
        wait_until(lambda: _task_status(state, 1, "slow") == "running")
        assert agent.stop(signal.SIGTERM) == 0
    assert _runs(state, "w") == ["running"]
    assert _task_status(state, 1, "slow") == "pending"
    assert _attempts(state, 1, "slow") == ["interrupted"]
    with AgentProcess(repo.url, state, "--interval", "1s", listen=False) as again:
        wait_until(lambda: _runs(state, "w") == ["succeeded"], timeout=15)
        assert _attempts(state, 1, "slow") == ["interrupted", "succeeded"]
        assert again.stop() == 0


GATED = """\
  - id: build
    run: echo built >> "$OUT"
    rollback: echo unbuilt >> "$OUT"
  - id: deploy
    needs: [build]
    approval: {approvers: [lead@example.com], timeout: %s}
    run: echo deployed %s >> "$OUT"
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], capture_output=True, text=True, timeout=60)


def test_approval_gate_refused_superseded_then_approved(repo: GitRepo, tmp_path: Path) -> None:
    """A gated task waits, refuses a non-approver, is superseded by a commit, then is approved."""
    out = tmp_path / "out.txt"
    repo.commit({"workflows/w.yaml": workflow("w", GATED % ("4h", "v1"), params=f"{{OUT: {out}}}")})
    state = tmp_path / "state.db"
    with AgentProcess(repo.url, state, "--interval", "1s") as agent:
        wait_until(lambda: _runs(state, "w") == ["waiting_approval"])
        refused = _cli(
            "approve", "1", "deploy", "--by", "mallory@example.com", "--state", str(state)
        )
        assert refused.returncode == 1
        assert "not an approver" in refused.stderr
        repo.commit(
            {"workflows/w.yaml": workflow("w", GATED % ("4h", "v2"), params=f"{{OUT: {out}}}")}
        )
        wait_until(lambda: _runs(state, "w") == ["cancelled", "waiting_approval"], timeout=10)
        stale = _cli("approve", "1", "deploy", "--by", "lead@example.com", "--state", str(state))
        assert stale.returncode == 1
        assert "superseded" in stale.stderr
        ok = _cli("approve", "2", "deploy", "--by", "lead@example.com", "--state", str(state))
        assert ok.returncode == 0, ok.stderr
        wait_until(lambda: _runs(state, "w") == ["cancelled", "succeeded"], timeout=10)
        assert "deployed v2" in out.read_text()
        assert "deployed v1" not in out.read_text()
        store = _store(state)
        kinds = [e.kind for e in store.events()]
        store.close()
        assert "decision_refused" in kinds and "approval_superseded" in kinds
        assert agent.stop() == 0


def test_approval_timeout_rejects_and_rolls_back(repo: GitRepo, tmp_path: Path) -> None:
    """An approval that times out (on_timeout: reject) fails the task and rolls the run back."""
    out = tmp_path / "out.txt"
    repo.commit({"workflows/w.yaml": workflow("w", GATED % ("1s", "v1"), params=f"{{OUT: {out}}}")})
    state = tmp_path / "state.db"
    with AgentProcess(repo.url, state, "--interval", "1s", listen=False) as agent:
        wait_until(lambda: _runs(state, "w") == ["rolled_back"], timeout=15)
        assert out.read_text().splitlines() == ["built", "unbuilt"]
        store = _store(state)
        assert [e.kind for e in store.events(kind="approval_expired")] == ["approval_expired"]
        store.close()
        assert agent.stop() == 0


def test_metrics_and_readiness(repo: GitRepo, tmp_path: Path) -> None:
    """/metrics shows runs, tasks, durations, approvals, outbox, fetch errors; /readyz is 200."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    state = tmp_path / "state.db"
    with AgentProcess(repo.url, state, "--interval", "1s") as agent:
        wait_until(lambda: _runs(state, "w") == ["succeeded"])
        ready = httpx.get(agent.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        text = httpx.get(agent.url + "/metrics").text
        for needle in (
            'podium_runs{status="succeeded"} 1.0',
            'podium_tasks{status="succeeded"} 1.0',
            "podium_task_duration_seconds_count",
            "podium_reconcile_duration_seconds_count",
            "podium_outstanding_tasks",
            "podium_approvals_waiting 0.0",
            "podium_outbox_depth",
            "podium_source_fetch_errors_total",
        ):
            assert needle in text, needle
        assert agent.stop() == 0


@pytest.mark.parametrize("as_url", [True, False], ids=["file-url", "plain-path"])
def test_unreachable_repo_at_start_is_not_fatal(
    tmp_path: Path, data_dir: Path, as_url: bool
) -> None:
    """The agent starts against a missing repository, stays up, reports not ready, recovers."""
    missing = tmp_path / "later.git"
    state = tmp_path / "state.db"
    repo = f"file://{missing}" if as_url else str(missing)
    with AgentProcess(repo, state, "--interval", "0.2s") as agent:
        assert httpx.get(agent.url + "/healthz").status_code == 200
        assert httpx.get(agent.url + "/readyz").status_code == 503
        late = GitRepo(tmp_path / "late")
        late.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
        late.bare.rename(missing)
        wait_until(lambda: _runs(state, "w") == ["succeeded"], timeout=20)
        assert httpx.get(agent.url + "/readyz").status_code == 200
        assert agent.stop() == 0
        assert agent.output().count("source_unreachable") == 1


def test_second_agent_on_the_same_state_exits(repo: GitRepo, tmp_path: Path) -> None:
    """While one agent holds the lease, another on the same state says so and exits non-zero."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    state = tmp_path / "state.db"
    with AgentProcess(repo.url, state, "--interval", "1s") as agent:
        second = subprocess.run(
            [PODIUM, "agent", "--repo", repo.url, "--state", str(state)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode != 0
        assert "lease" in second.stderr and "Traceback" not in second.stderr
        assert agent.stop() == 0


def test_print_config_masks_secrets_and_bad_settings_fail_in_one_line(tmp_path: Path) -> None:
    """--print-config shows effective settings with secrets masked; bad settings are one line."""
    config = tmp_path / "podium-agent.yaml"
    config.write_text("interval: 7s\nrepo: https://bot:tok3n@git.example.com/ops.git\n")
    shown = subprocess.run(
        [PODIUM, "agent", "--config", str(config), "--print-config", "--interval", "9s"],
        capture_output=True,
        text=True,
        env={**_env(), "PODIUM_WEBHOOK_SECRET": "hunter22"},
    )
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["interval"] == 9.0
    assert data["webhook_secret"] == "********"
    assert "tok3n" not in shown.stdout and "hunter22" not in shown.stdout
    for bad in (["--interval", "soon"], ["--listen", "nowhere"], ["--max-parallel", "0"]):
        result = subprocess.run(
            [PODIUM, "agent", "--repo", ".", *bad], capture_output=True, text=True, env=_env()
        )
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
