"""The `podium` command line as a user runs it: real subprocesses, real git, real SQLite files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podium.store import Store
from tests.gitrepo import (  # noqa: F401  (the fixtures)
    GitRepo,
    data_dir_fixture,
    reconcile,
    repo_fixture,
    workflow,
)

PODIUM = Path(sys.executable).parent / "podium"
WF = "workflows/w.yaml"


def podium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real CLI with the test's environment."""
    return subprocess.run(
        [str(PODIUM), *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )


def podium_all(*calls: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run several independent (read-only or unrelated) CLI calls at once."""
    procs = [spawn(*args) for args in calls]
    done = []
    for args, proc in zip(calls, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess([str(PODIUM), *args], proc.returncode, out, err))
    return done


def spawn(*args: str) -> subprocess.Popen[str]:
    """Start the real CLI in the background."""
    return subprocess.Popen(
        [str(PODIUM), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def as_json(*args: str) -> Any:
    done = podium(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(check: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_ids(store: Store, workflow: str | None = None) -> list[int]:
    return sorted(r.id for r in store.list_runs(workflow))


def attempt_rows(store: Store, run_id: int, task: str) -> list[tuple[int, str]]:
    return [(a.number, a.status) for a in store.attempts(run_id, task) if a.phase == "run"]


def alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def task_pid(mark: Path) -> int | None:
    """The pid (= process group) of a task's shell, which writes it into its mark file."""
    text = mark.read_text().strip() if mark.exists() else ""
    return int(text) if text.isdigit() else None


# -- crash and restart ----------------------------------------------------------------


def slow_first_attempt(mark: Path, seconds: float) -> str:
    """Shell text: the first attempt marks that it runs, then sleeps; later ones are quick."""
    return f"""|
      echo "attempt $PODIUM_ATTEMPT"
      if [ "$PODIUM_ATTEMPT" = 1 ]; then echo $$ > {mark}; sleep {seconds}; fi
      echo done"""


def kill_mid_task(repo: GitRepo, store: Store, marks: list[Path]) -> list[int]:
    """Start `podium reconcile`, SIGKILL it while tasks run; return the orphaned task pids."""
    agent = spawn("reconcile", "--repo", repo.url)
    try:
        wait_for(lambda: all(task_pid(m) for m in marks), what="tasks to start")
        pids = [task_pid(m) or 0 for m in marks]
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.communicate(timeout=10)
    assert agent.returncode == -signal.SIGKILL
    return pids


def test_sigkill_then_restart_reruns_an_idempotent_task_once(
    repo: GitRepo, store: Store, tmp_path: Path
) -> None:
    """After SIGKILL mid-task a restart finishes the run: attempts are [interrupted, succeeded]."""
    mark = tmp_path / "w"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"  - id: slow\n    run: {slow_first_attempt(mark, 3)}\n"
                "  - {id: after, needs: [slow], run: echo after}\n",
            )
        }
    )
    (orphan,) = kill_mid_task(repo, store, [mark])
    (run_id,) = run_ids(store)
    assert str(store.get_run(run_id).status) == "running"

    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    assert str(store.get_run(run_id).status) == "succeeded"
    assert attempt_rows(store, run_id, "slow") == [(1, "interrupted"), (2, "succeeded")]
    assert attempt_rows(store, run_id, "after") == [(1, "succeeded")]
    assert not alive(orphan)
    assert run_ids(store) == [run_id]


def test_sigkill_of_non_idempotent_tasks_waits_for_retry_skip_or_fail(
    repo: GitRepo, store: Store, tmp_path: Path
) -> None:
    """Interrupted non-idempotent tasks wait for a decision; retry, skip and fail resolve them."""
    files = {}
    marks = []
    for name in ("r", "s", "f"):
        mark = tmp_path / name
        marks.append(mark)
        files[f"workflows/{name}.yaml"] = workflow(
            name,
            f"""\
  - id: deploy
    idempotent: false
    rollback: echo undo >> {tmp_path}/undo-{name}
    run: {slow_first_attempt(mark, 30)}
  - {{id: after, needs: [deploy], run: echo after}}
""",
        )
    repo.commit(files)
    pids = kill_mid_task(repo, store, marks)

    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    assert not any(alive(p) for p in pids)
    run = {name: store.list_runs(name)[0].id for name in ("r", "s", "f")}
    for name, run_id in run.items():
        assert str(store.get_run(run_id).status) == "waiting_decision", name
        assert {n: str(t.status) for n, t in store.run_tasks(run_id).items()} == {
            "deploy": "interrupted",
            "after": "pending",
        }
    shown = as_json("show", str(run["r"]))
    assert shown["status"] == "waiting_decision"
    reasons = {row["workflow"]: (row["ready"], row["reason"]) for row in as_json("status")}
    assert reasons["r"] == ("Reconciling", "WaitingDecision")
    assert "waiting_decision" in [e["kind"] for e in shown["events"]]
    assert "waiting decision" in done.stderr

    decided = podium_all(
        ("retry", str(run["r"])),
        ("skip", str(run["s"]), "deploy"),
        ("fail", str(run["f"]), "deploy", "--by", "ops"),
    )
    assert [d.returncode for d in decided] == [0, 0, 0], [d.stderr for d in decided]
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 1, done.stderr  # the run whose task was failed rolled back

    assert str(store.get_run(run["r"]).status) == "succeeded"
    assert attempt_rows(store, run["r"], "deploy") == [(1, "interrupted"), (2, "succeeded")]
    assert str(store.get_run(run["s"]).status) == "succeeded"
    assert {n: str(t.status) for n, t in store.run_tasks(run["s"]).items()} == {
        "deploy": "skipped",
        "after": "succeeded",
    }
    assert attempt_rows(store, run["s"], "deploy") == [(1, "interrupted")]
    assert str(store.get_run(run["f"]).status) == "rolled_back"
    assert {n: str(t.status) for n, t in store.run_tasks(run["f"]).items()} == {
        "deploy": "failed",
        "after": "cancelled",
    }
    assert not (tmp_path / "undo-f").exists()  # deploy never succeeded: nothing to undo


def test_second_ctrl_c_exits_at_once_and_records_the_interruption(
    repo: GitRepo, store: Store, tmp_path: Path
) -> None:
    """A second SIGTERM stops `reconcile` at once; the attempt is recorded as interrupted."""
    mark = tmp_path / "w"
    repo.commit({WF: workflow("w", f"  - id: slow\n    run: {slow_first_attempt(mark, 30)}\n")})
    agent = spawn("reconcile", "--repo", repo.url)
    try:
        wait_for(lambda: task_pid(mark) is not None, what="the task to start")
        pid = task_pid(mark) or 0
        began = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=15)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
    assert time.monotonic() - began < 8
    assert agent.returncode == 130, err
    assert not alive(pid)
    assert attempt_rows(store, 1, "slow") == [(1, "interrupted")]
    assert str(store.get_run_task(1, "slow").status) == "pending"

    assert podium("reconcile", "--repo", repo.url).returncode == 0
    assert str(store.get_run(1).status) == "succeeded"
    assert attempt_rows(store, 1, "slow") == [(1, "interrupted"), (2, "succeeded")]


# -- secrets -------------------------------------------------------------------------------


def test_secret_never_reaches_the_database_logs_or_cli_output(
    repo: GitRepo, data_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret's value is absent from state.db (+WAL), every data-dir file and all CLI output."""
    secret = "s3cr3t-Tok3n-4f9c2e"
    monkeypatch.setenv("DEPLOY_TOKEN", secret)
    env = "env: {TOKEN: {secret: DEPLOY_TOKEN}}"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - id: leak
    {env}
    run: echo "token=$TOKEN"; echo "$TOKEN" >&2
    rollback: echo "undo $TOKEN"
  - id: boom
    needs: [leak]
    {env}
    retries: {{count: 1, delay: 0}}
    run: echo "failing with $TOKEN"; exit 7
""",
            )
        }
    )
    outputs = [podium("reconcile", "--repo", repo.url)]
    assert outputs[0].returncode == 1
    views = podium_all(
        ("show", "1"),
        ("show", "1", "--json"),
        ("runs", "--json"),
        ("logs", "1", "leak"),
        ("logs", "1", "leak", "--rollback"),
        ("logs", "1", "boom", "--attempt", "1", "--json"),
    )
    for view in views:
        assert view.returncode == 0, (view.args, view.stderr)
    outputs += views
    text = "\n".join(o.stdout + o.stderr for o in outputs)
    assert "token=***" in text and "failing with ***" in text and "undo ***" in text
    assert secret not in text

    files = [p for p in data_dir.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"state.db", "state.db-wal"} <= names  # the test's open store keeps the WAL
    assert [p for p in files if "logs" in p.parts]
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


# -- plan ------------------------------------------------------------------------------


def test_plan_exit_codes_and_formats(repo: GitRepo, data_dir: Path, store: Store) -> None:
    """plan exits 2 with work outstanding, 0 when up to date, 1 on error; json and markdown."""
    repo.commit(
        {WF: workflow("w", "  - {id: a, run: echo a}\n  - {id: b, needs: [a], run: echo b}\n")}
    )
    # one at a time: plans fetch into the same cache (see the report on GitSource)
    text = podium("plan", "--repo", repo.url)
    doc = podium("plan", "--repo", repo.url, "--format", "json")
    md = podium("plan", "--repo", repo.url, "--format", "markdown")
    assert (text.returncode, doc.returncode, md.returncode) == (2, 2, 2), text.stderr
    assert "+ a" in text.stdout and "+ b" in text.stdout and "2 tasks to run" in text.stdout
    plan = json.loads(doc.stdout)
    assert plan["revision"] == repo.head() and plan["outstanding"] == 2
    assert [(t["id"], t["action"], t["reason"]) for t in plan["workflows"][0]["tasks"]] == [
        ("a", "create", "new"),
        ("b", "create", "new"),
    ]
    assert md.stdout.startswith("### Podium plan") and "| + | `a` | new |" in md.stdout

    reconcile(repo, data_dir)
    done = podium("plan", "--repo", repo.url, "--json")
    missing, unknown = podium_all(
        ("plan", "--repo", str(repo.bare.parent / "nowhere")),
        ("plan", "--repo", repo.url, "--revision", "no-such-branch"),
    )
    assert done.returncode == 0 and json.loads(done.stdout)["outstanding"] == 0
    assert missing.returncode == 1
    assert missing.stderr.startswith("podium: error:") and "Traceback" not in missing.stderr
    assert unknown.returncode == 1 and "no-such-branch" in unknown.stderr

    (repo.bare / "HEAD").write_text("garbage\n")  # the remote breaks: fetches fail
    offline = podium("plan", "--repo", repo.url, "--json")
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["revision"] == plan["revision"]
    assert "podium: warning: fetching" in offline.stderr
    assert store.events(kind="source_unreachable") == []  # a plan only looks


def test_plan_revision_of_an_unmerged_branch(repo: GitRepo, data_dir: Path) -> None:
    """`plan --revision BRANCH` plans that branch; the tracked branch stays up to date."""
    repo.commit({WF: workflow("w", "  - {id: a, run: echo a}\n  - {id: b, run: echo b}\n")})
    reconcile(repo, data_dir)
    repo.switch("feature", create=True)
    feature = repo.commit(
        {WF: workflow("w", "  - {id: a, run: echo a2}\n  - {id: b, run: echo b}\n")},
        push=False,
    )
    repo.push("feature")

    branch = podium("plan", "--repo", repo.url, "--revision", "feature", "--json")
    main = podium("plan", "--repo", repo.url)
    assert branch.returncode == 2, branch.stderr
    doc = json.loads(branch.stdout)
    assert doc["revision"] == feature
    (wf,) = doc["workflows"]
    assert [(t["id"], t["reason"]) for t in wf["tasks"]] == [("a", "changed")]
    assert wf["up_to_date"] == ["b"]
    assert main.returncode == 0, main.stdout


def test_invalid_workflow_keeps_its_last_good_definition(
    repo: GitRepo, data_dir: Path, store: Store
) -> None:
    """A file broken at a new revision keeps its last good definition; others run; errors shown."""
    good = workflow("good", "  - {id: g, run: echo g1}\n")
    repo.commit({WF: workflow("w", "  - {id: a, run: echo a}\n"), "workflows/good.yaml": good})
    reconcile(repo, data_dir)
    broken = workflow("w", "  - id: a\n    run: echo a2\n    colour: blue\n")
    repo.commit({WF: broken, "workflows/good.yaml": good.replace("g1", "g2")})
    problem = "workflows/w.yaml:5: unknown key 'colour' in tasks[0]"

    text = podium("plan", "--repo", repo.url)
    assert text.returncode == 1
    assert problem in text.stdout
    assert "keeping last good definition" in text.stdout
    assert "+ g" not in text.stdout and "~ g  changed" in text.stdout

    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 1, done.stderr  # a stalled workflow, though the others ran
    assert problem in done.stderr
    assert [str(r.status) for r in store.list_runs("good")] == ["succeeded", "succeeded"]
    assert len(store.list_runs("w")) == 1
    shown = podium("status", "--json")
    assert shown.returncode == 1  # a workflow is Stalled
    status = {row["workflow"]: row for row in json.loads(shown.stdout)}
    assert status["w"]["ready"] == "Stalled" and status["w"]["reason"] == "ValidationFailed"
    assert status["w"]["validation_errors"] == [problem]
    assert status["good"]["ready"] == "Ready" and status["good"]["validation_errors"] == []

    repo.commit({WF: workflow("w", "  - {id: a, run: echo a3}\n")})
    reconcile(repo, data_dir)
    assert [str(r.status) for r in store.list_runs("w")] == ["succeeded", "succeeded"]
    assert store.files_all()[WF]["problems"] == []


def test_branch_and_path_select_what_is_reconciled(repo: GitRepo, store: Store) -> None:
    """--branch and --path pick the tracked branch and the repository sub-path; tasks run there."""
    repo.commit({"README.md": "main branch\n"})
    repo.switch("release", create=True)
    repo.commit(
        {
            "ops/data.txt": "from the sub-path\n",
            "ops/tools/marker": "",
            "ops/workflows/w.yaml": workflow(
                "w",
                """\
  - {id: read, run: cat data.txt, inputs: [data.txt]}
  - {id: where, workdir: tools, run: ls}
""",
            ),
        },
        push=False,
    )
    repo.push("release")
    source = ("--repo", repo.url, "--branch", "release", "--path", "ops")
    done = podium("reconcile", *source, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["revision"] == repo.head() and summary["problems"] == []
    (run,) = summary["runs"]
    assert (run["workflow"], run["status"], run["tasks"]) == ("w", "succeeded", {"succeeded": 2})
    logs = {a.task: Path(a.log_path or "").read_text() for a in store.attempts(run["id"])}
    assert logs == {"read": "from the sub-path\n", "where": "marker\n"}
    assert podium("plan", *source).returncode == 0


# -- approvals -------------------------------------------------------------------------


def approval_workflow(version: str, log: Path) -> str:
    return workflow(
        "w",
        f"""\
  - id: build
    run: echo build {version}
    rollback: echo unbuild >> {log}
  - id: deploy
    needs: [build]
    approval: {{approvers: [lead@example.com, "@sre"]}}
    run: echo deploy {version}
""",
    )


def test_approval_refusal_approve_reject_and_supersede(
    repo: GitRepo, data_dir: Path, store: Store, tmp_path: Path
) -> None:
    """Outsiders are refused (audited); approve completes, reject rolls back, commits supersede."""
    log = tmp_path / "rollbacks"
    repo.commit({WF: approval_workflow("v1", log)})
    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    assert "podium approve 1 deploy" in done.stderr
    assert str(store.get_run(1).status) == "waiting_approval"
    assert str(store.get_run_task(1, "deploy").status) == "waiting_approval"

    refused = podium("approve", "1", "deploy", "--by", "mallory@example.com")
    assert refused.returncode != 0
    assert "mallory@example.com is not an approver" in refused.stderr
    (event,) = [e for e in as_json("show", "1")["events"] if e["kind"] == "decision_refused"]
    assert event["actor"] == "mallory@example.com" and event["data"]["action"] == "approve"

    ok = podium("approve", "1", "deploy", "--by", "lead@example.com", "--comment", "ship it")
    assert ok.returncode == 0, ok.stderr
    reconcile(repo, data_dir)
    assert str(store.get_run(1).status) == "succeeded"
    (request,) = store.approvals(run_id=1)
    assert (request.status, request.decided_by, request.comment) == (
        "approved",
        "lead@example.com",
        "ship it",
    )

    # reject: the run fails and rolls back what it did
    repo.commit({WF: approval_workflow("v2", log)})
    reconcile(repo, data_dir)
    applied_build = store.applied_rows("w").get("build")
    assert applied_build is not None and applied_build["run_id"] == 2
    no = podium("reject", "2", "deploy", "--by", "lead@example.com", "--reason", "not today")
    assert no.returncode == 0, no.stderr
    assert podium("reconcile", "--repo", repo.url).returncode == 1
    assert str(store.get_run(2).status) == "rolled_back"
    assert log.read_text().split() == ["unbuild"]
    assert "not today" in (store.get_run_task(2, "deploy").error or "")
    restored = store.applied_rows("w").get("build")
    assert restored is not None and restored["run_id"] == 1

    # supersede: a new commit changes the task waiting for approval
    repo.commit({WF: approval_workflow("v3", log)})
    reconcile(repo, data_dir)
    assert str(store.get_run(3).status) == "waiting_approval"
    repo.commit({WF: approval_workflow("v3", log).replace("echo deploy v3", "echo deploy v4")})
    reconcile(repo, data_dir)
    assert str(store.get_run(3).status) == "cancelled"
    assert [a.status for a in store.approvals(run_id=3)] == ["superseded"]
    assert str(store.get_run(4).status) == "waiting_approval"
    assert set(store.run_tasks(4)) == {"deploy"}
    assert [a.status for a in store.approvals(run_id=4)] == ["pending"]
    late, group, fine = (
        podium("approve", "3", "deploy", "--by", "lead@example.com"),
        podium("approve", "4", "deploy", "--by", "oncall@example.com"),
        podium("approve", "4", "deploy", "--by", "lead@example.com"),
    )
    assert late.returncode != 0 and "superseded" in late.stderr
    assert group.returncode != 0  # @sre has no members: this repo has no directory
    assert fine.returncode == 0, fine.stderr
    reconcile(repo, data_dir)
    assert str(store.get_run(4).status) == "succeeded"
    assert not list((data_dir / "checkouts").iterdir())


# -- lease -----------------------------------------------------------------------------


def test_second_agent_is_refused_the_lease_or_waits_for_it(
    repo: GitRepo, store: Store, tmp_path: Path
) -> None:
    """A second reconcile is refused the held lease (or waits with --wait-lease); logs --follow."""
    mark, release = tmp_path / "mark", tmp_path / "release"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - id: hold
    timeout: 30s
    run: |
      echo waiting; touch {mark}
      while [ ! -f {release} ]; do sleep 0.05; done
      echo released
""",
            )
        }
    )
    first = spawn("reconcile", "--repo", repo.url)
    try:
        wait_for(mark.exists, what="the task to start")
        second = podium("reconcile", "--repo", repo.url)
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "lease" in lines[0] and "holds the lease" in lines[0], lines
        assert "--wait-lease" in lines[0]

        waiter = spawn("reconcile", "--repo", repo.url, "--wait-lease")
        follow = spawn("logs", "1", "hold", "--follow")
        time.sleep(0.5)
        assert waiter.poll() is None and follow.poll() is None
        release.touch()
        out, err = follow.communicate(timeout=15)
        assert follow.returncode == 0, err
        assert out.splitlines() == ["waiting", "released"]
        out, err = first.communicate(timeout=15)
        assert first.returncode == 0, err
        out, err = waiter.communicate(timeout=15)
        assert waiter.returncode == 0, err
        assert "Nothing outstanding" in out
    finally:
        release.touch()
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert str(store.get_run(1).status) == "succeeded"
    assert store.lease_holder() is None


# -- logs and JSON views ---------------------------------------------------------------


def test_logs_attempts_and_json_views(repo: GitRepo, data_dir: Path, tmp_path: Path) -> None:
    """`logs` prints a task's output (last or --attempt N); runs/show/status --json parse."""
    counter = tmp_path / "n"
    repo.commit(
        {
            WF: workflow(
                "w",
                f"""\
  - id: t
    retries: {{count: 1, delay: 0}}
    run: |
      n=$(cat {counter} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {counter}
      echo "output of try $n"
      [ $n -ge 2 ]
""",
            )
        }
    )
    reconcile(repo, data_dir)
    last, first, doc, nothing, runs, shown, status = podium_all(
        ("logs", "1", "t"),
        ("logs", "1", "t", "--attempt", "1"),
        ("logs", "1", "t", "--attempt", "1", "--json"),
        ("logs", "1", "t", "--attempt", "3"),
        ("runs", "--json"),
        ("show", "1", "--json"),
        ("status", "--json"),
    )
    assert last.returncode == 0 and last.stdout == "output of try 2\n"
    assert first.returncode == 0 and first.stdout == "output of try 1\n"
    log = json.loads(doc.stdout)
    assert (log["attempt"], log["status"], log["log"]) == (1, "failed", "output of try 1\n")
    assert nothing.returncode == 1 and "no run attempt 3" in nothing.stderr

    (run,) = json.loads(runs.stdout)
    assert (run["id"], run["status"], run["tasks"]) == (1, "succeeded", {"succeeded": 1})
    detail = json.loads(shown.stdout)
    assert [(a["number"], a["status"]) for a in detail["attempts"]] == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert detail["task_details"][0]["attempts"] == 2
    (row,) = json.loads(status.stdout)
    assert (row["workflow"], row["ready"], row["outstanding"]) == ("w", "Ready", 0)
    assert row["last_run"]["status"] == "succeeded"


def test_a_parent_that_ignores_sigchld_does_not_lose_exit_codes(
    repo: GitRepo, store: Store
) -> None:
    """Started by something that ignored SIGCHLD (inherited across exec), podium still gets
    each task's exit code: a succeeding task succeeds and a failing one fails."""
    tasks_yaml = "  - {id: ok, run: 'true'}\n  - {id: bad, run: 'false'}\n"
    repo.commit({WF: workflow("w", tasks_yaml, on_failure="continue")})
    script = (
        "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN);"
        " os.execv(sys.argv[1], sys.argv[1:])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(PODIUM), "reconcile", "--repo", repo.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert done.returncode == 1, done.stderr  # the run failed: 'bad' failed
    (run_id,) = run_ids(store)
    tasks = store.run_tasks(run_id)
    assert (tasks["ok"].status, tasks["bad"].status) == ("succeeded", "failed")
    assert [a.exit_code for a in store.attempts(run_id, "bad")] == [1]
