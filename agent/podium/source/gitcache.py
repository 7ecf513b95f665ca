"""The Git source's cached bare clone: created empty on first use, locked (across threads
and processes) while it changes, read through one long-lived ``git cat-file``; and what a
source knows of it already."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from podium.errors import SourceError
from podium.source.gitcmd import git_env, is_git_repository, mask_url, retrying, run_git

if TYPE_CHECKING:
    from podium.source.gitsnapshot import GitSnapshot


class Mirror:
    """One bare repository at ``path``, and the ``git cat-file`` process that reads its
    objects (see :meth:`read_object`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._reader = _BatchReader(path)

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

    def ensure(self) -> Path:
        """The repository's directory, created empty if there is none (call it under
        :meth:`locked`)."""
        if self.exists():
            return self.path
        try:
            self._create()
        except (OSError, SourceError) as exc:
            raise SourceError(mask_url(f"cannot create the cache {self.path}: {exc}")) from None
        if not self.exists():
            raise SourceError(f"cannot open the cache {self.path}")
        return self.path

    def exists(self) -> bool:
        """Whether the repository is there (a bare repository's files are)."""
        return is_git_repository(self.path)

    def identity(self) -> tuple[int, int] | None:
        """What tells this repository from one created in its place later (its directory's
        device and inode), ``None`` while there is none. What is known of its objects
        holds as long as this does not change."""
        return _identity(self.path)

    def read_object(self, sha: str) -> bytes | None:
        """The content of the object ``sha``, ``None`` if the cache lacks it;
        :class:`OSError` if git cannot be asked."""
        return self._reader.read(sha)

    def close(self) -> None:
        """Stop the ``git cat-file`` process the repository keeps for reading."""
        self._reader.close()

    def _create(self) -> None:
        """Initialise an empty bare repository and move it into place atomically."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
        staging = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        run_git(None, "init", "--quiet", "--bare", str(staging))
        staging.rename(self.path)


class Known:
    """What a source has read from its cache and need not ask git again.

    ``commits`` (full shas that name commits) and ``snapshots`` hold while the cache is
    the same directory; ``refs`` (``HEAD``: the branch ``origin/HEAD`` points to; a
    branch: its remote-tracking commit) hold until the next fetch; a value read while a
    fetch ran is not kept (its ``generation`` tells).
    """

    def __init__(self) -> None:
        self.identity: tuple[int, int] | None = None
        self.generation = 0
        self.commits: set[str] = set()
        self.snapshots: OrderedDict[str, GitSnapshot] = OrderedDict()
        self.refs: dict[str, str | None] = {}

    def current(self, mirror: Mirror) -> Known:
        """Itself, emptied first if the cache is not the directory it was."""
        identity = mirror.identity()
        if identity != self.identity:
            self.identity = identity
            self.commits = set()
            self.snapshots = OrderedDict()
            self.fetched()
        return self

    def fetched(self) -> None:
        """Refs may have moved: forget them."""
        self.generation += 1
        self.refs = {}

    def remember(self, name: str, value: str | None, generation: int) -> None:
        """Keep a ref read during ``generation``, unless a fetch has begun since."""
        if generation == self.generation:
            self.refs[name] = value


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class _BatchReader:
    """One ``git cat-file --batch`` in the repository, started on first use and kept: a
    read is a line written and an answer read, not a process started. Reads are
    serialized. A process that stops answering, or that runs in a repository since
    replaced by another, is replaced once per read."""

    def __init__(self, git_dir: Path) -> None:
        self._git_dir = git_dir
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._started_in: tuple[int, int] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], _BatchReader] | None = None

    def read(self, sha: str) -> bytes | None:
        with self._lock:
            for last in (False, True):
                try:
                    found = self._ask(sha)
                except (OSError, ValueError):
                    self._stop()
                    if last:
                        raise
                    continue
                except BaseException:  # interrupted mid-answer: the process is out of step
                    self._stop()
                    raise
                if found is not None or last or _identity(self._git_dir) == self._started_in:
                    return found
                self._stop()
            raise AssertionError("unreachable: the last try returns or raises")

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ask(self, sha: str) -> bytes | None:
        process = self._process or self._start()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(sha.encode() + b"\n")
        process.stdin.flush()
        header = process.stdout.readline()
        if not header.endswith(b"\n"):
            raise OSError(f"git cat-file stopped answering in {self._git_dir}")
        size = header.split()[2:]  # "<sha> <type> <size>", or "<sha> missing"
        if not size:
            return None
        data = process.stdout.read(int(size[0]) + 1)  # the content and its newline
        if len(data) != int(size[0]) + 1:
            raise OSError(f"git cat-file stopped answering in {self._git_dir}")
        return data[:-1]

    def _start(self) -> subprocess.Popen[bytes]:
        self._started_in = _identity(self._git_dir)
        process = retrying(
            lambda: subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=self._git_dir,
                env={**os.environ, **git_env()},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        )
        self._process = process
        self._finalizer = weakref.finalize(self, _end, process)
        return process

    def _stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._process = self._finalizer = None


def _end(process: subprocess.Popen[bytes]) -> None:
    """Let a ``git cat-file --batch`` end (its input closed), killing it if it lingers."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with suppress(OSError):
                stream.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


__all__ = ["Known", "Mirror"]
