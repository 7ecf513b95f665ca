"""Shell attempts supervised from one thread: outcomes, output, timeouts, cancellation."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from podium.runners.base import Outcome, OutcomeStatus, TaskContext
from podium.runners.procloop import ProcessLoop


def _ctx(tmp_path: Path, name: str, timeout: float | None = None) -> TaskContext:
    return TaskContext(
        run_id=1,
        workflow="w",
        task_id=name,
        attempt=1,
        cwd=tmp_path,
        repo_root=tmp_path,
        env={"PATH": os.environ["PATH"], "SECRET_X": "hunter22"},
        log_path=tmp_path / "logs" / f"{name}.log",
        timeout=timeout,
        grace=0.3,
        redact=lambda s: s.replace("hunter22", "***"),
    )


def _run_all(loop: ProcessLoop, limit: float = 15.0) -> dict[object, Outcome]:
    done: dict[object, Outcome] = {}
    end = time.monotonic() + limit
    while len(loop) and time.monotonic() < end:
        done.update(loop.poll(0.2))
    assert len(loop) == 0, "attempts still running"
    return done


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_many_attempts_report_their_exit_codes_and_output(tmp_path: Path) -> None:
    """Several attempts at once: each outcome matches its command; output is redacted."""
    loop = ProcessLoop()
    commands = {"ok": "echo hello", "bad": "echo oops; exit 3", "secret": "echo $SECRET_X"}
    for key, cmd in commands.items():
        assert loop.spawn(key, ["/bin/sh", "-c", cmd], _ctx(tmp_path, key)) is None
    done = _run_all(loop)
    assert done["ok"].status is OutcomeStatus.SUCCEEDED and done["ok"].output_tail == "hello"
    assert (done["bad"].status, done["bad"].exit_code) == (OutcomeStatus.FAILED, 3)
    assert done["secret"].output_tail == "***"
    assert "hunter22" not in (tmp_path / "logs" / "secret.log").read_text()
    loop.close()


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    """A timed-out attempt's grandchildren die with it (TERM, grace, KILL)."""
    loop = ProcessLoop()
    pidfile = tmp_path / "child.pid"
    cmd = f"sleep 30 & echo $! > {pidfile}; trap '' TERM; wait"
    loop.spawn("slow", ["/bin/sh", "-c", cmd], _ctx(tmp_path, "slow", timeout=0.5))
    began = time.monotonic()
    outcome = _run_all(loop)["slow"]
    assert outcome.status is OutcomeStatus.TIMED_OUT
    assert time.monotonic() - began < 5
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(pid)
    loop.close()


def test_cancel_and_leftover_processes(tmp_path: Path) -> None:
    """Cancel stops a running attempt; processes left behind by a finished one are stopped."""
    loop = ProcessLoop()
    ctx = _ctx(tmp_path, "long")
    loop.spawn("long", ["/bin/sh", "-c", "sleep 30"], ctx)
    pidfile = tmp_path / "bg.pid"
    loop.spawn("bg", ["/bin/sh", "-c", f"sleep 30 & echo $! > {pidfile}"], _ctx(tmp_path, "bg"))
    threading.Timer(0.3, ctx.cancel.set).start()
    done = _run_all(loop)
    assert done["long"].status is OutcomeStatus.CANCELLED
    assert done["bg"].status is OutcomeStatus.SUCCEEDED
    assert _dead(int(pidfile.read_text()))
    loop.close()


def test_spawn_failure_is_an_immediate_outcome(tmp_path: Path) -> None:
    """A missing working directory fails at once with a clear error, nothing left running."""
    loop = ProcessLoop()
    ctx = _ctx(tmp_path / "missing", "x")
    ctx.log_path = tmp_path / "x.log"
    outcome = loop.spawn("x", ["/bin/sh", "-c", "true"], ctx)
    assert outcome is not None and outcome.status is OutcomeStatus.FAILED
    assert "cannot start" in (outcome.error or "")
    assert len(loop) == 0
    loop.close()
