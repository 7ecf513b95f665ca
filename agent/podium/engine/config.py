"""What an engine is told when it is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class EngineConfig:
    data_dir: Path
    max_parallel: int = 32
    grace: float = 5.0
    """Seconds between SIGTERM and SIGKILL for a task that times out or is cancelled."""
    shutdown_grace: float = 10.0
    """On agent shutdown, how long running tasks may finish before they are cancelled."""
    secrets_dir: Path | None = None
    notifiers: tuple[str, ...] = ("console",)
    log_max_bytes: int = 10 * 1024 * 1024
    keep_checkouts: bool = False
    inline_shell: bool = True
    """Supervise shell tasks from the coordinator thread (else: one worker thread each)."""


__all__ = ["EngineConfig"]
