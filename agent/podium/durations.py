"""Durations in workflow files and flags: ``90``, ``500ms``, ``5s``, ``10m``, ``1h30m``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")


def parse_duration(value: object) -> float:
    """Return seconds for a duration; raise ``ValueError`` with a readable message otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h30m)")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h30m)")
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not text or not _WHOLE.match(text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h30m)")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


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
