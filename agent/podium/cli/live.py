"""A live progress display for ``podium reconcile`` on a terminal (rich), fed from the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from podium.store import Store


def _table(store: Store) -> Any:
    from rich.table import Table

    from podium.cli.runs_view import STYLE

    table = Table("run", "workflow", "status", "done", "running", "waiting", box=None)
    for run in store.active_runs() or store.list_runs(limit=5):
        tasks = store.run_tasks(run.id).values()
        total = len(tasks)
        done = sum(1 for t in tasks if str(t.status) in ("succeeded", "skipped", "rolled_back"))
        running = [t.task for t in tasks if str(t.status) in ("running", "rolling_back")]
        waiting = [t.task for t in tasks if str(t.status) in ("waiting_approval", "interrupted")]
        style = STYLE.get(str(run.status), "")
        table.add_row(
            str(run.id),
            run.workflow,
            f"[{style}]{run.status}[/]" if style else str(run.status),
            f"{done}/{total}",
            ", ".join(running[:4]) + (" …" if len(running) > 4 else ""),
            ", ".join(waiting[:4]),
        )
    return table


@contextmanager
def live_progress(store: Store, enabled: bool) -> Iterator[None]:
    """Refresh a table of active runs a few times a second while the block runs."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.live import Live

    stop = threading.Event()
    console = Console(stderr=True)
    with Live(_table(store), console=console, refresh_per_second=4, transient=True) as live:

        def refresh() -> None:
            while not stop.wait(0.25):
                live.update(_table(store))

        thread = threading.Thread(target=refresh, name="podium-live", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=1)


__all__ = ["live_progress"]
