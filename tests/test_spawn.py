"""Starting task processes (podium.runners.spawn): what a task may rely on, on both paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.runners.spawn import CgroupTarget, Child, spawn

PY = sys.executable
ENV = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C"}


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Spawn, read the whole output, reap: (exit code, output)."""
    with open(os.devnull, "rb") as stdin:
        child, pipe = spawn(argv, cwd, ENV if env is None else env, stdin.fileno())
    chunks = []
    with os.fdopen(pipe, "rb") as out:
        while data := out.read(65536):
            chunks.append(data)
    return child.wait(), b"".join(chunks).decode()


def test_runs_in_the_given_directory_and_leaves_the_callers_alone(tmp_path: Path) -> None:
    before = os.getcwd()
    code, out = run([PY, "-c", "import os; print(os.getcwd())"], tmp_path)
    assert (code, out.strip()) == (0, str(tmp_path))
    assert os.getcwd() == before


def test_other_threads_never_see_the_task_directory(tmp_path: Path) -> None:
    """The spawning thread steps into the task's directory; no other thread moves with it."""
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(os.getcwd())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(100):
            assert run(["/bin/true"], tmp_path)[0] == 0
    finally:
        stop.set()
        watcher.join()
    assert str(tmp_path) not in seen
    assert seen


def test_environment_is_exactly_the_given_one(tmp_path: Path) -> None:
    env = {"PATH": ENV["PATH"], "ONLY": "this"}
    code, out = run(["/usr/bin/env"], tmp_path, env)
    assert code == 0
    assert sorted(out.splitlines()) == ["ONLY=this", f"PATH={ENV['PATH']}"]


def test_child_leads_a_new_session_with_dev_null_stdin_and_merged_output(tmp_path: Path) -> None:
    script = (
        "import os, sys; print(os.getsid(0) == os.getpid() == os.getpgid(0));"
        " print(repr(sys.stdin.read())); sys.stdout.flush();"
        " print('to stderr', file=sys.stderr)"
    )
    code, out = run([PY, "-c", script], tmp_path)
    assert code == 0
    assert out.splitlines() == ["True", "''", "to stderr"]


def test_sigpipe_and_sigxfsz_are_not_ignored_in_the_child(tmp_path: Path) -> None:
    """Python ignores SIGPIPE; a task's ``yes | head -1`` must still end by SIGPIPE."""
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # the premise
    code, out = run(["/bin/sh", "-c", "exec grep SigIgn /proc/self/status"], tmp_path)
    assert code == 0
    ignored = int(out.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert not ignored & (1 << (signal.SIGXFSZ - 1))


def test_signal_mask_is_empty_in_the_child(tmp_path: Path) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        code, out = run(["/bin/sh", "-c", "exec grep SigBlk /proc/self/status"], tmp_path)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    assert code == 0
    assert int(out.split()[1], 16) == 0


def test_no_descriptor_of_the_agent_reaches_the_task(tmp_path: Path) -> None:
    """Even one the agent was started with as inheritable (like a shell's ``3>file``)."""
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
leak = os.open({str(tmp_path / "leak")!r}, os.O_WRONLY | os.O_CREAT)
os.set_inheritable(leak, True)
from podium.runners.spawn import spawn
child, pipe = spawn(["/bin/ls", "/proc/self/fd"], {str(tmp_path)!r}, {{}}, 0)
out = b""
while data := os.read(pipe, 65536):
    out += data
child.wait()
print(sorted(int(fd) for fd in out.split()))
"""
    done = subprocess.run([PY, "-c", script], capture_output=True, text=True, check=True)
    # 0-2, and the directory ls itself opened to list /proc/self/fd
    assert done.stdout.strip() == "[0, 1, 2, 3]"


def test_a_program_that_cannot_run_raises_and_leaks_nothing(tmp_path: Path) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("#!/bin/sh\necho hi\n")
    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError):
        spawn([str(tmp_path / "missing")], tmp_path, ENV, 0)
    with pytest.raises(PermissionError):
        spawn([str(plain)], tmp_path, ENV, 0)
    with pytest.raises(FileNotFoundError):
        spawn(["/bin/true"], tmp_path / "no-such-dir", ENV, 0)
    assert len(os.listdir("/proc/self/fd")) == fds


def test_bare_program_names_are_found_in_the_tasks_path(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "podium-test-tool"
    tool.write_text("#!/bin/sh\necho found me\n")
    tool.chmod(0o755)
    code, out = run(["podium-test-tool"], tmp_path, {"PATH": f"{bindir}:/usr/bin:/bin"})
    assert (code, out) == (0, "found me\n")


def test_exit_codes_and_signal_deaths(tmp_path: Path) -> None:
    assert run(["/bin/sh", "-c", "exit 7"], tmp_path)[0] == 7
    child, pipe = spawn(["/bin/sleep", "30"], tmp_path, ENV, 0)
    os.close(pipe)
    assert child.poll() is None
    os.killpg(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    assert child.poll() == -signal.SIGKILL


def test_a_child_reaped_by_someone_else_does_not_hang(tmp_path: Path) -> None:
    child, pipe = spawn(["/bin/true"], tmp_path, ENV, 0)
    os.close(pipe)
    time.sleep(0.05)
    os.waitpid(child.pid, 0)
    assert isinstance(child, Child)
    assert child.wait() == 255


def test_a_python_without_setsid_for_posix_spawn_falls_back_to_popen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some builds raise NotImplementedError for posix_spawn(setsid=True): Popen then."""
    import podium.runners.spawn as spawn_module

    def unsupported(*args: object, **kwargs: object) -> int:
        raise NotImplementedError("setsid")

    monkeypatch.setattr(os, "posix_spawn", unsupported)
    monkeypatch.setattr(spawn_module, "_posix_spawn_usable", True)
    fds = len(os.listdir("/proc/self/fd"))
    code, out = run(
        [PY, "-c", "import os; print(os.getcwd(), os.getsid(0) == os.getpid())"], tmp_path
    )
    assert (code, out.split()) == (0, [str(tmp_path), "True"])
    assert spawn_module._posix_spawn_usable is False
    assert len(os.listdir("/proc/self/fd")) == fds


@pytest.fixture
def cgroup(tmp_path: Path) -> Iterator[CgroupTarget]:
    """A fresh cgroup (v2) below this process's own; skipped where none can be made."""
    from tests.test_containment_cli import cgroup2_writable

    if not cgroup2_writable():
        pytest.skip("no writable cgroup2 hierarchy here")
    own = next(
        line[3:].strip()
        for line in Path("/proc/self/cgroup").read_text().splitlines()
        if line.startswith("0::")
    )
    mount = next(
        line.partition(" - ")[0].split()
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.partition(" - ")[2].startswith("cgroup2 ")
    )
    path = Path(mount[4]) / own[len(mount[3]) :].lstrip("/") / f"spawn-test-{os.getpid()}"
    path.mkdir()
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
    try:
        yield CgroupTarget(str(path), fd)
    finally:
        os.close(fd)
        (path / "cgroup.kill").write_text("1")
        end = time.monotonic() + 5
        while (path / "cgroup.procs").read_text().strip() and time.monotonic() < end:
            time.sleep(0.01)
        path.rmdir()


def test_a_child_started_in_a_cgroup_is_in_it_before_the_command_runs(
    tmp_path: Path, cgroup: CgroupTarget
) -> None:
    """The command, and a child it forks at once, are in the cgroup from their first step."""
    script = "sleep 2 & cat /proc/$!/cgroup; cat /proc/self/cgroup"
    with open(os.devnull, "rb") as stdin:
        child, pipe = spawn(["/bin/sh", "-c", script], tmp_path, ENV, stdin.fileno(), cgroup)
    with os.fdopen(pipe, "rb") as out:
        text = out.read().decode()
    assert child.wait() == 0
    lines = [line for line in text.splitlines() if line.startswith("0::")]
    name = Path(cgroup.path).name
    assert len(lines) == 2 and all(line.endswith("/" + name) for line in lines)


def test_libc_posix_spawn_keeps_the_same_promises(tmp_path: Path) -> None:
    """libc's posix_spawn (the path that can also place a child in a cgroup): the task's
    directory and exact environment, a new session, default SIGPIPE, an empty mask, and
    a clear error for what cannot run."""
    import podium.runners.spawn as spawn_module

    libc = spawn_module._libc()
    if libc is None:
        pytest.skip("no libc posix_spawn with addchdir here")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    script = (
        "pwd; env; [ $(cut -d' ' -f6 /proc/$$/stat) = $$ ] && echo leader;"
        " grep -E 'SigBlk|SigIgn' /proc/self/status"
    )
    try:
        child, pipe = libc.spawn(["/bin/sh", "-c", script], tmp_path, {"ONLY": "this"}, 0, None)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    with os.fdopen(pipe, "rb") as out:
        lines = out.read().decode().splitlines()
    assert child.wait() == 0
    assert lines[0] == str(tmp_path)
    assert sorted(lines[1:3]) == ["ONLY=this", f"PWD={tmp_path}"]
    assert lines[3] == "leader"
    assert int(lines[4].split()[1], 16) == 0
    assert not int(lines[5].split()[1], 16) & (1 << (signal.SIGPIPE - 1))
    with pytest.raises(FileNotFoundError):
        libc.spawn([str(tmp_path / "missing")], tmp_path, ENV, 0, None)
    with pytest.raises(FileNotFoundError):
        libc.spawn(["/bin/true"], tmp_path / "no-such-dir", ENV, 0, None)
