"""An interrupted non-idempotent attempt (forward or rollback) waits for a human, whatever comes."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

from podium.store import Store, open_store
from tests.agentproc import AgentProcess, wait_until
from tests.gitrepo import GitRepo, workflow
from tests.test_cli_engine import podium, run_ids, spawn

WF = "workflows/w.yaml"


def _charge_workflow(ledger: Path, gen: str, charge_note: str = "a") -> str:
    return workflow(
        "w",
        f"""\
  - id: charge
    idempotent: false
    run: echo charge-{charge_note} >> {ledger}; sleep 5
  - id: notify
    needs: [charge]
    env: {{GEN: "{gen}"}}
    run: echo notify $GEN
""",
    )


def _kill_while(repo: GitRepo, ledger: Path, lines: int = 1) -> None:
    """`podium reconcile`, SIGKILLed once the ledger has ``lines`` lines."""
    proc = spawn("reconcile", "--repo", repo.url)
    try:
        wait_until(
            lambda: ledger.exists() and len(ledger.read_text().splitlines()) >= lines, timeout=15
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)


def test_an_interrupted_charge_is_never_charged_again_without_a_decision(
    repo: GitRepo, store: Store, tmp_path: Path
) -> None:
    """SIGKILL mid-charge, then a commit changing another task: still one charge, and held."""
    ledger = tmp_path / "ledger"
    repo.commit({WF: _charge_workflow(ledger, "1")})
    _kill_while(repo, ledger)
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    (run,) = run_ids(store)
    assert str(store.get_run(run).status) == "waiting_decision"

    repo.commit({WF: _charge_workflow(ledger, "2")})
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr  # the run still waits for a human
    assert ledger.read_text().splitlines() == ["charge-a"]
    assert str(store.get_run(run).status) == "waiting_decision", "not superseded"
    planned = podium("plan", "--repo", repo.url)
    assert planned.returncode == 2
    assert f"held: task charge (run) was interrupted in run {run}" in planned.stdout

    # a change to the interrupted task itself supersedes the run, but the hold stays
    repo.commit({WF: _charge_workflow(ledger, "2", charge_note="b")})
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 1
    assert "held: task charge" in done.stderr
    assert str(store.get_run(run).status) == "cancelled"
    assert run_ids(store) == [run], "no new run while the charge is held"
    assert ledger.read_text().splitlines() == ["charge-a"]
    doc = json.loads(podium("plan", "--repo", repo.url, "--json").stdout)
    held = doc["workflows"][0]["held"]
    assert held["task"] == "charge" and held["run_id"] == run and held["phase"] == "run"
    status = podium("status", "--json")
    assert status.returncode == 1
    (row,) = json.loads(status.stdout)
    assert (row["ready"], row["reason"]) == ("Stalled", "WaitingDecision")

    # someone decides: the interrupted charge is taken as done; the new charge runs once
    decided = podium("skip", str(run), "charge", "--by", "ops")
    assert decided.returncode == 0, decided.stderr
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    assert ledger.read_text().splitlines() == ["charge-a", "charge-b"]
    assert podium("plan", "--repo", repo.url).returncode == 0


def test_an_interrupted_non_idempotent_rollback_waits_for_a_decision(
    repo: GitRepo, store: Store, tmp_path: Path
) -> None:
    """A refund cut short by a crash is not re-run at restart: the run waits; retry re-runs it."""
    ledger = tmp_path / "ledger"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - id: pay
    idempotent: false
    run: echo pay >> {ledger}
    rollback: echo refund >> {ledger}; sleep 5
  - {{id: boom, needs: [pay], run: 'false'}}
""",
            )
        }
    )
    _kill_while(repo, ledger, lines=2)
    assert ledger.read_text().splitlines() == ["pay", "refund"]
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    (run,) = run_ids(store)
    assert str(store.get_run(run).status) == "waiting_decision"
    assert str(store.run_tasks(run)["pay"].status) == "interrupted"
    assert ledger.read_text().splitlines() == ["pay", "refund"], "no second refund"
    kinds = [e.kind for e in store.events(run_id=run)]
    assert "waiting_decision" in kinds

    assert podium("retry", str(run)).returncode == 0
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 1, done.stderr  # the run rolled back
    assert str(store.get_run(run).status) == "rolled_back"
    assert ledger.read_text().splitlines() == ["pay", "refund", "refund"]
    assert "pay" not in {t for (_w, t) in store.applied_all()}


def test_a_graceful_stop_announces_the_run_waiting_for_a_decision(
    repo: GitRepo, tmp_path: Path
) -> None:
    """SIGTERM cuts a non-idempotent task short: the wait is announced, audited and held."""
    ledger = tmp_path / "ledger"
    repo.commit({WF: _charge_workflow(ledger, "1")})
    state = tmp_path / "state.db"
    with AgentProcess(
        repo.url, state, "--interval", "1s", "--shutdown-grace", "0.2s", listen=False
    ) as agent:
        wait_until(lambda: ledger.exists(), timeout=15)
        assert agent.stop() == 0
        output = agent.output()
    db = open_store(state)
    try:
        (run,) = [r.id for r in db.list_runs()]
        assert str(db.get_run(run).status) == "waiting_decision"
        events = [e for e in db.events(run_id=run) if e.kind == "waiting_decision"]
        assert len(events) == 1 and events[0].task == "charge"
        assert ("w", "charge") in db.holds_all()
    finally:
        db.close()
    with sqlite3.connect(state) as raw:
        undelivered = raw.execute(
            "SELECT COUNT(*) FROM outbox o JOIN events e ON e.id = o.event_id"
            " WHERE e.kind = 'waiting_decision' AND o.delivered_at IS NULL"
        ).fetchone()[0]
        queued = raw.execute(
            "SELECT COUNT(*) FROM outbox o JOIN events e ON e.id = o.event_id"
            " WHERE e.kind = 'waiting_decision'"
        ).fetchone()[0]
    assert queued >= 1 and undelivered == 0, "announced before the agent exited"
    assert "waiting decision" in output.lower() or "waiting_decision" in output
