"""The desired-state source boundary: a revision of a repository, read as it is in Git.

The planner and loader only see :class:`Snapshot` (files of one revision below the
source's sub-path). :class:`Source` fetches, resolves refs, gives snapshots, and
makes a private checkout for each run. Implementations translate their library's
errors into :class:`podium.errors.SourceError` and never put credentials in messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Commit:
    """One commit's metadata. Author and committer differ when someone else applied the
    change (a rebase, a merge button, ``git am``); a source without commits leaves the
    names and emails empty."""

    sha: str
    subject: str
    author_name: str
    author_email: str
    committed_at: float
    committer_name: str = ""
    committer_email: str = ""

    @property
    def short(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True)
class FetchResult:
    """Outcome of one fetch.

    ``revision`` is the tracked branch's commit: the new one when the fetch worked,
    the last fetched one when the remote is unreachable (``None`` if never fetched).
    ``outage_began`` is true only on the first failing fetch of an outage and
    ``recovered`` only on the first good fetch after one, so callers log and notify
    once per outage, not once per poll.
    """

    revision: str | None
    error: str | None = None
    changed: bool = False
    forced: bool = False
    outage_began: bool = False
    recovered: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class Snapshot(Protocol):
    """The files of one revision below the source's sub-path (paths are POSIX, relative)."""

    @property
    def revision(self) -> str: ...

    def files(self) -> list[str]:
        """Every regular file below the root, sorted."""
        ...

    def read(self, path: str) -> bytes: ...

    def digest(self, path: str) -> str:
        """The sha256 (hex) of the file's content, read in bounded memory where the
        content is not held already; ``FileNotFoundError`` if there is no such file."""
        ...

    def size(self, path: str) -> int: ...

    def exists(self, path: str) -> bool: ...


class Source(Protocol):
    """Where desired state comes from: a Git repository (or a plain directory)."""

    @property
    def display(self) -> str:
        """The location for humans and logs, credentials masked."""
        ...

    @property
    def branch(self) -> str | None:
        """The branch tracked: the one asked for, else the remote's default once known
        (``None`` for a source without branches, or before the first fetch)."""
        ...

    def fetch(self) -> FetchResult: ...

    def remote_revision(self) -> str | None:
        """Cheap check of the tracked branch's commit on the remote (``git ls-remote``)."""
        ...

    def resolve(self, ref: str) -> str:
        """A branch, tag or commit (after a fetch) to a full commit sha."""
        ...

    def snapshot(self, revision: str) -> Snapshot: ...

    def commit(self, revision: str) -> Commit: ...

    def last_change(self, revision: str, paths: list[str]) -> Commit | None:
        """The newest commit at or before ``revision`` that touched any of ``paths``."""
        ...

    def checkout(self, revision: str, dest: Path) -> Path:
        """A private work tree of ``revision`` at ``dest``; returns the sub-path root in it."""
        ...

    def remove_checkout(self, dest: Path) -> None: ...

    def close(self) -> None:
        """Release what the source holds open (a reading git process, say)."""
        ...

    def uncommitted(self, prefix: str = "") -> list[str]:
        """Files below the sub-path (and ``prefix`` in it) that a local work tree changes
        against the tracked commit (modified, staged or untracked), relative to the
        sub-path; empty where there is no work tree (a remote, a bare repository, a
        plain directory)."""
        ...


__all__ = ["Commit", "FetchResult", "Snapshot", "Source"]
