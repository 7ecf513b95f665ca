"""What every part of the engine shares: its state, and the writes that keep the store
and the in-memory run contexts in step (status changes, events, hooks)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.log import get_logger
from podium.notify.routing import routes_for
from podium.runctx import AttemptResult, RunContext
from podium.runners.base import Outcome, TaskContext
from podium.runners.procloop import ProcessLoop
from podium.source.base import Source
from podium.spec.loader import WorkflowDef
from podium.states import TASK_FAILED, RunStatus, TaskStatus
from podium.store.records import RunRecord, RunTaskRecord
from podium.store.sqlite import SQLiteStore

log = get_logger("podium.engine")

PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL")
SATISFIED = frozenset({TaskStatus.SUCCEEDED, TaskStatus.SKIPPED})


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


class EngineCore:
    """The engine's state and shared steps; :class:`podium.engine.Engine` adds the rest."""

    def __init__(self, store: SQLiteStore, source: Source | None, config: EngineConfig) -> None:
        self.store = store
        self.source = source
        self.config = config
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, config.max_parallel), thread_name_prefix="podium-task"
        )
        self._results: queue.Queue[AttemptResult] = queue.Queue()
        self._ctx: dict[int, RunContext] = {}
        self._cancel = threading.Event()
        """Set to stop every attempt in flight (agent shutdown)."""
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._recovered = False
        self.hooks: list[Callable[[str, dict[str, Any]], None]] = []
        self._inflight = 0
        self._decisions_version: str | None = None
        self._submits: list[tuple[str, Any, TaskContext, int, str]] = []
        # shell attempts are spawned and watched by the coordinator itself (no thread hand-off)
        self._loop: ProcessLoop | None = ProcessLoop() if config.inline_shell else None
        self._inline: dict[int, tuple[int, str, str]] = {}
        self.finished_runs = 0
        self.set_aside: dict[int, tuple[str, str]] = {}
        """Runs left alone after an unexpected error: id → (workflow, error)."""
        """How many runs this engine saw end (the agent re-plans when it grows)."""

    def _release_dependants(self, ctx: RunContext, name: str) -> None:
        """``name`` is satisfied: dependants whose needs are now all met become ready."""
        for dep in ctx.dependants.get(name, []):
            ctx.unmet[dep] -= 1
            if ctx.unmet[dep] == 0 and ctx.status[dep] is TaskStatus.PENDING:
                ctx.ready.append(dep)

    def _sync_task(self, ctx: RunContext, name: str, stored: TaskStatus | None = None) -> bool:
        """Adopt a status an operator decision (skip, fail) wrote to the store since the run
        was loaded (``stored``: already read); True when there was one."""
        if stored is None:
            stored = self.store.get_run_task(ctx.run.id, name).status
        if stored is ctx.status[name]:
            return False
        ctx.note(name, stored)
        if stored in SATISFIED:
            self._release_dependants(ctx, name)
        elif stored in TASK_FAILED:
            ctx.failed = True
        log.info("task_decided_elsewhere", run_id=ctx.run.id, task=name, status=str(stored))
        return True

    def _task_failed_final(
        self,
        ctx: RunContext,
        name: str,
        error: str,
        status: TaskStatus = TaskStatus.FAILED,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self.store.tx():
            self._set_task(ctx, name, status, error=error, finished_at=time.time())
            self.store.set_failure(ctx.name, name, ctx.fingerprints[name], ctx.run.id)
            self._emit(
                "task_failed",
                ctx.name,
                ctx.wf,
                ctx.run.id,
                name,
                {"error": error, **(data or {}), "on_failure": str(ctx.on_failure)},
            )
        ctx.failed = True
        log.warning("task_failed", run_id=ctx.run.id, workflow=ctx.name, task=name, error=error)

    def _set_run(self, ctx: RunContext, status: RunStatus) -> bool:
        if ctx.run.status is status:
            return False
        ctx.run = self.store.set_run_status(ctx.run.id, status, run=ctx.run)
        return True

    def _set_task(self, ctx: RunContext, name: str, status: TaskStatus, **fields: Any) -> None:
        self.store.set_task_status(ctx.run.id, name, status, current=ctx.status[name], **fields)
        ctx.note(name, status)

    def _emit(
        self,
        kind: str,
        workflow: str,
        wf: WorkflowDef,
        run_id: int,
        task: str | None,
        data: dict[str, Any],
    ) -> None:
        routes = routes_for(kind, wf.spec.notify, self.config.notifiers)
        self.store.emit(kind, workflow=workflow, run_id=run_id, task=task, data=data, routes=routes)

    def _run_summary(self, ctx: RunContext) -> dict[str, Any]:
        run = ctx.run
        return {
            "revision": run.revision,
            "trigger": run.trigger,
            "tasks": {n: str(s) for n, s in ctx.status.items()},
            "duration": (time.time() - run.started_at) if run.started_at else 0.0,
        }

    def _hook(self, name: str, ctx: RunContext, task: str, outcome: Outcome) -> None:
        for hook in self.hooks:
            try:
                hook(
                    name,
                    {
                        "workflow": ctx.name,
                        "task": task,
                        "run_id": ctx.run.id,
                        "duration": outcome.duration,
                        "status": str(outcome.status),
                    },
                )
            except Exception:  # hooks never break a run
                log.exception("hook_failed", hook=name)

    def _hold(
        self,
        run: RunRecord,
        wf: WorkflowDef,
        rt: RunTaskRecord,
        attempt_id: int,
        attempt_number: int,
        phase: str,
        why: str = "the agent stopped while it ran",
    ) -> None:
        """A non-idempotent attempt was cut short: mark its task interrupted, keep a hold
        for that task and fingerprint, and announce that the run waits for a decision."""
        action = "rollback of this non-idempotent task" if phase == "rollback" else "task"
        reason = f"interrupted: {why}; the {action} may have had part of its effect"
        self.store.set_task_status(
            run.id, rt.task, TaskStatus.INTERRUPTED, error=f"{reason}; retry, skip or fail it"
        )
        self.store.set_hold(
            run.workflow, rt.task, rt.fingerprint, phase, run.id, attempt_id, reason
        )
        if phase == "rollback":  # nothing else of the rollback runs until someone decides
            self.store.set_run_status(run.id, RunStatus.WAITING_DECISION)
        self._emit(
            "waiting_decision",
            run.workflow,
            wf,
            run.id,
            rt.task,
            {"attempt": attempt_number, "phase": phase, "reason": reason},
        )

    def _set_aside(self, run_id: int, workflow: str, exc: Exception) -> None:
        """Leave one run alone after an unexpected error (the engine proper implements it)."""
        raise NotImplementedError

    def _finish(self, ctx: RunContext) -> None:
        """Stop tracking a finished run (the engine proper implements it)."""
        raise NotImplementedError

    def _start(self, ctx: RunContext, name: str, phase: str = "run") -> bool:
        """Start an attempt (the engine proper implements it)."""
        raise NotImplementedError


__all__ = ["PASS_ENV", "SATISFIED", "EngineConfig", "EngineCore"]
