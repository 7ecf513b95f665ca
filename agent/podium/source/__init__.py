"""Where desired state comes from: a Git repository, or a plain local directory."""

from __future__ import annotations

from pathlib import Path

from podium.errors import SourceError
from podium.source.base import Commit, FetchResult, Snapshot, Source
from podium.source.directory import DirectorySource
from podium.source.git import GitSource, is_git_repository, is_remote_url


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
    """
    if is_remote_url(repo):
        return GitSource(repo, cache_dir, branch, path)
    local = Path(repo).expanduser()
    if not local.exists():
        if not must_exist:
            return GitSource(str(local.absolute()), cache_dir, branch, path)
        raise SourceError(f"source path does not exist: {repo}")
    if is_git_repository(local):
        return GitSource(str(local.resolve()), cache_dir, branch, path)
    if not local.is_dir():
        raise SourceError(f"source path is not a directory: {repo}")
    return DirectorySource(local / path)


__all__ = [
    "Commit",
    "DirectorySource",
    "FetchResult",
    "GitSource",
    "Snapshot",
    "Source",
    "open_source",
]
