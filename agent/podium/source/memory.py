"""An in-memory snapshot: files given as a mapping (used by tests and benchmarks)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


class MemorySnapshot:
    """A :class:`~podium.source.base.Snapshot` over a dict of path → content."""

    def __init__(self, files: Mapping[str, str | bytes], revision: str | None = None) -> None:
        self._files = {
            p: (c.encode() if isinstance(c, str) else c) for p, c in sorted(files.items())
        }
        if revision is None:
            digest = hashlib.sha256()
            for path, content in self._files.items():
                digest.update(path.encode() + b"\0" + content + b"\0")
            revision = "mem:" + digest.hexdigest()[:16]
        self._revision = revision

    @property
    def revision(self) -> str:
        return self._revision

    def files(self) -> list[str]:
        return list(self._files)

    def read(self, path: str) -> bytes:
        return self._files[path]

    def digest(self, path: str) -> str:
        """The sha256 (hex) of the file's content; ``FileNotFoundError`` if it is absent."""
        try:
            return hashlib.sha256(self._files[path]).hexdigest()
        except KeyError:
            raise FileNotFoundError(path) from None

    def size(self, path: str) -> int:
        return len(self._files[path])

    def exists(self, path: str) -> bool:
        return path in self._files


__all__ = ["MemorySnapshot"]
