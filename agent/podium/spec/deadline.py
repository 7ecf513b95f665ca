"""A cooperative time budget for loading one file.

The loader's stages and its loops over user data call :meth:`Deadline.check`; once the
budget is spent it raises :class:`LoadTimeout`, which the loader turns into a problem of
that file ("took too long to load"). Nothing is interrupted from outside.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LoadTimeout(Exception):
    """The file's load budget is spent (never escapes the loader)."""


class Deadline:
    """``seconds`` from now; :meth:`check` raises :class:`LoadTimeout` once they are past."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.stage = "loading"
        """What the loader was doing (named in the problem when the budget runs out)."""
        self._clock = clock
        self._end = clock() + seconds

    def enter(self, stage: str) -> None:
        """Start a stage of loading (and check the budget)."""
        self.stage = stage
        self.check()

    def check(self) -> None:
        if self._clock() > self._end:
            raise LoadTimeout(self.stage)

    def message(self) -> str:
        return f"took too long to load (more than {self.seconds:g} s, while {self.stage})"


__all__ = ["Deadline", "LoadTimeout"]
