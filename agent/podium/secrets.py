"""Secrets: resolved by name at task start, never stored, redacted everywhere.

Values come from the agent's environment, or from ``<secrets_dir>/<NAME>`` files
(Docker/Kubernetes secret mounts). Every value resolved in this process is added
to one redaction set used for task output, stored tails and log lines.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from podium.errors import ConfigError

MASK = "***"
_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(value: str) -> None:
    """Remember a secret value so that it is redacted from now on."""
    global _pattern
    if len(value) < 3:  # too short to redact without destroying unrelated text
        return
    with _lock:
        if value in _values:
            return
        _values.add(value)
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def redact(text: str) -> str:
    """Text with every known secret value replaced by ``***``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def resolve(name: str, secrets_dir: Path | None = None) -> str:
    """A secret's value from the environment or the secrets directory; registers it."""
    value = os.environ.get(name)
    if value is None and secrets_dir is not None:
        path = secrets_dir / name
        if path.is_file():
            value = path.read_text().rstrip("\n")
    if value is None:
        raise ConfigError(f"secret {name} is not set (environment variable or secrets file)")
    register(value)
    return value


def redact_processor(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: redact secret values from every string field."""
    if _pattern is None:
        return event
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = redact(value)
    return event


__all__ = ["MASK", "redact", "redact_processor", "register", "resolve"]
