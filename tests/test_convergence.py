"""The agent converges: whatever is pushed while runs are in progress is applied once they end."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

from podium.store import open_store
from tests.agentproc import PODIUM, AgentProcess, wait_until
from tests.gitrepo import GitRepo, workflow

WF = "workflows/w.yaml"


def _plan(repo: GitRepo, state: Path) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [PODIUM, "plan", "--repo", repo.url, "--state", str(state), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert done.returncode in (0, 2), done.stderr
    return done.returncode, json.loads(done.stdout)


def _runs(state: Path) -> list[tuple[int, str]]:
    store = open_store(state)
    try:
        return [(r.id, str(r.status)) for r in reversed(store.list_runs(limit=1000))]
    finally:
        store.close()


def _applied(state: Path) -> dict[str, str]:
    store = open_store(state)
    try:
        return {t: a.fingerprint for (w, t), a in store.applied_all().items() if w == "w"}
    finally:
        store.close()


def _long_then_after(value: str, seconds: float = 6) -> str:
    return workflow(
        "w",
        f"  - {{id: long, run: sleep {seconds}}}\n"
        f"  - {{id: after, needs: [long], run: 'true', env: {{V: '{value}'}}}}\n",
    )


def test_a_commit_pushed_during_a_run_is_applied_when_the_run_ends(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Pushed while run 1 runs, the change to `after` runs in run 2 without another push."""
    repo.commit({WF: _long_then_after("1", seconds=4)})
    state = tmp_path / "state.db"
    with AgentProcess(repo.url, state, "--interval", "1s", listen=False) as agent:
        wait_until(lambda: _runs(state)[:1] == [(1, "running")], timeout=15)
        time.sleep(1.5)
        repo.commit({WF: _long_then_after("2", seconds=4)})
        wait_until(lambda: [s for _, s in _runs(state)] == ["succeeded", "succeeded"], timeout=30)
        code, doc = _plan(repo, state)
        assert code == 0, doc
        assert agent.stop() == 0
    store = open_store(state)
    try:
        assert set(store.run_tasks(2)) == {"after"}
        assert store.run_tasks(2)["after"].reason == "changed"
    finally:
        store.close()


def test_random_pushes_while_runs_are_in_progress_converge(repo: GitRepo, tmp_path: Path) -> None:
    """Pushes at random moments, some mid-run: at the end the applied state is what plan wants."""
    rng = random.Random(20261129)
    state = tmp_path / "state.db"

    def version(n: int) -> str:
        # each version changes a random subset of three tasks in a small DAG
        picks = {name: rng.choice("abc") for name in ("x", "y", "z")}
        return workflow(
            "w",
            f"  - {{id: x, run: sleep 1.{rng.randint(0, 5)}, env: {{K: '{picks['x']}'}}}}\n"
            f"  - {{id: y, needs: [x], run: 'true', env: {{K: '{picks['y']}'}}}}\n"
            f"  - {{id: z, run: sleep 0.{rng.randint(1, 5)}, env: {{K: '{picks['z']}{n}'}}}}\n",
        )

    repo.commit({WF: version(0)})
    with AgentProcess(repo.url, state, "--interval", "1s", listen=False) as agent:
        for n in range(1, 7):
            if n == 6 or rng.random() < 0.6:  # mid-run, and always the last one
                wait_until(lambda: any(s == "running" for _, s in _runs(state)), timeout=30)
                time.sleep(rng.uniform(0.0, 0.4))
            else:
                time.sleep(rng.uniform(0.1, 1.5))
            repo.commit({WF: version(n)})

        def converged() -> bool:
            runs = _runs(state)
            if not runs or any(s in ("pending", "running") for _, s in runs):
                return False
            code, _doc = _plan(repo, state)
            return code == 0

        wait_until(converged, timeout=60, every=0.5)
        code, doc = _plan(repo, state)
        assert code == 0 and doc["outstanding"] == 0
        tasks = doc["workflows"][0]  # type: ignore[index]
        assert sorted(tasks["up_to_date"]) == ["x", "y", "z"]  # type: ignore[index]
        assert set(_applied(state)) == {"x", "y", "z"}
        assert all(s == "succeeded" for _, s in _runs(state))
        assert agent.stop() == 0
