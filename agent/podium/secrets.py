"""Secrets: resolved by name at task start, never stored, redacted everywhere.

Values come from the agent's environment, or from ``<secrets_dir>/<NAME>`` files
(Docker/Kubernetes secret mounts). Every value resolved in this process is added
to one redaction set used for task output, stored tails and log lines.

What is redacted, each replaced by ``***``:

- the value itself (values shorter than :data:`MIN_VALUE` characters are not
  redacted: they would mask unrelated text);
- each line of a multi-line value (a PEM key, say) on its own, so that a task printing
  one line of it, or output that arrives line by line, is caught too; lines shorter
  than :data:`MIN_LINE` characters after trimming (``-``, ``==``, empty lines) are not;
- percent-encoded forms of both: any character that URL encoding may escape is matched
  as itself or as its ``%XX`` bytes (either case), a space also as ``+``; this covers
  ``quote``, ``quote_plus`` and the partial encoding HTTP clients apply to a URL.

Other encodings (Base64, JSON or shell escaping, hex) are not recognised.

The set is compiled into one regular expression, rebuilt only when a new value
arrives; redaction of each output chunk is a single ``sub`` call.
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
MIN_VALUE = 3
"""Shortest secret value that is redacted."""
MIN_LINE = 4
"""Shortest line (trimmed) of a multi-line secret that is redacted on its own."""
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_lock = threading.Lock()
_values: set[str] = set()
_forms: dict[str, str] = {}
_pattern: re.Pattern[str] | None = None


def register(value: str) -> None:
    """Remember a secret value (and its lines) so that it is redacted from now on."""
    global _pattern
    if len(value) < MIN_VALUE:  # too short to redact without destroying unrelated text
        return
    with _lock:
        if value in _values:
            return
        _values.add(value)
        lines = [line.strip() for line in value.splitlines()] if _multiline(value) else []
        for text in (value, *(line for line in lines if len(line) >= MIN_LINE)):
            if text not in _forms:
                _forms[text] = _encodable(text)
        ordered = sorted(_forms, key=len, reverse=True)
        _pattern = re.compile("|".join(_forms[text] for text in ordered))


def _multiline(value: str) -> bool:
    """Whether ``value`` holds more than one line."""
    return len(value.splitlines()) > 1


def _encodable(text: str) -> str:
    """A pattern matching ``text`` with any reserved character possibly percent-encoded."""
    parts = []
    for char in text:
        if char in _UNRESERVED:
            parts.append(re.escape(char))
            continue
        escaped = "".join(
            f"%{_hex_digit(byte >> 4)}{_hex_digit(byte & 15)}" for byte in char.encode()
        )
        alternatives = [re.escape(char), escaped]
        if char == " ":
            alternatives.append(r"\+")
        parts.append(f"(?:{'|'.join(alternatives)})")
    return "".join(parts)


def _hex_digit(nibble: int) -> str:
    """A pattern for one hex digit in either case."""
    digit = f"{nibble:X}"
    return f"[{digit}{digit.lower()}]" if digit.isalpha() else digit


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


__all__ = ["MASK", "MIN_LINE", "MIN_VALUE", "redact", "redact_processor", "register", "resolve"]
