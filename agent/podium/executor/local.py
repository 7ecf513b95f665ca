"""The local executor: attempts run as processes and threads of this agent.

Shell tasks (``run``) are spawned and watched by the caller's own thread through one
:class:`~podium.runners.procloop.ProcessLoop` (no thread hand-off, as ``make`` does);
other kinds (``http``, ``python``, plugins) run on a pool of worker threads through
their runner. Secrets are resolved here, right before the attempt starts, and registered
for redaction.
"""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from podium import secrets
from podium.errors import PodiumError
from podium.executor.base import AttemptOrder, ExecutorEvent, Finished
from podium.kinds import runner_for
from podium.log import get_logger
from podium.runners.base import Outcome, OutcomeStatus, TaskContext
from podium.runners.procloop import ProcessLoop
from podium.runners.shell import command_argv

log = get_logger("podium.executor")

_WAKE = object()


class _Flag:
    """An attempt's cancel flag (all a runner asks of it is ``is_set``)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True


class LocalExecutor:
    """:class:`~podium.executor.base.Executor` on this machine."""

    def __init__(
        self, *, max_workers: int = 32, secrets_dir: Path | None = None, inline_shell: bool = True
    ) -> None:
        self.secrets_dir = secrets_dir
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, max_workers), thread_name_prefix="podium-task"
        )
        self._events: queue.Queue[object] = queue.Queue()
        """Events from worker threads (and immediate outcomes), for :meth:`poll`."""
        self._loop: ProcessLoop | None = ProcessLoop() if inline_shell else None
        self._cancels: dict[int, _Flag] = {}
        self._paths: dict[str, Path] = {}
        """Working directories seen (a run's tasks share theirs), as paths."""
        """Attempt id → its cancel flag, while it runs."""

    # -- Executor ---------------------------------------------------------------

    def submit(self, order: AttemptOrder) -> None:
        cancel = _Flag()
        try:
            env = dict(order.env)  # the order stays as it was given
            for name, secret in order.secrets.items():
                env[name] = secrets.resolve(secret, self.secrets_dir)
        except PodiumError as exc:
            self._events.put(
                Finished(order.attempt_id, Outcome(OutcomeStatus.FAILED, error=str(exc)))
            )
            return
        ctx = TaskContext(
            run_id=order.run_id,
            workflow=order.workflow,
            task_id=order.task,
            attempt=order.number,
            cwd=self._path(order.cwd),
            repo_root=self._path(order.repo_root),
            env=env,
            log_path=Path(order.log_path),
            timeout=order.timeout,
            grace=order.grace,
            log_max_bytes=order.log_max_bytes,
            redact=secrets.redact,
            cancel=cancel,
            on_spawn=None,
        )
        self._cancels[order.attempt_id] = cancel
        if order.kind == "run" and self._loop is not None:
            argv = command_argv(order.config, env, ctx.cwd)
            outcome = self._loop.spawn(order.attempt_id, argv, ctx)
            if outcome is not None:
                self._done(order.attempt_id)
                self._events.put(Finished(order.attempt_id, outcome))
            return
        self._pool.submit(self._execute, order, ctx)

    def poll(self, timeout: float | None) -> list[ExecutorEvent]:
        out = self._ready()
        if self._loop is not None:
            finished = self._loop.poll(0.0 if out else timeout)
            for key, outcome in finished:
                assert isinstance(key, int)
                self._done(key)
                out.append(Finished(key, outcome))
            return out + self._ready() if finished else out
        if out or timeout == 0:
            return out
        try:
            first = self._events.get(timeout=timeout)
        except queue.Empty:
            return out
        if first is not _WAKE:
            out.append(first)  # type: ignore[arg-type]
        return out + self._ready()

    def cancel(self, attempt_id: int) -> None:
        flag = self._cancels.get(attempt_id)
        if flag is not None:
            flag.set()
        self.wake()

    def cancel_all(self) -> None:
        for flag in list(self._cancels.values()):
            flag.set()
        self.wake()

    def wake(self) -> None:
        if self._loop is not None:
            self._loop.wake()
        else:
            self._events.put(_WAKE)

    def close(self) -> None:
        self.cancel_all()
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def running(self) -> int:
        """Attempts started and not reported finished yet."""
        return len(self._cancels)

    # -- internals --------------------------------------------------------------

    def _ready(self) -> list[ExecutorEvent]:
        out: list[ExecutorEvent] = []
        while self._events.qsize():  # only the polling thread takes from the queue
            item = self._events.get_nowait()
            if item is not _WAKE:
                out.append(item)  # type: ignore[arg-type]
        return out

    def _path(self, text: str) -> Path:
        path = self._paths.get(text)
        if path is None:
            if len(self._paths) > 256:
                self._paths.clear()
            path = self._paths[text] = Path(text)
        return path

    def _done(self, attempt_id: int) -> None:
        self._cancels.pop(attempt_id, None)

    def _execute(self, order: AttemptOrder, ctx: TaskContext) -> None:
        """Worker thread: run one attempt through its kind's runner."""
        import structlog

        with structlog.contextvars.bound_contextvars(
            run_id=order.run_id, workflow=order.workflow, task=order.task
        ):
            try:
                outcome = runner_for(order.kind).run(order.config, ctx)
            except Exception as exc:  # a runner bug must not kill the coordinator
                log.exception("runner_crashed", kind=order.kind)
                outcome = Outcome(OutcomeStatus.FAILED, error=f"runner error: {exc}")
        self._events.put(Finished(order.attempt_id, outcome))
        self._cancels.pop(order.attempt_id, None)
        if self._loop is not None:
            self._loop.wake()


__all__ = ["LocalExecutor"]
