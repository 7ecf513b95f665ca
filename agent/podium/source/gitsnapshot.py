"""One commit's files below a sub-path, read from the cached repository's objects."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import threading
from contextlib import AbstractContextManager
from typing import NamedTuple

from podium.errors import SourceError
from podium.source.gitcache import Mirror
from podium.source.gitcmd import (
    git_env,
    one_line,
    path_key,
    retrying,
    run_git,
    translated,
)

STREAM_ABOVE = 1 << 20
"""Files larger than this (bytes) are hashed from a stream, never read whole."""
_LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


class _Blob(NamedTuple):
    sha: str
    size: int


class GitSnapshot:
    """The files of one commit below a sub-path, read from the cached repository's objects.

    The commit's tree is listed once (``git ls-tree``, sizes included); contents come
    from the cache's long-lived ``git cat-file``, and those prefetched are kept.
    """

    def __init__(self, mirror: Mirror, revision: str, root: str) -> None:
        self._mirror = mirror
        self._lock = threading.Lock()
        self._revision = revision
        self._root = root
        self._index: dict[str, _Blob] | None = None
        self._contents: dict[str, bytes] = {}

    @property
    def revision(self) -> str:
        return self._revision

    def prefetch(self, paths: list[str], max_bytes: int) -> None:
        """Read the files of ``paths`` up to ``max_bytes`` each now and keep them (loading a
        revision reads every workflow file, and may load it again). Files that cannot be
        read this way are read again when asked for, which reports their errors."""
        blobs = self._blobs()
        for path in paths:
            key = path_key(path)
            blob = blobs.get(key)
            if blob is None or blob.size > max_bytes or key in self._contents:
                continue
            try:
                data = self._mirror.read_object(blob.sha)
            except (OSError, ValueError):
                return
            if data is not None:
                self._contents[key] = data

    def files(self) -> list[str]:
        """Every regular file below the root, sorted."""
        return sorted(self._blobs())

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a regular file in this snapshot."""
        return path_key(path) in self._blobs()

    def size(self, path: str) -> int:
        """The file's size in bytes."""
        return self._blob(path).size

    def read(self, path: str) -> bytes:
        """The file's content."""
        key = path_key(path)
        known = self._contents.get(key)
        if known is not None:
            return known
        blob = self._blob(path)
        with self._errors(path):
            data = self._mirror.read_object(blob.sha)
        if data is None:
            raise SourceError(f"cannot read {path} at {self._revision[:7]}: not in the cache")
        return data

    def digest(self, path: str) -> str:
        """The sha256 (hex) of the file's content; a large file is streamed from
        ``git cat-file`` in chunks, so memory stays bounded whatever its size."""
        known = self._contents.get(path_key(path))
        if known is not None:
            return hashlib.sha256(known).hexdigest()
        if self.size(path) <= STREAM_ABOVE:
            return hashlib.sha256(self.read(path)).hexdigest()
        return self._stream_digest(path)

    def _stream_digest(self, path: str) -> str:
        """Hash a blob through a pipe from its own ``git cat-file blob`` process."""
        sha = self._blob(path).sha
        with self._errors(path):
            process = retrying(
                lambda: subprocess.Popen(
                    ["git", "cat-file", "blob", sha],
                    cwd=self._mirror.path,
                    env={**os.environ, **git_env()},
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
            with process:
                stdout = process.stdout
                assert isinstance(stdout, io.BufferedReader) and process.stderr is not None
                digest = hashlib.file_digest(stdout, "sha256").hexdigest()
                err = process.stderr.read().decode(errors="replace")
                status = process.wait()
        if status != 0:
            reason = one_line(err, status)
            raise SourceError(f"cannot read {path} at {self._revision[:7]}: {reason}")
        return digest

    def _blob(self, path: str) -> _Blob:
        """The blob at ``path``; ``FileNotFoundError`` if there is none."""
        blob = self._blobs().get(path_key(path))
        if blob is None:
            raise FileNotFoundError(f"{path} (at {self._revision[:7]})")
        return blob

    def _blobs(self) -> dict[str, _Blob]:
        """The path → blob index, listed once from the commit's tree."""
        with self._lock:
            if self._index is None:
                self._index = self._list()
            return self._index

    def _list(self) -> dict[str, _Blob]:
        """The regular files below the root (symlinks and submodules are skipped), from
        ``git ls-tree -r -l -z``: ``<mode> <type> <sha> <size>\\t<path>`` per entry."""
        below = [self._root] if self._root else []
        try:
            out = run_git(
                self._mirror.path,
                "ls-tree",
                "-r",
                "-l",
                "-z",
                self._revision,
                "--",
                *below,
                env=_LITERAL,
            )
        except SourceError as exc:
            raise SourceError(
                f"cannot read {self._root or '.'} at {self._revision[:7]}: {exc}"
            ) from None
        prefix = f"{self._root}/" if self._root else ""
        index: dict[str, _Blob] = {}
        for entry in out.split("\0"):
            meta, _, path = entry.partition("\t")
            fields = meta.split()
            if len(fields) != 4 or not path.startswith(prefix):
                continue
            mode, _, sha, size = fields
            if stat.S_ISREG(int(mode, 8)):
                index[path[len(prefix) :]] = _Blob(sha, int(size))
        return index

    def _errors(self, path: str) -> AbstractContextManager[None]:
        """Translate errors of reading ``path`` from git."""
        return translated(f"cannot read {path} at {self._revision[:7]}")


__all__ = ["GitSnapshot"]
