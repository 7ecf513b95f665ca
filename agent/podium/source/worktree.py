"""What a local work tree holds that a commit does not: edits nobody has committed yet.

``podium plan --repo .`` reads the committed revision, never the files on disk; these
functions let it say which files it is *not* showing. Only read-only git commands are
used (``git diff`` and ``git ls-files``, never ``git status``, which rewrites the index
while someone may be editing).
"""

from __future__ import annotations

from pathlib import Path

import git

from podium.source.gitcmd import run_git

_LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


def is_work_tree(path: Path) -> bool:
    """Whether ``path`` is the top of a Git work tree (not a bare repository)."""
    return (path / ".git").exists()


def changed_paths(work: Path, commit: str, below: str = "") -> list[str]:
    """Paths (from the repository root, sorted) below ``below`` whose work-tree or staged
    content differs from ``commit``, plus untracked files that are not ignored.

    :class:`~podium.errors.SourceError` if git fails (an unknown commit, for one).
    """
    g = git.cmd.Git(str(work))
    spec = below or "."
    found: set[str] = set()
    for cached in ([], ["--cached"]):
        found |= _names(
            run_git(
                g,
                "diff",
                "-z",
                "--name-only",
                "--no-renames",
                "--ignore-submodules",
                *cached,
                commit,
                "--",
                spec,
                env=_LITERAL,
            )
        )
    found |= _names(
        run_git(g, "ls-files", "-z", "--others", "--exclude-standard", "--", spec, env=_LITERAL)
    )
    return sorted(found)


def _names(out: str) -> set[str]:
    """The paths of a ``-z`` listing."""
    return {name for name in out.split("\0") if name}


__all__ = ["changed_paths", "is_work_tree"]
