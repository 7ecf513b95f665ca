"""Processes a dead agent left behind, found again after a restart.

Attempts carry ``PODIUM_ATTEMPT_ID`` and ``PODIUM_DATA_DIR`` in their environment, so
a restarted agent finds their process groups in ``/proc`` without having written each
pid down, and stops them before it settles their attempts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import structlog

log = structlog.get_logger("podium.engine")


def leftover_processes(data_dir: Path) -> dict[int, list[int]]:
    """Process-group leaders a dead agent of this data dir left, by attempt id.

    Attempts carry ``PODIUM_ATTEMPT_ID`` and ``PODIUM_DATA_DIR`` in their environment,
    so they are found in /proc without the agent having to write each pid down.
    """
    found: dict[int, list[int]] = {}
    marker = b"PODIUM_ATTEMPT_ID="
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            raw = (entry / "environ").read_bytes()
            if marker not in raw or os.getpgid(pid) != pid:
                continue
        except (OSError, ProcessLookupError):
            continue
        env = dict(e.decode(errors="replace").partition("=")[::2] for e in raw.split(b"\0"))
        if _same_path(env.get("PODIUM_DATA_DIR"), data_dir):
            with contextlib.suppress(ValueError):
                found.setdefault(int(env.get("PODIUM_ATTEMPT_ID", "")), []).append(pid)
    return found


def kill_leftover(pid: int | None, attempt_id: int, data_dir: Path, grace: float) -> None:
    """Kill a process group a dead agent left behind, if it really is that attempt's.

    SIGTERM, up to ``grace`` seconds for the group's leader to end, then SIGKILL for
    whatever is left of the group.
    """
    if not pid:
        return
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return
    env = dict(entry.decode(errors="replace").partition("=")[::2] for entry in environ.split(b"\0"))
    # attempt ids are per state store: the data dir tells two agents' attempts apart
    if env.get("PODIUM_ATTEMPT_ID") != str(attempt_id) or not _same_path(
        env.get("PODIUM_DATA_DIR"), data_dir
    ):
        return
    log.info("leftover_process_killed", pid=pid, attempt_id=attempt_id)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    end = time.monotonic() + grace
    while _running(pid) and time.monotonic() < end:
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _same_path(value: str | None, path: Path) -> bool:
    return value is not None and Path(value).resolve() == path.resolve()


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


__all__ = ["kill_leftover", "leftover_processes"]
