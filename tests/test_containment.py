"""Containment of attempts run in this process (both kinds): timeouts, cancellation and the
normal end stop every descendant, whatever it did with sessions; orphans of tasks are
reaped by the agent, and its own subprocesses keep their exit codes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.runners.base import OutcomeStatus, TaskContext
from podium.runners.procloop import ProcessLoop
from podium.runners.shell import ShellRunner
from tests.test_containment_cli import cgroup2_writable

PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture(params=["proc-marker", "cgroup2"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The containment this process uses for the test."""
    value: str = request.param
    if value == "cgroup2" and not cgroup2_writable():
        pytest.skip("no writable cgroup2 hierarchy here")
    monkeypatch.setenv("PODIUM_CONTAINMENT", value)
    return value


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Pids a test starts; whatever still runs at the end is killed."""
    started: list[int] = []
    yield started
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def make_ctx(tmp_path: Path, **overrides: Any) -> TaskContext:
    """A context like the engine's: the attempt's marker is in its environment."""
    values: dict[str, Any] = {
        "run_id": 1,
        "workflow": "wf",
        "task_id": "t",
        "attempt": 1,
        "cwd": tmp_path,
        "repo_root": tmp_path,
        "env": {
            "PATH": PATH,
            "PODIUM_ATTEMPT_ID": str(900_000 + os.getpid() % 1000),
            "PODIUM_DATA_DIR": str(tmp_path / "data"),
        },
        "log_path": tmp_path / "logs" / "t.log",
        "grace": 0.3,
    }
    values.update(overrides)
    return TaskContext(**values)


def stat_of(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (None once gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    fields = stat_of(pid)
    return fields is not None and fields[0] != "Z"


def read_pid(path: Path, within: float = 10.0) -> int:
    end = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < end, f"{path} never written"
        time.sleep(0.01)
    return int(path.read_text())


def zombie_children() -> list[int]:
    """This process's children that have ended and wait to be reaped."""
    found = []
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/self/task/{tid}/children").read_text().split():
                fields = stat_of(int(child))
                if fields is not None and fields[0] == "Z":
                    found.append(int(child))
    return found


def test_a_timeout_stops_a_descendant_in_another_session(
    tmp_path: Path, mode: str, pids: list[int]
) -> None:
    """``setsid`` takes a child out of the task's session; the timeout stops it all the same."""
    ctx = make_ctx(tmp_path, timeout=0.5)
    outcome = ShellRunner().run("setsid sleep 300 & echo $! > bg.pid; sleep 30", ctx)
    pids.append(read_pid(tmp_path / "bg.pid"))
    assert outcome.status is OutcomeStatus.TIMED_OUT
    assert not alive(pids[0])


def test_cancel_stops_a_double_forked_descendant_in_another_session(
    tmp_path: Path, mode: str, pids: list[int]
) -> None:
    """A daemon-style double fork (``( setsid sleep & )``) is stopped by a cancellation."""
    ctx = make_ctx(tmp_path)
    threading.Timer(0.5, ctx.cancel.set).start()
    outcome = ShellRunner().run("( setsid sleep 300 & echo $! > bg.pid ); sleep 30", ctx)
    pids.append(read_pid(tmp_path / "bg.pid"))
    assert outcome.status is OutcomeStatus.CANCELLED
    assert not alive(pids[0])


def test_what_a_finished_command_left_in_another_session_is_stopped(
    tmp_path: Path, mode: str, pids: list[int]
) -> None:
    """At the normal end of an attempt, a process it left in a session of its own is
    stopped too, and the outcome is the command's."""
    ctx = make_ctx(tmp_path)
    outcome = ShellRunner().run("setsid sleep 300 & echo $! > bg.pid; sleep 0.2; echo done", ctx)
    pids.append(read_pid(tmp_path / "bg.pid"))
    assert outcome.ok
    assert outcome.output_tail.startswith("done")
    assert not alive(pids[0])


def test_an_orphan_of_a_task_comes_to_the_agent_and_is_reaped(tmp_path: Path, mode: str) -> None:
    """A double-forked short-lived child is handed to the agent (a subreaper), not to init,
    and once the attempt has ended no zombie of it is left."""
    loop = ProcessLoop()
    ctx = make_ctx(tmp_path)
    loop.spawn("t", ["/bin/sh", "-c", "( sleep 0.3 & echo $! > bg.pid ); sleep 1"], ctx)
    orphan = read_pid(tmp_path / "bg.pid")
    fields = stat_of(orphan)
    assert fields is not None and int(fields[1]) == os.getpid()  # its parent is the agent now
    done: list[Any] = []
    end = time.monotonic() + 10
    while len(loop) and time.monotonic() < end:
        done += loop.poll(0.2)
    loop.close()
    assert [outcome.status for _, outcome in done] == [OutcomeStatus.SUCCEEDED]
    assert stat_of(orphan) is None  # ended and reaped: not even a zombie
    assert orphan not in zombie_children()


def test_the_agents_own_subprocesses_keep_their_exit_codes(tmp_path: Path, mode: str) -> None:
    """Reaping orphans of tasks never takes the exit status of a subprocess the agent runs
    itself: a failing git command keeps failing while tasks leave orphans behind."""
    codes: list[int] = []
    stop = threading.Event()

    def git_fails() -> None:
        while not stop.is_set():
            done = subprocess.run(
                ["git", "-C", str(tmp_path), "rev-parse", "--verify", "no-such-ref"],
                capture_output=True,
                env={"PATH": PATH, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)},
            )
            codes.append(done.returncode)

    thread = threading.Thread(target=git_fails)
    thread.start()
    try:
        loop = ProcessLoop()
        for round_ in range(15):
            ctx = make_ctx(tmp_path, log_path=tmp_path / "logs" / f"{round_}.log")
            loop.spawn(round_, ["/bin/sh", "-c", "( true & true & ); ( sleep 0.01 & )"], ctx)
        end = time.monotonic() + 20
        while len(loop) and time.monotonic() < end:
            loop.poll(0.05)
        loop.close()
    finally:
        stop.set()
        thread.join()
    assert codes
    assert set(codes) == {128}


def test_an_attempt_after_one_that_was_killed_runs_normally(tmp_path: Path, mode: str) -> None:
    """Killing an attempt (SIGKILL after the grace) does not spoil the next attempts, whose
    processes may start where the killed one ran."""
    runner = ShellRunner()
    stuck = runner.run('trap "" TERM; sleep 30', make_ctx(tmp_path, timeout=0.3))
    assert stuck.status is OutcomeStatus.TIMED_OUT
    for number in range(5):
        ctx = make_ctx(tmp_path, log_path=tmp_path / "logs" / f"{number}.log")
        outcome = runner.run("sleep 0.05; echo fine", ctx)
        assert (outcome.status, outcome.output_tail) == (OutcomeStatus.SUCCEEDED, "fine")
