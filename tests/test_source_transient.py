"""A system short of file descriptors: git failures for want of resources are retried, and a
lasting shortage is a fetch error, never an exception."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from podium.source import GitSource
from tests.gitrepo import GitRepo, isolate

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> GitRepo:
    """A bare repository with one commit, git isolated from the user's configuration."""
    isolate(monkeypatch, tmp_path)
    repo = GitRepo(tmp_path / "git")
    repo.commit({"workflows/deploy.yaml": "version: 1\n"})
    return repo


def flaky_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: int) -> Path:
    """Put a `git` first on PATH whose first ``failures`` fetches fail the way git does when
    it runs out of descriptors; returns the file counting the fetches."""
    real = shutil.which("git")
    assert real is not None
    counter = tmp_path / "fetches"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "git"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = fetch ]; then\n'
        f'  n=$(cat "{counter}" 2>/dev/null || echo 0)\n'
        f'  echo $((n + 1)) > "{counter}"\n'
        f'  if [ "$n" -lt {failures} ]; then\n'
        "    echo \"fatal: Unable to create '/x/tmp_pack': Too many open files\" >&2\n"
        "    exit 128\n"
        "  fi\n"
        "fi\n"
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return counter


def test_fetch_that_runs_out_of_descriptors_briefly_is_retried(
    upstream: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two "Too many open files" failures in a row, then success: the fetch succeeds."""
    counter = flaky_git(tmp_path, monkeypatch, failures=2)
    result = GitSource(upstream.url, tmp_path / "cache").fetch()
    assert result.ok, result.error
    assert result.revision == upstream.head()
    assert counter.read_text().strip() == "3"


def test_lasting_shortage_is_a_fetch_error(
    upstream: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every try fails for want of descriptors, fetch reports one error line."""
    counter = flaky_git(tmp_path, monkeypatch, failures=1000)
    result = GitSource(upstream.url, tmp_path / "cache").fetch()
    assert result.revision is None and result.outage_began
    assert result.error and "Too many open files" in result.error and "\n" not in result.error
    assert int(counter.read_text()) > 1


EXHAUST = """
import json, os, resource, sys
from pathlib import Path
from podium.source import GitSource

source = GitSource(sys.argv[1], Path(sys.argv[2]))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
starved = source.fetch()
for fd in held:
    os.close(fd)
again = source.fetch()
print("RESULT " + json.dumps([starved.error, again.error, again.revision]))
"""


@pytest.mark.timeout(60)
def test_fetch_without_any_descriptor_left_is_an_error_not_a_crash(
    upstream: GitRepo, tmp_path: Path
) -> None:
    """With every descriptor of the process in use, fetch returns an error; later it works."""
    done = subprocess.run(
        [sys.executable, "-c", EXHAUST, upstream.url, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(out for out in done.stdout.splitlines() if out.startswith("RESULT "))
    starved, again, revision = json.loads(line.removeprefix("RESULT "))
    assert starved and "\n" not in starved
    assert again is None and revision == upstream.head()
