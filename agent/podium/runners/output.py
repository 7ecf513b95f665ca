"""Output capture shared by the runners: redacted, line-buffered, size-capped, with a tail.

Nothing reaches the log file before the redactor has seen it. Bytes are decoded as
UTF-8 (invalid sequences replaced) and held until a line is complete, so a secret
that arrives in two reads is still redacted; only a line longer than
:data:`MAX_PARTIAL` characters is flushed before its newline. When the file would
exceed ``max_bytes`` it is renamed to ``<name>.1`` (replacing an older one) and a
new file is started, so an attempt keeps at most about twice ``max_bytes`` on disk.
"""

from __future__ import annotations

import codecs
import io
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from podium.runners.base import TaskContext

MAX_PARTIAL = 64 * 1024
"""Characters of an unfinished line held back before it is flushed anyway."""
TAIL_LINE_MAX = 4096
"""Characters kept of one line in the tail (the log file keeps the whole line)."""
NOTE_PREFIX = "[podium] "
_UTF8 = codecs.getincrementaldecoder("utf-8")


class OutputSink:
    """Writes one attempt's output to its log file and keeps the last lines in memory."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        redact: Callable[[str], str],
        tail_lines: int,
    ) -> None:
        self.path = path
        self._max_bytes = max(1, max_bytes)
        self._redact = redact
        self._decoder = _UTF8(errors="replace")
        self._pending = ""
        self._tail: deque[str] = deque(maxlen=max(0, tail_lines))
        self._tail_partial = ""
        self._size = 0
        self._closed = False
        # the file is created on the first output: a silent task costs no file at all
        self._file: io.FileIO | None = None

    @classmethod
    def for_context(cls, ctx: TaskContext) -> OutputSink:
        """A sink for the attempt described by ``ctx``."""
        return cls(ctx.log_path, ctx.log_max_bytes, ctx.redact, ctx.tail_lines)

    def __enter__(self) -> OutputSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, data: bytes) -> None:
        """Take raw bytes from a process; complete lines are redacted and written."""
        self._feed(self._decoder.decode(data))

    def write_text(self, text: str) -> None:
        """Take text produced by a runner itself (same buffering and redaction)."""
        self._feed(text)

    def note(self, message: str) -> None:
        """Write a line of Podium's own (timeouts, kills) on a line of its own."""
        start = "\n" if self._pending or self._tail_partial else ""
        self._feed(f"{start}{NOTE_PREFIX}{message}\n")

    def tail(self) -> str:
        """The last ``tail_lines`` lines written so far (redacted)."""
        lines = list(self._tail)
        if self._tail_partial:
            lines.append(self._tail_partial)
        limit = self._tail.maxlen or 0
        return "\n".join(lines[-limit:]) if limit else ""

    def close(self) -> None:
        """Flush what is buffered (an unfinished last line included) and close the file."""
        if self._closed:
            return
        self._pending += self._decoder.decode(b"", final=True)
        if self._pending:
            block, self._pending = self._pending, ""
            self._emit(block)
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None

    def _feed(self, text: str) -> None:
        self._pending += text
        cut = self._pending.rfind("\n") + 1
        if cut == 0 and len(self._pending) <= MAX_PARTIAL:
            return
        if cut == 0:
            cut = len(self._pending)
        block, self._pending = self._pending[:cut], self._pending[cut:]
        self._emit(block)

    def _emit(self, block: str) -> None:
        clean = self._redact(block)
        self._write_bytes(clean.encode("utf-8", errors="replace"))
        self._remember(clean)

    def _remember(self, text: str) -> None:
        parts = text.split("\n")
        line = self._tail_partial + parts[0]
        if len(parts) == 1:
            self._tail_partial = _clip(line)
            return
        limit = self._tail.maxlen or 0
        if limit:
            self._tail.append(_clip(line))
            self._tail.extend(_clip(done) for done in parts[1:-1][-limit:])
        self._tail_partial = _clip(parts[-1])

    def _write_bytes(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("write to a closed OutputSink")
        if not data:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = io.FileIO(self.path, "wb")
        if self._size + len(data) <= self._max_bytes:
            self._write_all(data)
            return
        # rotate at line ends: only a line longer than the cap itself is cut
        batch: list[bytes] = []
        size = self._size
        for line in data.splitlines(keepends=True):
            if size and size + len(line) > self._max_bytes:
                self._write_all(b"".join(batch))
                batch, size = [], 0
                self._rotate()
            while len(line) > self._max_bytes - size:
                room = self._max_bytes - size
                self._write_all(b"".join([*batch, line[:room]]))
                batch, size, line = [], 0, line[room:]
                self._rotate()
            if line:
                batch.append(line)
                size += len(line)
        self._write_all(b"".join(batch))

    def _write_all(self, piece: bytes) -> None:
        assert self._file is not None
        view = memoryview(piece)
        while view:
            written = self._file.write(view) or 0
            view = view[written:]
        self._size += len(piece)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._file = io.FileIO(self.path, "wb")
        self._size = 0


def _clip(line: str) -> str:
    """A tail line cut to :data:`TAIL_LINE_MAX` characters."""
    if len(line) <= TAIL_LINE_MAX:
        return line
    return line[:TAIL_LINE_MAX] + " …"


__all__ = ["MAX_PARTIAL", "NOTE_PREFIX", "TAIL_LINE_MAX", "OutputSink"]
