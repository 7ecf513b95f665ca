"""Running git for the Git source: a quiet environment, one-line errors, and credentials
masked in everything that could be shown."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from podium.errors import SourceError

_SSH_COMMAND = "ssh -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15"
_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"]+@")
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[^-/:][^/:]*:)")  # git: a colon before a slash
GIT_ERRORS = (git.exc.GitError, git.exc.ODBError, ValueError, OSError)


def mask_url(text: str) -> str:
    """Replace the credentials of every URL in ``text`` with ``***``."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def is_remote_url(location: str) -> bool:
    """Whether ``location`` is a URL (``https://``, ``ssh://``, ``file://``, ``user@host:path``)."""
    return _URL.match(location) is not None


def is_git_repository(path: Path) -> bool:
    """Whether ``path`` is a Git work tree (has ``.git``) or a bare repository."""
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()
    return (path / ".git").exists() or bare


def git_env() -> dict[str, str]:
    """Environment for every git subprocess: never prompt, give up on dead connections."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
        "GIT_HTTP_LOW_SPEED_TIME": "30",
        "GIT_LFS_SKIP_SMUDGE": "1",
    }
    if "GIT_SSH_COMMAND" not in os.environ and "GIT_SSH" not in os.environ:
        env["GIT_SSH_COMMAND"] = _SSH_COMMAND
    return env


def one_line(stderr: str, status: int) -> str:
    """Git's complaint on one line: its fatal/error lines, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    text = "; ".join(errors or lines[-1:]) or f"exit status {status}"
    return mask_url(text)[:500]


def call_git(g: git.Git, *args: str, timeout: float | None = None) -> tuple[int, str, str]:
    """Run ``git <args>``; return (status, stdout, stderr); raise only if git cannot run."""
    command = getattr(g, args[0].replace("-", "_"))
    try:
        status, out, err = command(
            *args[1:],
            with_extended_output=True,
            with_exceptions=False,
            env=git_env(),
            kill_after_timeout=timeout,
        )
    except GIT_ERRORS as exc:
        raise SourceError(mask_url(f"git {args[0]} could not run: {exc}")) from None
    return int(status), str(out), str(err)


def run_git(g: git.Git, *args: str, timeout: float | None = None) -> str:
    """Run ``git <args>`` and return its output; raise :class:`SourceError` if it fails."""
    status, out, err = call_git(g, *args, timeout=timeout)
    if status != 0:
        raise SourceError(f"git {args[0]} failed: {one_line(err, status)}")
    return out


def normalize_root(path: str) -> str:
    """The sub-path as a clean relative POSIX path ("" for the repository root)."""
    root = posixpath.normpath(path.strip().strip("/") or ".")
    if root == ".":
        return ""
    if root == ".." or root.startswith("../"):
        raise SourceError(f"sub-path must stay inside the repository: {path!r}")
    return root


def path_key(path: str) -> str:
    """A snapshot path in the form the file index uses."""
    return posixpath.normpath(path)


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn git, gitdb and OS errors raised inside the block into :class:`SourceError`."""
    try:
        yield
    except GIT_ERRORS as exc:
        raise SourceError(mask_url(f"{action}: {exc}")) from None


def check_ref(ref: str) -> None:
    """Refuse a revision that git would read as an option."""
    if not ref or ref.startswith("-"):
        raise SourceError(f"unknown revision {ref!r}")


__all__ = [
    "GIT_ERRORS",
    "call_git",
    "check_ref",
    "git_env",
    "is_git_repository",
    "is_remote_url",
    "mask_url",
    "normalize_root",
    "one_line",
    "path_key",
    "run_git",
    "translated",
]
