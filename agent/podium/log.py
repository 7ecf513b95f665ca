"""Loggers that cost nothing until they log.

structlog is configured once (:func:`podium.logs.configure`), but importing it costs more
than a short command such as ``podium plan`` does in all. Modules take their logger from
:func:`get_logger`: structlog is imported, and the configuration chosen at start-up
applied, the first time a line is actually logged.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any

_PENDING: list[tuple[str, str]] = []
"""The configuration asked for before structlog was imported: (format, level)."""


def _structlog() -> Any:
    import structlog

    if _PENDING:
        from podium.logs import apply

        fmt, level = _PENDING.pop()
        _PENDING.clear()
        apply(fmt, level)
    return structlog


class LazyLogger:
    """A structlog logger bound to a name, imported at the first call."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        logger = self._logger
        if logger is None:
            try:
                logger = self._logger = _structlog().get_logger(self._name)
            except Exception:  # cannot load now (no descriptors left, say): one plain line
                return functools.partial(_plain, self._name, method)
        return getattr(logger, method)


def _plain(name: str, method: str, event: object = None, *_args: object, **fields: Any) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{method} {name} {event} {fields}\n")


def get_logger(name: str) -> Any:
    """A logger for ``name`` (``podium.engine``, say); structlog's own API once used."""
    return LazyLogger(name)


def ready() -> None:
    """Load logging now: a long-running command must not find the first line it logs
    unloadable later (for want of file descriptors, say)."""
    _structlog()


__all__ = ["LazyLogger", "get_logger", "ready"]
