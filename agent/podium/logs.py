"""Structured logging, configured once at start-up.

JSON lines when stderr is not a terminal (or ``--log-format json``), readable
console lines otherwise. Run, workflow and task are bound with structlog's
context variables; secret values are redacted by a processor.

Until something logs, structlog is not even imported (:mod:`podium.log`): the choice
made here is applied then.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

LogFormat = Literal["auto", "json", "console"]
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_APPLIED: list[tuple[bool, str, bool, int]] = []


def configure(fmt: str = "auto", level: str = "info") -> None:
    """Choose renderer and level for the whole process (applied once structlog is in use)."""
    from podium.log import _PENDING

    if "structlog" in sys.modules:
        apply(fmt, level)
    else:
        _PENDING[:] = [(fmt, level)]


def apply(fmt: str = "auto", level: str = "info") -> None:
    """Configure structlog now (again only when the choice changed)."""
    import structlog

    from podium.secrets import redact_processor

    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    key = (use_json, level, sys.stderr.isatty(), id(sys.stderr))
    if _APPLIED and _APPLIED[-1] == key:
        return
    _APPLIED[:] = [key]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


__all__ = ["LEVELS", "LogFormat", "apply", "configure"]
