"""Every attempt is contained, through the real CLI and with each containment: nothing a task
starts outlives a crash of the agent or a timeout, whatever it does with sessions."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from podium.store import Store, open_store
from tests.gitrepo import GitRepo, workflow

PODIUM = Path(sys.executable).parent / "podium"
WF = "workflows/w.yaml"


def cgroup2_writable() -> bool:
    """Whether this process's cgroup is in a cgroup2 hierarchy where it may create cgroups."""
    try:
        own = next(
            line[3:].strip()
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.startswith("0::")
        )
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except (OSError, StopIteration):
        return False
    for line in mounts:
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        if tail.startswith("cgroup2 ") and own.startswith(parts[3]):
            probe = Path(parts[4]) / own[len(parts[3]) :].lstrip("/") / f"probe-{os.getpid()}"
            try:
                probe.mkdir()
                probe.rmdir()
            except OSError:
                return False
            return True
    return False


@pytest.fixture(params=["proc-marker", "cgroup2"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The containment the CLI is told to use (cgroup2 only where one can be created)."""
    value: str = request.param
    if value == "cgroup2" and not cgroup2_writable():
        pytest.skip("no writable cgroup2 hierarchy here")
    monkeypatch.setenv("PODIUM_CONTAINMENT", value)
    return value


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    s = open_store(data_dir / "state.db")
    yield s
    s.close()


def podium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PODIUM), *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for(check: Callable[[], bool], timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def kill_agent_at(repo: GitRepo, started: Callable[[], bool], after: float) -> float:
    """Run `podium reconcile`, SIGKILL it ``after`` seconds once ``started()``; return when
    (monotonic) the task had started."""
    agent = subprocess.Popen(
        [str(PODIUM), "reconcile", "--repo", repo.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    try:
        wait_for(started)
        began = time.monotonic()
        time.sleep(after)
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
    return began


def test_a_restart_stops_the_children_of_an_attempt_whose_shell_exited_meanwhile(
    repo: GitRepo, store: Store, tmp_path: Path, mode: str
) -> None:
    """The issue's repro: the agent dies, the task's shell exits, its child lives on; the
    restarted agent stops that child before the re-run, so the late line is never written."""
    out = tmp_path / "L"
    task = f"""\
  - id: t
    run: |
      echo "start $PODIUM_ATTEMPT" >> {out}
      if [ "$PODIUM_ATTEMPT" = 1 ]; then ( sleep 5; echo late >> {out} ) & fi
      sleep 1.5
"""
    repo.commit({WF: workflow("w", task)})
    began = kill_agent_at(repo, lambda: out.exists(), after=1.0)
    time.sleep(max(0.0, began + 2.0 - time.monotonic()))  # the old shell has exited by now

    done = podium("reconcile", "--repo", repo.url)
    assert done.returncode == 0, done.stderr
    time.sleep(max(0.0, began + 5.8 - time.monotonic()))  # past when "late" would come
    assert out.read_text().splitlines() == ["start 1", "start 2"]
    (run,) = store.list_runs("w")
    assert [(a.number, a.status) for a in store.attempts(run.id, "t")] == [
        (1, "interrupted"),
        (2, "succeeded"),
    ]


def test_a_timeout_stops_a_child_that_called_setsid(
    repo: GitRepo, store: Store, tmp_path: Path, mode: str
) -> None:
    """``setsid sleep 300 &`` leaves the task's session and group; the timeout still stops it."""
    pidfile = tmp_path / "pid"
    task = f"""\
  - id: t
    timeout: 1s
    run: |
      setsid sleep 300 &
      echo $! > {pidfile}
      sleep 30
"""
    repo.commit({WF: workflow("w", task)})
    done = podium("reconcile", "--repo", repo.url)
    pid = int(pidfile.read_text())
    try:
        assert done.returncode != 0
        (run,) = store.list_runs("w")
        assert [a.status for a in store.attempts(run.id, "t")] == ["timed_out"]
        assert not alive(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_in_a_cgroup_a_restart_stops_even_a_child_that_dropped_its_environment(
    repo: GitRepo, store: Store, tmp_path: Path, mode: str
) -> None:
    """With cgroup2, a child that cleared its environment (no marker), left the session and
    lost its parent is still stopped by the restarted agent."""
    if mode != "cgroup2":
        pytest.skip("only a cgroup holds a process that carries no marker")
    pidfile = tmp_path / "pid"
    task = f"""\
  - id: t
    run: |
      if [ "$PODIUM_ATTEMPT" = 1 ]; then env -i setsid sleep 300 & echo $! > {pidfile}; fi
      sleep 1
"""
    repo.commit({WF: workflow("w", task)})
    began = kill_agent_at(repo, lambda: pidfile.exists() and bool(pidfile.read_text()), 0.3)
    pid = int(pidfile.read_text())
    try:
        time.sleep(max(0.0, began + 1.5 - time.monotonic()))  # the shell is gone
        assert alive(pid)
        done = podium("reconcile", "--repo", repo.url)
        assert done.returncode == 0, done.stderr
        assert not alive(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
