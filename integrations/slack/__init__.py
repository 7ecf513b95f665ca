"""Slack integration (placeholder until the Slack module lands)."""

from __future__ import annotations

from typing import Any


def setup(ctx: Any) -> None:
    """Not configured yet."""
    return None
