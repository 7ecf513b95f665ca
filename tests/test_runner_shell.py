"""Tests for the shell runner: real /bin/sh processes, process groups, limits and logs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from podium.runners.base import OutcomeStatus, TaskContext
from podium.runners.shell import ShellRunner

PATH = "/usr/local/bin:/usr/bin:/bin"


def make_ctx(tmp_path: Path, **overrides: Any) -> TaskContext:
    """A context running in ``tmp_path`` with a minimal environment."""
    values: dict[str, Any] = {
        "run_id": 1,
        "workflow": "wf",
        "task_id": "t",
        "attempt": 1,
        "cwd": tmp_path,
        "repo_root": tmp_path,
        "env": {"PATH": PATH},
        "log_path": tmp_path / "logs" / "t.log",
        "grace": 0.3,
    }
    values.update(overrides)
    return TaskContext(**values)


def is_dead(pid: int) -> bool:
    """True when ``pid`` no longer runs (gone, or a zombie nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def wait_dead(pid: int, within: float = 2.0) -> bool:
    """Whether ``pid`` is dead within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if is_dead(pid):
            return True
        time.sleep(0.02)
    return is_dead(pid)


def test_exit_zero_succeeds(tmp_path: Path) -> None:
    """A command exiting 0 succeeds with exit code 0."""
    outcome = ShellRunner().run("true", make_ctx(tmp_path))
    assert outcome.status is OutcomeStatus.SUCCEEDED
    assert outcome.exit_code == 0
    assert outcome.error is None
    assert outcome.duration > 0


def test_nonzero_exit_fails_with_code(tmp_path: Path) -> None:
    """A non-zero exit fails and reports the exit code."""
    outcome = ShellRunner().run("exit 3", make_ctx(tmp_path))
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.exit_code == 3


def test_death_by_signal_is_reported(tmp_path: Path) -> None:
    """A command killed by a signal fails with the negative signal number."""
    outcome = ShellRunner().run("kill -KILL $$", make_ctx(tmp_path))
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.exit_code == -signal.SIGKILL
    assert outcome.error == "killed by SIGKILL"


def test_output_goes_to_log_and_tail_has_last_lines(tmp_path: Path) -> None:
    """stdout and stderr land in the log file; the tail holds the last lines."""
    ctx = make_ctx(tmp_path, tail_lines=2)
    outcome = ShellRunner().run("for i in 1 2 3 4; do echo out$i; done; echo err >&2", ctx)
    assert ctx.log_path.read_text() == "out1\nout2\nout3\nout4\nerr\n"
    assert outcome.output_tail == "out4\nerr"


def test_env_is_exactly_the_task_env(tmp_path: Path) -> None:
    """The command sees the task's env and nothing from the agent's own environment."""
    os.environ["PODIUM_TEST_AGENT_ONLY"] = "leak"
    try:
        ctx = make_ctx(tmp_path, env={"PATH": PATH, "GREETING": "hello there"})
        ShellRunner().run('echo "$GREETING|${PODIUM_TEST_AGENT_ONLY:-unset}"', ctx)
    finally:
        del os.environ["PODIUM_TEST_AGENT_ONLY"]
    assert ctx.log_path.read_text() == "hello there|unset\n"


def test_parameter_values_are_never_shell_code(tmp_path: Path) -> None:
    """Hostile parameter values passed via env are printed, not executed."""
    env = {"PATH": PATH, "P1": "$(touch pwned)", "P2": "; touch pwned2", "P3": "`touch pwned3`"}
    ctx = make_ctx(tmp_path, env=env)
    outcome = ShellRunner().run('echo "$P1" $P2 "$P3"', ctx)
    assert outcome.ok
    assert not any((tmp_path / name).exists() for name in ("pwned", "pwned2", "pwned3"))
    assert ctx.log_path.read_text() == "$(touch pwned) ; touch pwned2 `touch pwned3`\n"


def test_on_spawn_gets_the_process_group_leader(tmp_path: Path) -> None:
    """on_spawn receives the pid, which leads its own process group."""
    seen: list[tuple[int, int]] = []
    ctx = make_ctx(tmp_path, on_spawn=lambda pid: seen.append((pid, os.getpgid(pid))))
    ShellRunner().run("true", ctx)
    assert len(seen) == 1
    assert seen[0][0] == seen[0][1] != os.getpgid(0)


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    """On timeout the group gets TERM; a background grandchild dies with it."""
    ctx = make_ctx(tmp_path, timeout=0.5)
    start = time.monotonic()
    outcome = ShellRunner().run("sleep 30 & echo $! > child.pid; sleep 30", ctx)
    assert outcome.status is OutcomeStatus.TIMED_OUT
    assert outcome.error == "timed out after 0.5s"
    assert time.monotonic() - start < 3
    assert wait_dead(int((tmp_path / "child.pid").read_text()))
    assert "timed out" in outcome.output_tail


def test_term_ignoring_child_is_killed_after_grace(tmp_path: Path) -> None:
    """A command ignoring SIGTERM gets SIGKILL once the grace period is over."""
    ctx = make_ctx(tmp_path, timeout=0.3, grace=0.3)
    start = time.monotonic()
    outcome = ShellRunner().run('trap "" TERM; sleep 30', ctx)
    elapsed = time.monotonic() - start
    assert outcome.status is OutcomeStatus.TIMED_OUT
    assert outcome.exit_code == -signal.SIGKILL
    assert 0.55 < elapsed < 3
    assert "SIGKILL" in ctx.log_path.read_text()


def test_cancel_event_stops_the_task(tmp_path: Path) -> None:
    """Setting the cancel event stops a running task, which reports CANCELLED."""
    ctx = make_ctx(tmp_path)
    timer = threading.Timer(0.2, ctx.cancel.set)
    timer.start()
    start = time.monotonic()
    outcome = ShellRunner().run("sleep 30", ctx)
    timer.join()
    assert outcome.status is OutcomeStatus.CANCELLED
    assert time.monotonic() - start < 2


def test_cancelled_before_start_runs_nothing(tmp_path: Path) -> None:
    """A task whose cancel event is already set never starts."""
    ctx = make_ctx(tmp_path)
    ctx.cancel.set()
    outcome = ShellRunner().run("touch ran", ctx)
    assert outcome.status is OutcomeStatus.CANCELLED
    assert not (tmp_path / "ran").exists()


def test_leftover_background_process_is_stopped(tmp_path: Path) -> None:
    """A process the command left running is terminated once the command exits."""
    ctx = make_ctx(tmp_path)
    outcome = ShellRunner().run("sleep 30 & echo $! > bg.pid", ctx)
    assert outcome.status is OutcomeStatus.SUCCEEDED
    assert wait_dead(int((tmp_path / "bg.pid").read_text()))


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid(1)")
def test_pipe_held_by_detached_process_does_not_hang(tmp_path: Path) -> None:
    """A process that left the group but holds the pipe open does not block the runner."""
    ctx = make_ctx(tmp_path)
    start = time.monotonic()
    outcome = ShellRunner().run("setsid sleep 30 & echo $! > detached.pid; echo done", ctx)
    pid = int((tmp_path / "detached.pid").read_text())
    try:
        assert outcome.ok
        assert time.monotonic() - start < 2
        assert outcome.output_tail.startswith("done")
    finally:
        with contextlib.suppress(ProcessLookupError):  # a cgroup may have stopped it already
            os.kill(pid, signal.SIGKILL)


def test_secret_is_redacted_from_log(tmp_path: Path) -> None:
    """A secret the task prints never reaches the log file or the tail."""
    ctx = make_ctx(
        tmp_path,
        env={"PATH": PATH, "TOKEN": "secret"},
        redact=lambda text: text.replace("secret", "***"),
    )
    outcome = ShellRunner().run('echo "token=$TOKEN"', ctx)
    assert "secret" not in ctx.log_path.read_text()
    assert "token=***" in ctx.log_path.read_text()
    assert "secret" not in outcome.output_tail


def test_secret_written_in_two_chunks_is_redacted(tmp_path: Path) -> None:
    """A secret printed in two pieces with a pause between them is still redacted."""
    ctx = make_ctx(tmp_path, redact=lambda text: text.replace("secret", "***"))
    outcome = ShellRunner().run("printf 'sec'; sleep 0.2; printf 'ret\\n'", ctx)
    assert outcome.ok
    assert ctx.log_path.read_text() == "***\n"


def test_log_rotates_at_max_bytes(tmp_path: Path) -> None:
    """Output beyond log_max_bytes rotates to .1 and the disk use stays bounded."""
    ctx = make_ctx(tmp_path, log_max_bytes=1000)
    ShellRunner().run("i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done", ctx)
    rotated = ctx.log_path.with_name("t.log.1")
    assert rotated.exists()
    assert ctx.log_path.stat().st_size <= 1000
    assert rotated.stat().st_size <= 1000
    assert ctx.log_path.read_text().endswith("line-499\n")


def test_missing_cwd_fails_without_raising(tmp_path: Path) -> None:
    """A working directory that does not exist is a failed outcome with an error."""
    ctx = make_ctx(tmp_path, cwd=tmp_path / "missing")
    outcome = ShellRunner().run("true", ctx)
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.error is not None
    assert "missing" in outcome.error
    assert outcome.exit_code is None


def test_many_short_tasks_are_cheap(tmp_path: Path) -> None:
    """Short tasks cost little more than the fork/exec itself."""
    runner = ShellRunner()
    start = time.monotonic()
    for number in range(50):
        ctx = make_ctx(tmp_path, log_path=tmp_path / "logs" / f"{number}.log")
        assert runner.run("true", ctx).ok
    assert time.monotonic() - start < 2.5


def test_leftover_process_that_keeps_writing_is_stopped(tmp_path: Path) -> None:
    """A process left behind that floods the shared pipe neither stalls the runner nor
    survives: the command's exit is noticed and the group is stopped."""
    ctx = make_ctx(tmp_path, log_max_bytes=4096)
    start = time.monotonic()
    outcome = ShellRunner().run("yes flood & echo $! > bg.pid; exit 0", ctx)
    assert outcome.status is OutcomeStatus.SUCCEEDED
    assert time.monotonic() - start < 10
    assert wait_dead(int((tmp_path / "bg.pid").read_text()))
    assert ctx.log_path.stat().st_size <= 4096
