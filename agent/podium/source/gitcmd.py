"""Running git for the Git source: a quiet environment, one-line errors, credentials
masked in everything that could be shown, and transient failures retried.

Git runs as a plain subprocess (``git <args>``), never through a library that probes
``git version`` on import: a pass runs a handful of short git commands, and each
process it does not start is a few milliseconds saved.

A system short of file descriptors or processes (``EMFILE``, ``ENFILE``, ``EAGAIN``)
makes starting git fail, or makes git itself fail ("Too many open files", "cannot
fork"). Such a failure is retried after :data:`RETRY_DELAYS`; if it persists it becomes a
:class:`SourceError` like any other (a fetch error: the agent backs off).
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol, TypeVar

from podium.errors import SourceError

_SSH_COMMAND = "ssh -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15"
_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"]+@")
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[^-/:][^/:]*:)")  # git: a colon before a slash
_C_LOCALE = {"LANGUAGE": "C", "LC_ALL": "C"}
"""Git's messages in English, whatever the agent's locale: they are matched and shown."""
GIT_ERRORS = (OSError, ValueError, subprocess.SubprocessError)
RETRY_DELAYS = (0.1, 0.3, 1.0)
"""Seconds waited before each new try of a git command that failed for want of resources."""
_TRANSIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.EAGAIN})
_TRANSIENT_TEXT = ("too many open files", "cannot fork", "unable to fork")
_T = TypeVar("_T")


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


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or the error it wraps) is a shortage of descriptors or processes."""
    return any(
        isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS
        for error in (exc, exc.__cause__)
    )


def transient_output(stderr: str) -> bool:
    """Whether git's complaint says it ran short of descriptors or processes."""
    lowered = stderr.lower()
    return any(text in lowered for text in _TRANSIENT_TEXT)


def retrying(action: Callable[[], _T]) -> _T:
    """``action()``, tried again after each of :data:`RETRY_DELAYS` while it raises a
    transient :class:`OSError`; the last error is raised as is."""
    for delay in RETRY_DELAYS:
        try:
            return action()
        except OSError as exc:
            if not is_transient(exc):
                raise
        time.sleep(delay)
    return action()


class _WorkingDir(Protocol):
    """Anything that names the directory git runs in (a GitPython ``Git``, for one)."""

    @property
    def working_dir(self) -> str | os.PathLike[str] | None: ...


Where = Path | str | None | _WorkingDir
"""The directory git runs in (``None``: the current one)."""


def call_git(
    where: Where, *args: str, timeout: float | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run ``git <args>`` in ``where``; return (status, stdout, stderr); raise
    :class:`SourceError` only if git cannot run.

    ``env`` is added to :func:`git_env` for this command. Failures for want of
    descriptors or processes are retried (see the module's docstring). A command still
    running after ``timeout`` seconds is killed with the processes it started (its
    process group) and fails.
    """
    cwd = where if where is None or isinstance(where, str | Path) else where.working_dir
    environment = {**os.environ, **_C_LOCALE, **git_env(), **(env or {})}
    for delay in (*RETRY_DELAYS, None):
        try:
            status, out, err = _run(["git", *args], cwd, environment, timeout)
        except GIT_ERRORS as exc:
            if delay is None or not is_transient(exc):
                raise SourceError(mask_url(f"git {args[0]} could not run: {exc}")) from None
        else:
            if status == 0 or delay is None or not transient_output(err):
                return status, out, err
        time.sleep(delay)
    raise AssertionError("unreachable: the last try returns or raises")


def _run(
    argv: list[str],
    cwd: str | os.PathLike[str] | None,
    env: dict[str, str],
    timeout: float | None,
) -> tuple[int, str, str]:
    """One run of ``argv``: its status and its output decoded (the last newline of
    standard output dropped, as git's own line ends)."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=None if timeout is None else 0,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            try:
                out, err = process.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # a process that left the group holds the pipes
                out, err = b"", b""
            err += f"\nfatal: no answer within {timeout:g}s".encode()
        except BaseException:  # interrupted: the group did not get the terminal's signal
            if timeout is not None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            raise
    text = out.decode("utf-8", "surrogateescape")
    return process.returncode, text.removesuffix("\n"), err.decode("utf-8", "replace")


def run_git(
    where: Where, *args: str, timeout: float | None = None, env: dict[str, str] | None = None
) -> str:
    """Run ``git <args>`` in ``where`` and return its output; raise :class:`SourceError`
    if it fails."""
    status, out, err = call_git(where, *args, timeout=timeout, env=env)
    if status != 0:
        raise SourceError(f"git {args[0]} failed: {one_line(err, status)}")
    return out


def normalize_root(path: str) -> str:
    """The sub-path as a clean relative POSIX path ("" for the repository root).

    :class:`SourceError` for an absolute path or one that climbs out with ``..``.
    """
    text = path.strip()
    if text.startswith("/"):
        raise SourceError(f"sub-path must be relative to the repository root: {path!r}")
    root = posixpath.normpath(text.rstrip("/") or ".")
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
    "RETRY_DELAYS",
    "Where",
    "call_git",
    "check_ref",
    "git_env",
    "is_git_repository",
    "is_remote_url",
    "is_transient",
    "mask_url",
    "normalize_root",
    "one_line",
    "path_key",
    "retrying",
    "run_git",
    "transient_output",
    "translated",
]
