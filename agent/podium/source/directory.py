"""Desired state from a plain directory (not Git), read as it is on disk.

A revision is ``"dir:"`` + a sha256 over the sorted (path, content) pairs of its regular
files, so any edit makes a new revision. A snapshot holds the content it was hashed from,
so what is loaded is exactly what the revision names. There is no history: the only
revision available is the current one, and ``last_change`` knows no commits.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import threading
from pathlib import Path

from podium.errors import SourceError
from podium.source.base import Commit, FetchResult

_PREFIX = "dir:"


class DirectorySnapshot:
    """The files of a directory as they were when it was hashed (held in memory)."""

    def __init__(self, revision: str, contents: dict[str, bytes], modified_at: float) -> None:
        self._revision = revision
        self._contents = contents
        self.modified_at = modified_at

    @property
    def revision(self) -> str:
        return self._revision

    def files(self) -> list[str]:
        """Every regular file below the root, sorted."""
        return sorted(self._contents)

    def read(self, path: str) -> bytes:
        """The file's content; ``FileNotFoundError`` if there is no such file."""
        try:
            return self._contents[posixpath.normpath(path)]
        except KeyError:
            raise FileNotFoundError(path) from None

    def digest(self, path: str) -> str:
        """The sha256 (hex) of the file's content (held since the directory was hashed)."""
        return hashlib.sha256(self.read(path)).hexdigest()

    def size(self, path: str) -> int:
        """The file's size in bytes."""
        return len(self.read(path))

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a regular file in this snapshot."""
        return posixpath.normpath(path) in self._contents


def capture(root: Path) -> DirectorySnapshot:
    """Read every regular file below ``root`` (symlinks skipped) and hash them."""
    if not root.is_dir():
        raise SourceError(f"directory not found: {root}")
    contents: dict[str, bytes] = {}
    newest = 0.0
    try:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in filenames:
                full = Path(dirpath, name)
                if full.is_symlink() or not full.is_file():
                    continue
                contents[full.relative_to(root).as_posix()] = full.read_bytes()
                newest = max(newest, full.stat().st_mtime)
    except OSError as exc:
        raise SourceError(f"cannot read {root}: {exc}") from None
    return DirectorySnapshot(_revision_of(contents), contents, newest)


def _revision_of(contents: dict[str, bytes]) -> str:
    """``dir:`` + sha256 over the sorted (path, length, content) triples."""
    digest = hashlib.sha256()
    for path in sorted(contents):
        data = contents[path]
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(f"{len(data)}\0".encode())
        digest.update(data)
    return _PREFIX + digest.hexdigest()


class DirectorySource:
    """A local directory that is not a Git repository; each distinct content is a revision."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._latest: DirectorySnapshot | None = None
        self._last: str | None = None
        self._failing = False

    @property
    def display(self) -> str:
        """The directory, for humans and logs."""
        return str(self._root)

    def close(self) -> None:
        """Nothing is held open."""

    @property
    def branch(self) -> str | None:
        """A plain directory has no branches."""
        return None

    def fetch(self) -> FetchResult:
        """Hash the directory as it is now; nothing is downloaded."""
        try:
            current = self._capture()
        except SourceError as exc:
            began, self._failing = not self._failing, True
            return FetchResult(revision=self._last, error=str(exc), outage_began=began)
        changed = current.revision != self._last
        recovered, self._failing = self._failing, False
        self._last = current.revision
        return FetchResult(revision=current.revision, changed=changed, recovered=recovered)

    def remote_revision(self) -> str | None:
        """The directory's current revision, ``None`` if it cannot be read."""
        try:
            return self._capture().revision
        except SourceError:
            return None

    def resolve(self, ref: str) -> str:
        """The current revision for ``HEAD`` or the current revision itself."""
        current = self._capture().revision
        if ref in ("HEAD", current):
            return current
        raise SourceError(f"unknown revision {ref!r} in {self.display} (only the current one)")

    def snapshot(self, revision: str) -> DirectorySnapshot:
        """The files of ``revision``, which must be the directory's latest content."""
        with self._lock:
            latest = self._latest
        if latest is not None and latest.revision == revision:
            return latest
        current = self._capture()
        if current.revision != revision:
            raise SourceError(f"revision {revision} is gone: {self.display} has changed since")
        return current

    def commit(self, revision: str) -> Commit:
        """A stand-in commit: the revision, no author, the newest file's modification time."""
        snap = self.snapshot(revision)
        return Commit(revision, "directory contents", "", "", snap.modified_at)

    def last_change(self, revision: str, paths: list[str]) -> Commit | None:
        """Always ``None``: a plain directory has no history."""
        return None

    def checkout(self, revision: str, dest: Path) -> Path:
        """Copy the directory to ``dest`` (symlinks kept as links) and return ``dest``."""
        target = dest.absolute()
        source = self._root.absolute()

        def skip_target(folder: str, names: list[str]) -> set[str]:
            return {name for name in names if Path(folder, name).absolute() == target}

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, target, symlinks=True, ignore=skip_target, dirs_exist_ok=True)
        except OSError as exc:
            raise SourceError(f"cannot copy {self.display} to {target}: {exc}") from None
        return target

    def remove_checkout(self, dest: Path) -> None:
        """Delete a copy made by :meth:`checkout`; a missing one is fine."""
        shutil.rmtree(dest, ignore_errors=True)

    def uncommitted(self, prefix: str = "") -> list[str]:
        """Always empty: a plain directory is read as it is, nothing is left out."""
        return []

    def _capture(self) -> DirectorySnapshot:
        """Hash the directory now and keep the result as the latest snapshot."""
        current = capture(self._root)
        with self._lock:
            self._latest = current
        return current


__all__ = ["DirectorySnapshot", "DirectorySource", "capture"]
