"""The coordinator never dies quietly: one broken run stalls its workflow only; a broken store
stops the agent with a non-zero exit for its supervisor to restart it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from podium import daemon
from podium.settings import load_settings
from tests.agentproc import AgentProcess, wait_until
from tests.gitrepo import GitRepo, workflow
from tests.test_cli_engine import podium


def _runs(state: Path, name: str) -> list[str]:
    if not state.exists():
        return []
    with sqlite3.connect(state) as db:
        try:
            rows = db.execute("SELECT status FROM runs WHERE workflow = ? ORDER BY id", (name,))
        except sqlite3.OperationalError:  # not migrated yet
            return []
        return [r[0] for r in rows]


def test_a_run_that_cannot_be_read_stalls_only_its_workflow(repo: GitRepo, tmp_path: Path) -> None:
    """An unreadable run of `a` is set aside (logged, a Stalled); `b` keeps being reconciled."""
    tasks = "  - {id: t, run: 'true', env: {V: '%s'}}\n"
    repo.commit(
        {"workflows/a.yaml": workflow("a", tasks % 1), "workflows/b.yaml": workflow("b", tasks % 1)}
    )
    state = tmp_path / "state.db"
    with AgentProcess(repo.url, state, "--interval", "1s", listen=False) as agent:
        wait_until(
            lambda: _runs(state, "a") == ["succeeded"] and _runs(state, "b") == ["succeeded"]
        )
        with sqlite3.connect(state) as db:  # a run whose definition no longer decodes
            db.execute(
                "INSERT INTO runs (workflow, revision, status, trigger, created_at, definition)"
                " VALUES ('a', 'deadbeef', 'running', 'git', 0, '{not json')"
            )
        repo.commit({"workflows/b.yaml": workflow("b", tasks % 2)})
        wait_until(lambda: _runs(state, "b") == ["succeeded", "succeeded"], timeout=20)
        assert agent.proc.poll() is None, "the agent is still running"
        shown = podium("status", "--state", str(state), "--json")
        rows = {r["workflow"]: r for r in json.loads(shown.stdout)}
        assert (rows["a"]["ready"], rows["a"]["reason"]) == ("Stalled", "InternalError")
        assert rows["b"]["ready"] == "Ready"
        assert shown.returncode == 1
        assert agent.stop() == 0
    logged = [json.loads(line) for line in agent.output().splitlines() if line.startswith("{")]
    aside = [e for e in logged if e.get("event") == "run_set_aside"]
    assert aside and aside[0]["workflow"] == "a"
    assert not any(e.get("event") == "coordinator_gave_up" for e in logged)


def test_a_store_that_keeps_failing_stops_the_agent_with_a_non_zero_exit(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every round fails, the agent gives up after a few tries and exits 1 (not 0)."""
    monkeypatch.setattr(daemon, "MAX_COORDINATOR_ERRORS", 2)
    repo.commit({"workflows/a.yaml": workflow("a", "  - {id: t, run: 'true'}\n")})
    settings = load_settings(
        {"repo": repo.url, "state": tmp_path / "state.db", "interval": "1s", "data_dir": tmp_path}
    )
    agent = daemon.Agent(settings)

    def break_the_store() -> None:
        wait_until(lambda: agent.ws.engine.finished_runs >= 1, timeout=20)
        agent.store.close()  # every later statement fails

    breaker = threading.Thread(target=break_the_store)
    breaker.start()
    began = time.monotonic()
    code = agent.run()
    breaker.join()
    assert code == 1
    assert time.monotonic() - began < 30
