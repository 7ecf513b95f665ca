"""One commit's files below a sub-path, read from the cached repository's objects."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import threading
from contextlib import AbstractContextManager

import git

from podium.errors import SourceError
from podium.source.gitcmd import (
    git_env,
    one_line,
    path_key,
    retrying,
    translated,
)

STREAM_ABOVE = 1 << 20
"""Files larger than this (bytes) are hashed from a stream, never read whole."""


class GitSnapshot:
    """The files of one commit below a sub-path, read from the cached repository's objects."""

    def __init__(self, repo: git.Repo, lock: threading.Lock, revision: str, root: str) -> None:
        self._repo = repo
        self._lock = lock
        self._revision = revision
        self._root = root
        self._index: dict[str, git.Blob] | None = None
        self._sizes: dict[str, int] = {}
        self._contents: dict[str, bytes] = {}

    @property
    def revision(self) -> str:
        return self._revision

    def prefetch(self, paths: list[str], max_bytes: int) -> None:
        """Read many files in two git processes (sizes, then contents up to ``max_bytes``).

        Loading a revision reads every workflow file: one batch is far cheaper than a
        round trip per file. Files that cannot be read this way are read one by one later.
        """
        blobs = {p: self._blobs().get(path_key(p)) for p in paths}
        wanted = {p: b.hexsha for p, b in blobs.items() if b is not None}
        if not wanted:
            return
        env = {**os.environ, **git_env()}
        try:
            checked = (
                subprocess.run(
                    ["git", "cat-file", "--batch-check"],
                    cwd=self._repo.git_dir,
                    env=env,
                    input="\n".join(wanted.values()).encode() + b"\n",
                    capture_output=True,
                    check=True,
                    timeout=60,
                )
                .stdout.decode()
                .splitlines()
            )
            sizes = {}
            for line in checked:
                sha, _, size = line.split()
                sizes[sha] = int(size)
            small = [sha for sha in dict.fromkeys(wanted.values()) if sizes[sha] <= max_bytes]
            out = subprocess.run(
                ["git", "cat-file", "--batch"],
                cwd=self._repo.git_dir,
                env=env,
                input="\n".join(small).encode() + b"\n",
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout
        except (OSError, ValueError, KeyError, subprocess.SubprocessError):
            return  # the one-by-one path still works and reports errors properly
        contents: dict[str, bytes] = {}
        pos = 0
        while pos < len(out):
            end = out.index(b"\n", pos)
            sha, _, size = out[pos:end].decode().split()
            start = end + 1
            contents[sha] = out[start : start + int(size)]
            pos = start + int(size) + 1
        for path, sha in wanted.items():
            self._sizes[path_key(path)] = sizes[sha]
            if sha in contents:
                self._contents[path_key(path)] = contents[sha]

    def files(self) -> list[str]:
        """Every regular file below the root, sorted."""
        return sorted(self._blobs())

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a regular file in this snapshot."""
        return path_key(path) in self._blobs()

    def size(self, path: str) -> int:
        """The file's size in bytes."""
        known = self._sizes.get(path_key(path))
        if known is not None:
            return known
        blob = self._blob(path)
        with self._lock, self._errors(path):
            return int(blob.size)

    def read(self, path: str) -> bytes:
        """The file's content."""
        known = self._contents.get(path_key(path))
        if known is not None:
            return known
        blob = self._blob(path)
        with self._lock, self._errors(path):
            return bytes(blob.data_stream.read())

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
        sha = self._blob(path).hexsha
        with self._errors(path):
            process = retrying(
                lambda: subprocess.Popen(
                    ["git", "cat-file", "blob", sha],
                    cwd=self._repo.git_dir,
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

    def _blob(self, path: str) -> git.Blob:
        """The blob at ``path``; ``FileNotFoundError`` if there is none."""
        blob = self._blobs().get(path_key(path))
        if blob is None:
            raise FileNotFoundError(f"{path} (at {self._revision[:7]})")
        return blob

    def _blobs(self) -> dict[str, git.Blob]:
        """The path → blob index, built once by walking the commit's tree."""
        with self._lock:
            if self._index is None:
                with self._errors(self._root or "."):
                    self._index = self._walk()
            return self._index

    def _walk(self) -> dict[str, git.Blob]:
        """Collect the regular files below the root (symlinks and submodules are skipped)."""
        tree = self._repo.commit(self._revision).tree
        if self._root:
            try:
                node = tree / self._root
            except KeyError:
                return {}
            if not isinstance(node, git.Tree):
                return {}
            tree = node
        index: dict[str, git.Blob] = {}
        pending = [(tree, "")]
        while pending:
            current, prefix = pending.pop()
            for blob in current.blobs:
                if stat.S_ISREG(blob.mode):
                    index[prefix + blob.name] = blob
            pending.extend((sub, f"{prefix}{sub.name}/") for sub in current.trees)
        return index

    def _errors(self, path: str) -> AbstractContextManager[None]:
        """Translate git object errors while reading ``path``."""
        return translated(f"cannot read {path} at {self._revision[:7]}")


__all__ = ["GitSnapshot"]
