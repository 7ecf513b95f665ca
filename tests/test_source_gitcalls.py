"""The Git source asks git only what it does not know yet: a pass on an unchanged repository
runs no git command twice but the ref reads around its fetch, and what it knows is
forgotten when the cache changes under it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from podium.errors import SourceError
from podium.source import GitSource
from podium.source.gitcmd import run_git
from tests.gitrepo import GitRepo, workflow

PODIUM = Path(sys.executable).parent / "podium"
WF = "workflows/one.yaml"
TASK = "  - id: hello\n    run: echo hi\n"
TWICE = ("symbolic-ref", "rev-parse", "upload-pack")
"""The ref reads before and after the fetch; the remote serves ``ls-remote`` and ``fetch``."""


def git_commands(trace: Path) -> list[str]:
    """The argv of every git process a ``GIT_TRACE`` file recorded, git's own children
    included (one ``trace: built-in:`` line each)."""
    marker = "trace: built-in: "
    return [
        line.split(marker, 1)[1].strip()
        for line in trace.read_text().splitlines()
        if marker in line
    ]


def podium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PODIUM), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("command", ["plan", "reconcile"])
def test_a_pass_on_an_unchanged_repository_repeats_no_git_command(
    repo: GitRepo, data_dir: Path, tmp_path: Path, command: str
) -> None:
    """On an unchanged repository, a plan or reconcile runs each git command once (ref reads
    twice, around the fetch), never `git version`, never verifies a commit it read itself."""
    sha = repo.commit({WF: workflow("one", TASK)})
    warm = podium("reconcile", "--repo", repo.url, "--data-dir", str(data_dir))
    assert warm.returncode == 0, warm.stderr
    trace = tmp_path / "trace"
    done = podium(
        command, "--repo", repo.url, "--data-dir", str(data_dir), env={"GIT_TRACE": str(trace)}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    commands = git_commands(trace)
    assert commands, "GIT_TRACE recorded nothing"
    assert not [c for c in commands if c == "git version"]
    assert not [c for c in commands if c.startswith("git rev-parse") and sha in c]
    repeated = {c: n for c, n in Counter(commands).items() if n > 1}
    assert all(n == 2 and c.split()[1] in TWICE for c, n in repeated.items()), repeated
    by_name = Counter(c.split()[1] for c in commands)
    assert by_name["ls-tree"] == 1 and by_name["cat-file"] == 1, by_name
    assert by_name["symbolic-ref"] <= 2 and by_name["rev-parse"] <= 2, by_name


def test_a_snapshot_asked_for_again_costs_no_git_process(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot of a commit read once is listed and verified once: asking for it again
    and reading it starts no git process."""
    sha = repo.commit({WF: workflow("one", TASK)})
    source = GitSource(repo.url, tmp_path / "cache")
    assert source.fetch().revision == sha
    first = source.snapshot(sha)
    assert first.files() == [WF] and first.read(WF) == workflow("one", TASK).encode()
    trace = tmp_path / "trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    again = source.snapshot(sha)
    assert again.files() == [WF] and again.read(WF) == workflow("one", TASK).encode()
    assert source.commit(sha).sha == sha
    source.close()
    assert [c for c in git_commands(trace) if not c.startswith("git log")] == []


def test_a_cache_deleted_under_the_source_is_not_trusted(repo: GitRepo, tmp_path: Path) -> None:
    """Once the cache is gone, what was known of it is not used: reads fail until the next
    fetch, which creates it again and reads it afresh."""
    sha = repo.commit({WF: "version: 1\n"})
    source = GitSource(repo.url, tmp_path / "cache")
    assert source.fetch().revision == sha
    assert source.snapshot(sha).read(WF) == b"version: 1\n"
    shutil.rmtree(source.cache_path)
    with pytest.raises(SourceError):
        source.snapshot(sha)
    with pytest.raises(SourceError):
        source.commit(sha)
    newer = repo.commit({WF: "version: 2\n"})
    result = source.fetch()
    assert result.ok and result.revision == newer
    assert source.snapshot(newer).read(WF) == b"version: 2\n"
    assert source.snapshot(sha).read(WF) == b"version: 1\n"
    assert source.branch == "main"
    source.close()


def test_a_moved_branch_is_seen_by_the_next_fetch(repo: GitRepo, tmp_path: Path) -> None:
    """The tracked branch's commit is read again after every fetch: a push, then a force-push
    back, are both seen, with the branch named by the remote's HEAD throughout."""
    first = repo.commit({WF: "version: 1\n"})
    source = GitSource(repo.url, tmp_path / "cache")
    assert source.fetch().revision == first
    second = repo.commit({WF: "version: 2\n"})
    assert source.fetch().revision == second
    subprocess.run(["git", "reset", "-q", "--hard", first], cwd=repo.work, check=True)
    repo.push()
    back = source.fetch()
    assert back.revision == first and back.changed and back.forced
    assert source.branch == "main" and source.resolve("main") == first
    source.close()


def cat_file_children() -> list[int]:
    """This process's children that are a ``git cat-file --batch``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == os.getpid() and argv[:3] == [b"git", b"cat-file", b"--batch"]:
            found.append(int(entry.name))
    return found


def test_reads_go_on_after_the_reading_git_process_died(repo: GitRepo, tmp_path: Path) -> None:
    """If the long-lived git process that reads files is killed, the next read starts another
    and succeeds; closing the source ends it."""
    sha = repo.commit({WF: "version: 1\n", "other.txt": "x\n"})
    source = GitSource(repo.url, tmp_path / "cache")
    assert source.fetch().revision == sha
    before = set(cat_file_children())  # other sources of this process may hold theirs
    snap = source.snapshot(sha)
    assert snap.read(WF) == b"version: 1\n"
    readers = sorted(set(cat_file_children()) - before)
    assert len(readers) == 1
    os.kill(readers[0], signal.SIGKILL)
    assert snap.read("other.txt") == b"x\n"
    source.close()
    assert set(cat_file_children()) - before == set()


@pytest.mark.timeout(60)
def test_a_remote_that_never_answers_fails_after_the_timeout_leaving_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A git command whose remote hangs fails with one line once its timeout is over, and the
    processes it started are gone."""
    pidfile = tmp_path / "ssh.pid"
    ssh = tmp_path / "ssh"
    ssh.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 300\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(ssh))
    with pytest.raises(SourceError) as caught:
        run_git(tmp_path, "ls-remote", "ssh://example.invalid/repo.git", timeout=1)
    message = str(caught.value)
    assert "\n" not in message and "1s" in message
    pid = int(pidfile.read_text())
    end = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
        assert time.monotonic() < end, "the hanging ssh outlived its git"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "Z"
