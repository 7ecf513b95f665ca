"""Durations in workflow files and flags: ``90``, ``500ms``, ``5s``, ``10m``, ``1h30m``."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")

MAX_SECONDS = 3650 * 86400.0
"""The longest duration accepted (3650d): longer ones overflow timers and clocks."""

_HINT = "(use e.g. 30s, 10m, 1h30m)"


def _show(value: object) -> str:
    """A short, always printable form of a value for a message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a number of more than 19 digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_duration(value: object) -> float:
    """Return seconds for a duration; raise ``ValueError`` with a readable message otherwise.

    Negative, infinite, NaN and over-long (more than 3650 days) durations are refused.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a duration: {_show(value)} {_HINT}")
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and _WHOLE.match(text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(f"not a duration: {_show(value)} {_HINT}")
    else:
        if value < 0:
            raise ValueError(f"duration must not be negative: {_show(value)}")
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    if math.isnan(seconds) or (isinstance(value, float) and math.isinf(value)):
        raise ValueError(f"not a duration: {_show(value)} {_HINT}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration is too long: {_show(value)} (at most 3650d)")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form: ``850ms``, ``12.3s``, ``4m05s``, ``2h03m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
