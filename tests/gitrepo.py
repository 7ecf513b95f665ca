"""Real Git repositories for tests: a bare "remote" and a work clone that pushes to it.

Not a test module: ``test_engine`` and ``test_cli_engine`` import it. Every commit has
a fixed author and committer, and :func:`isolate` keeps the user's and the system's
git configuration (and data directories) out of the tests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from podium.reconciler import PassResult

AUTHOR_NAME = "Ada Author"
AUTHOR_EMAIL = "ada@example.com"


def git(*args: str, cwd: Path | None = None) -> str:
    """Run a real git command; return its stripped standard output."""
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Fixed git identity, no user/system git config, PODIUM_DATA_DIR in ``tmp_path``.

    Returns the data directory. Subprocesses inherit all of it through ``os.environ``.
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "gitconfig").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", AUTHOR_NAME)
        monkeypatch.setenv(f"GIT_{role}_EMAIL", AUTHOR_EMAIL)
    for name in ("PODIUM_STATE", "PODIUM_REPO", "PODIUM_BRANCH", "PODIUM_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PODIUM_LOG_FORMAT", "json")
    data = tmp_path / "data"
    monkeypatch.setenv("PODIUM_DATA_DIR", str(data))
    return data


class GitRepo:
    """A bare repository standing in for the remote, and a work clone that pushes to it."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.branch = branch
        self.bare = root / "remote.git"
        self.work = root / "work"
        git("init", "-q", "--bare", "-b", branch, str(self.bare))
        git("init", "-q", "-b", branch, str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    @property
    def url(self) -> str:
        """What ``--repo`` takes: the bare remote's path."""
        return str(self.bare)

    def write(self, files: Mapping[str, str | None]) -> None:
        """Write files into the work tree (``None`` deletes one)."""
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)

    def commit(
        self,
        files: Mapping[str, str | None] | None = None,
        message: str = "change",
        *,
        author: str | None = None,
        push: bool = True,
    ) -> str:
        """Write ``files``, commit everything (fixed author unless given), push; return sha."""
        if files:
            self.write(files)
        git("add", "-A", cwd=self.work)
        extra = [f"--author={author}"] if author else []
        git("commit", "-q", "--allow-empty", "-m", message, *extra, cwd=self.work)
        if push:
            self.push()
        return self.head()

    def revert(self, sha: str, *, push: bool = True) -> str:
        """Commit the revert of ``sha``; return the new sha."""
        git("revert", "--no-edit", sha, cwd=self.work)
        if push:
            self.push()
        return self.head()

    def push(self, branch: str | None = None) -> None:
        """Push HEAD to ``branch`` (default: the tracked branch) of the remote."""
        git(
            "push",
            "-q",
            "--force",
            "origin",
            f"HEAD:refs/heads/{branch or self.branch}",
            cwd=self.work,
        )

    def switch(self, branch: str, *, create: bool = False) -> None:
        """Switch the work clone to ``branch``."""
        git("switch", "-q", *(["-c"] if create else []), branch, cwd=self.work)

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture(name="data_dir")
def data_dir_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The test's PODIUM_DATA_DIR, with git and Podium isolated from the user (see isolate)."""
    return isolate(monkeypatch, tmp_path)


@pytest.fixture(name="repo")
def repo_fixture(tmp_path: Path, data_dir: Path) -> GitRepo:
    """An empty remote (and its work clone) in ``tmp_path``; commit to it with ``commit``."""
    return GitRepo(tmp_path / "git")


def reconcile(repo: GitRepo, data_dir: Path, revision: str | None = None) -> PassResult:
    """One reconcile pass in this process, lease held, like ``podium reconcile`` (no output)."""
    from podium.cli.workspace import open_workspace

    ws = open_workspace(repo.url, None, "", None, str(data_dir))
    try:
        ws.acquire()
        return ws.reconciler.reconcile_once(revision=revision)
    finally:
        ws.close()


# the names conftest.py (and any test module) imports to get the fixtures
data_dir = data_dir_fixture
repo = repo_fixture


def workflow(name: str, tasks: str, **top: object) -> str:
    """A workflow file: top-level keys from ``top`` (values as YAML text) and ``tasks`` verbatim."""
    head = "".join(f"{key}: {value}\n" for key, value in top.items())
    return f"name: {name}\n{head}tasks:\n{tasks}"


__all__ = [
    "AUTHOR_EMAIL",
    "AUTHOR_NAME",
    "GitRepo",
    "data_dir",
    "data_dir_fixture",
    "git",
    "isolate",
    "reconcile",
    "repo",
    "repo_fixture",
    "workflow",
]
