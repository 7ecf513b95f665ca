"""Where desired state comes from: a Git repository, or a plain local directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium.errors import SourceError
from podium.source.base import Commit, FetchResult, Snapshot, Source

if TYPE_CHECKING:
    from podium.source.directory import DirectorySource
    from podium.source.git import GitSource


def open_source(
    repo: str,
    cache_dir: Path,
    branch: str | None = None,
    path: str = "",
    *,
    must_exist: bool = True,
) -> Source:
    """Git for URLs and local repositories; a local directory that is not one is read as is.

    With ``must_exist=False`` (the agent) a local path that is missing is taken for a Git
    repository that is not reachable yet: fetches fail and are retried until it appears.
    :class:`SourceError` (one line) for an empty ``repo`` and for a sub-path that leaves
    the repository: absolute, climbing out with ``..``, or (where it can be seen on disk)
    through a symbolic link.
    """
    from podium.source.directory import DirectorySource
    from podium.source.git import GitSource
    from podium.source.gitcmd import is_git_repository, is_remote_url, normalize_root

    if not repo.strip():
        raise SourceError("no repository given: the source must be a URL or a local path")
    root = normalize_root(path)
    if is_remote_url(repo):
        return GitSource(repo, cache_dir, branch, root)
    local = Path(repo).expanduser()
    if not local.exists():
        if not must_exist:
            return GitSource(str(local.absolute()), cache_dir, branch, root)
        raise SourceError(f"source path does not exist: {repo}")
    _check_inside(local, root, path)
    if is_git_repository(local):
        return GitSource(str(local.resolve()), cache_dir, branch, root)
    if not local.is_dir():
        raise SourceError(f"source path is not a directory: {repo}")
    return DirectorySource(local / root)


def _check_inside(local: Path, root: str, given: str) -> None:
    """Refuse a sub-path that a symbolic link on disk leads out of ``local``."""
    if root and not (local / root).resolve().is_relative_to(local.resolve()):
        raise SourceError(f"sub-path leads outside the repository through a symlink: {given!r}")


def __getattr__(name: str) -> Any:
    """The sources themselves load on first use (Git's library is costly to import)."""
    if name == "GitSource":
        from podium.source.git import GitSource

        return GitSource
    if name == "DirectorySource":
        from podium.source.directory import DirectorySource

        return DirectorySource
    raise AttributeError(name)


__all__ = [
    "Commit",
    "DirectorySource",
    "FetchResult",
    "GitSource",
    "Snapshot",
    "Source",
    "open_source",
]
