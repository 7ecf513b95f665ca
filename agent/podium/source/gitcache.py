"""The Git source's cached bare clone: created empty on first use, opened once, and locked
(across threads and processes) while it changes."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from podium.errors import SourceError
from podium.source.gitcmd import GIT_ERRORS, is_transient, mask_url, retrying, run_git


class Mirror:
    """One bare repository at ``path``. ``read_lock`` guards the open repository object
    (and the git helper processes it keeps), which snapshots share."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read_lock = threading.Lock()
        self._lock = threading.RLock()
        self._repo: git.Repo | None = None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize changes to the cache across threads and processes (an flock file)."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                handle = retrying(lambda: open(lock_path, "a"))  # noqa: SIM115 closed below
            except OSError as exc:
                raise SourceError(f"cannot lock the cache {lock_path}: {exc}") from None
            with handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure(self) -> git.Repo:
        """The repository, created empty if there is none (call it under :meth:`locked`)."""
        repo = self.open(strict=True)
        if repo is not None:
            return repo
        try:
            self._create()
        except (*GIT_ERRORS, SourceError) as exc:
            raise SourceError(mask_url(f"cannot create the cache {self.path}: {exc}")) from None
        repo = self.open(strict=True)
        if repo is None:
            raise SourceError(f"cannot open the cache {self.path}")
        return repo

    def open(self, *, strict: bool = False) -> git.Repo | None:
        """The repository, or ``None`` if it does not exist (yet) or is unreadable.

        ``strict``: a shortage of descriptors is a :class:`SourceError`, not ``None``,
        so that a cache that exists is never taken for a missing one and rebuilt.
        """
        with self.read_lock:
            if self._repo is None and (self.path / "HEAD").is_file():
                try:
                    self._repo = retrying(lambda: git.Repo(self.path))
                except GIT_ERRORS as exc:
                    if strict and is_transient(exc):
                        raise SourceError(f"cannot open the cache {self.path}: {exc}") from None
                    return None
            return self._repo

    def close(self) -> None:
        """Stop the git helper processes the open repository keeps."""
        with self.read_lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None

    def _create(self) -> None:
        """Initialise an empty bare repository and move it into place atomically."""
        shutil.rmtree(self.path, ignore_errors=True)
        staging = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        run_git(git.cmd.Git(), "init", "--quiet", "--bare", str(staging))
        staging.rename(self.path)


__all__ = ["Mirror"]
