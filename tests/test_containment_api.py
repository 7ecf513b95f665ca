"""The containment in force is visible, and :func:`kill_attempt` stops exactly what an
attempt left (its marker, its start time, its data dir), descendants included."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.runners.base import TaskContext
from podium.runners.containment import describe, kill_attempt
from podium.runners.shell import ShellRunner
from tests.test_containment_cli import cgroup2_writable

PATH = "/usr/local/bin:/usr/bin:/bin"
ATTEMPT = 700_000 + os.getpid() % 1000


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Pids a test starts; whatever still runs at the end is killed."""
    started: list[int] = []
    yield started
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def read_pid(path: Path) -> int:
    end = time.monotonic() + 10
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < end, f"{path} never written"
        time.sleep(0.01)
    return int(path.read_text())


def describe_base() -> str:
    """This process's own cgroup2 directory, as the cgroup2 containment sees it."""
    from podium.runners.cgroups import cgroup2_dir

    found, why = cgroup2_dir()
    assert found is not None, why
    return str(found)


def leave_behind(tmp_path: Path, data_dir: Path, script: str) -> None:
    """Run the shell text ``script`` detached with an attempt's marker, as a dead agent's task
    would have: the shell that started it exits at once, and it lives on without it."""
    env = {"PATH": PATH, "PODIUM_ATTEMPT_ID": str(ATTEMPT), "PODIUM_DATA_DIR": str(data_dir)}
    (tmp_path / "task.sh").write_text(script)
    subprocess.run(["/bin/sh", "-c", "/bin/sh task.sh &"], env=env, cwd=tmp_path, check=True)


def test_a_forced_proc_marker_containment_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """describe() names the containment in force and why; the agent is a child subreaper."""
    monkeypatch.setenv("PODIUM_CONTAINMENT", "proc-marker")
    assert describe() == {
        "containment": "proc-marker",
        "reason": "PODIUM_CONTAINMENT=proc-marker",
        "subreaper": "yes",
    }


def test_the_automatic_choice_names_a_path_or_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this machine allows, describe() tells which containment and where or why."""
    monkeypatch.delenv("PODIUM_CONTAINMENT", raising=False)
    shown = describe()
    assert shown["containment"] in ("cgroup2", "proc-marker")
    assert shown.get("path" if shown["containment"] == "cgroup2" else "reason")


def test_a_cgroup2_attempt_runs_in_its_own_cgroup_below_the_described_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With cgroup2, a task (and what it forks at once) sits in a slot below the path that
    describe() gives for its data dir."""
    if not cgroup2_writable():
        pytest.skip("no writable cgroup2 hierarchy here")
    monkeypatch.setenv("PODIUM_CONTAINMENT", "cgroup2")
    data_dir = tmp_path / "data"
    env = {"PATH": PATH, "PODIUM_ATTEMPT_ID": str(ATTEMPT), "PODIUM_DATA_DIR": str(data_dir)}
    ctx = TaskContext(1, "wf", "t", 1, tmp_path, tmp_path, env, tmp_path / "t.log")
    command = "sleep 1 & cat /proc/$!/cgroup > child.txt; cat /proc/self/cgroup > own.txt"
    assert ShellRunner().run(command, ctx).ok
    shown = describe(data_dir)
    assert shown["containment"] == "cgroup2"
    parent = Path(shown["path"])
    own = (tmp_path / "own.txt").read_text().splitlines()
    assert own == (tmp_path / "child.txt").read_text().splitlines()
    (v2,) = [line for line in own if line.startswith("0::/")]
    slot = v2.split("/")[-3:]
    assert (slot[0], slot[1].startswith("agent-"), slot[2].startswith("slot-")) == (
        parent.name,
        True,
        True,
    )
    assert (parent / slot[1] / slot[2]).is_dir()


def test_the_choice_is_logged_once(tmp_path: Path) -> None:
    """The containment in force is logged once at start, however often it is asked for."""
    code = "from podium.runners.containment import containment\ncontainment(); containment()\n"
    env = {**os.environ, "PODIUM_CONTAINMENT": "proc-marker"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "containment" in line]
    assert len(lines) == 1
    assert "containment_selected" in lines[0] and "proc-marker" in lines[0]


def test_kill_attempt_stops_the_marked_processes_and_their_descendants(
    tmp_path: Path, pids: list[int]
) -> None:
    """Processes of the attempt in other sessions, and a descendant that dropped the marker,
    are all gone when kill_attempt returns."""
    data_dir = tmp_path / "data"
    began = time.time()
    leave_behind(
        tmp_path,
        data_dir,
        "setsid sh -c 'env -i sleep 300 & echo $! > bare.pid; sleep 300' & echo $! > lead.pid",
    )
    pids += [read_pid(tmp_path / "lead.pid"), read_pid(tmp_path / "bare.pid")]
    assert all(alive(pid) for pid in pids)
    assert kill_attempt(ATTEMPT, began, data_dir, grace=1.0)
    assert not any(alive(pid) for pid in pids)


def test_kill_attempt_uses_sigkill_after_the_grace(tmp_path: Path, pids: list[int]) -> None:
    """A process that ignores SIGTERM is killed once the grace is over."""
    data_dir = tmp_path / "data"
    began = time.time()
    leave_behind(tmp_path, data_dir, "trap '' TERM; echo $$ > p.pid; while :; do sleep 0.05; done")
    pids.append(read_pid(tmp_path / "p.pid"))
    assert alive(pids[0])
    assert kill_attempt(ATTEMPT, began, data_dir, grace=0.3)
    assert not alive(pids[0])


def test_kill_attempt_spares_other_data_dirs_and_older_processes(
    tmp_path: Path, pids: list[int]
) -> None:
    """The same attempt id of another data dir, or a process that started before the attempt
    (a pid the marker matches by chance), is left alone."""
    data_dir = tmp_path / "data"
    leave_behind(tmp_path, data_dir, "echo $$ > p.pid; exec sleep 300")
    pids.append(read_pid(tmp_path / "p.pid"))
    assert kill_attempt(ATTEMPT, time.time() - 60, tmp_path / "other", grace=0.3)
    assert kill_attempt(ATTEMPT + 1, time.time() - 60, data_dir, grace=0.3)
    assert kill_attempt(ATTEMPT, time.time() + 60, data_dir, grace=0.3)
    assert alive(pids[0])
    assert kill_attempt(ATTEMPT, time.time() - 60, data_dir / ".." / "data", grace=0.3)
    assert not alive(pids[0])


def test_a_cgroup_is_emptied_by_freezing_where_cgroup_kill_is_missing(tmp_path: Path) -> None:
    """Kernels without cgroup.kill (before 5.14): the cgroup is frozen, so that nothing forks
    meanwhile, each member gets SIGKILL, and it is thawed again."""
    from podium.runners.cgroups import kill_cgroup  # the kernel-dependent step itself
    from podium.runners.spawn import CgroupTarget, spawn

    if not cgroup2_writable():
        pytest.skip("no writable cgroup2 hierarchy here")
    base = Path(describe_base())
    path = base / f"freeze-test-{os.getpid()}"
    path.mkdir()
    try:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
        script = "sh -c 'sleep 300' & setsid sleep 300 & sleep 300"
        child, pipe = spawn(
            ["/bin/sh", "-c", script], tmp_path, {"PATH": PATH}, 0, CgroupTarget(str(path), fd)
        )
        os.close(fd)
        os.close(pipe)
        end = time.monotonic() + 5
        while len((path / "cgroup.procs").read_text().split()) < 4:
            assert time.monotonic() < end
            time.sleep(0.01)
        kill_cgroup(path, kill_file=False)
        assert child.wait() == -signal.SIGKILL
        end = time.monotonic() + 5
        while (path / "cgroup.procs").read_text().strip():
            assert time.monotonic() < end, "members survived"
            time.sleep(0.01)
        assert "frozen 0" in (path / "cgroup.events").read_text()
    finally:
        path.rmdir()
