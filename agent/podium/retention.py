"""Log retention: deleting the task logs of old finished runs.

Each run keeps its attempts' logs in ``<data_dir>/logs/run-<id>/`` (capped per attempt,
see :mod:`podium.runners.output`). :func:`prune_logs` decides from a list of runs handed
in by the caller and touches only the file system: it never reads or writes the store.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from podium.log import get_logger

log = get_logger(__name__)

DAY = 86400.0


def log_dir(data_dir: Path, run_id: int) -> Path:
    """Where the logs of run ``run_id`` live."""
    return data_dir / "logs" / f"run-{run_id}"


def prune_logs(
    data_dir: Path,
    runs: Iterable[tuple[int, float | None]],
    keep_runs: int | None,
    keep_days: float | None,
    now: float,
) -> list[int]:
    """Delete the log directories of finished runs that fall outside the retention.

    ``runs`` are ``(run_id, finished_at)`` pairs, ``finished_at`` ``None`` for a run that
    is still active; an active run's logs are never deleted. A finished run's logs go
    when it is not among the ``keep_runs`` newest finished runs (newest = highest id), or
    when it finished more than ``keep_days`` days before ``now``. ``None`` turns a limit
    off. Runs not listed are left alone, whatever is on disk.

    Returns the ids of the runs whose log directory was deleted, ascending (a run
    without one is not listed). A directory that cannot be deleted is logged and kept.
    """
    if keep_runs is not None and keep_runs < 0:
        raise ValueError(f"keep_runs must be 0 or more, not {keep_runs}")
    if keep_days is not None and keep_days < 0:
        raise ValueError(f"keep_days must be 0 or more, not {keep_days}")
    finished = sorted(
        ((run_id, at) for run_id, at in runs if at is not None), key=lambda run: -run[0]
    )
    doomed: list[int] = []
    for rank, (run_id, finished_at) in enumerate(finished):
        too_many = keep_runs is not None and rank >= keep_runs
        too_old = keep_days is not None and now - finished_at > keep_days * DAY
        if too_many or too_old:
            doomed.append(run_id)
    return [run_id for run_id in sorted(doomed) if _delete(log_dir(data_dir, run_id))]


def _delete(path: Path) -> bool:
    """Remove a log directory (a symlink in its place is unlinked, never followed);
    whether something was removed."""
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
            return True
        if not path.exists():
            return False
        shutil.rmtree(path)
    except OSError as exc:
        log.warning("log_prune_failed", path=str(path), error=str(exc))
        return False
    return True


__all__ = ["log_dir", "prune_logs"]
