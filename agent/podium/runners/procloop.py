"""Supervising task processes: each attempt leads its own session and process group, and
is contained (:mod:`podium.runners.containment`: a cgroup, or its marker, its process
tree and the orphans the agent receives as a child subreaper).

A timeout or cancellation stops everything a task started, including what left its
session: SIGTERM to all of it, ``grace`` seconds, then SIGKILL; processes a task leaves
behind are stopped the same way once its direct child has exited, and the orphans of
tasks that ended are reaped. :class:`ProcessLoop` watches any number of attempts from
one thread with one poll over their output pipes and pidfds, so the engine's coordinator
spawns and watches every shell task itself, like ``make``, and a runner on a worker
thread uses the same loop for its single attempt.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from podium.log import get_logger
from podium.runners.base import Outcome, OutcomeStatus, TaskContext
from podium.runners.containment import Containment, Scope, containment, reap_orphans
from podium.runners.output import OutputSink
from podium.runners.spawn import Child, spawn

log = get_logger(__name__)

READ_SIZE = 64 * 1024
CANCEL_POLL = 0.1
"""Seconds between looks at ``ctx.cancel`` while a process runs."""
CHILD_POLL = 0.05
"""Seconds between exit checks where no pidfd exists, and between group checks."""
DRAIN = 0.2
"""Seconds to keep reading a pipe held open by a process outside the task's group."""
DRAIN_READS = 16
"""Reads taken at once when a process exits (16 x READ_SIZE); the rest in later rounds."""
SETTLE = 0.5
"""Seconds to wait for a SIGKILLed attempt to disappear before giving up on it."""
REAP_EVERY = 1.0
"""Seconds between collections of ended orphans while attempts run."""


_DEVNULL: list[int] = []
_DEVNULL_LOCK = threading.Lock()


def _devnull() -> int:
    """One read-only /dev/null descriptor for every child's stdin (opened once)."""
    if not _DEVNULL:
        with _DEVNULL_LOCK:
            if not _DEVNULL:
                _DEVNULL.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    return _DEVNULL[0]


@dataclass
class _Proc:
    key: Hashable
    proc: Child
    ctx: TaskContext
    sink: OutputSink
    scope: Scope
    started: float
    pipe: int | None
    pidfd: int | None
    deadline: float | None
    stopped: OutcomeStatus | None = None
    kill_at: float | None = None
    killed_at: float | None = None
    exited: bool = False
    clearing: bool = False
    drain_until: float | None = None


class ProcessLoop:
    """Spawns shell attempts and reports their outcomes from the calling thread."""

    def __init__(self) -> None:
        self._poller = select.poll()
        self._watched: dict[int, _Proc | None] = {}
        """Descriptor -> the attempt it belongs to (None: the wake-up pipe)."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._watch(self._wake_r, None)
        self._procs: dict[Hashable, _Proc] = {}
        self._containment: Containment | None = None
        """Chosen when the first attempt starts (a loop that never starts one chooses none)."""
        self._reap_at = time.monotonic() + REAP_EVERY

    def __len__(self) -> int:
        return len(self._procs)

    def wake(self) -> None:
        """Make a waiting :meth:`poll` return (safe from any thread)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def spawn(self, key: Hashable, argv: Sequence[str], ctx: TaskContext) -> Outcome | None:
        """Start an attempt; an immediate outcome (spawn failure, cancelled) is returned."""
        started = time.monotonic()
        if ctx.cancel.is_set():
            return Outcome(OutcomeStatus.CANCELLED, error="cancelled before start")
        sink = OutputSink.for_context(ctx)
        if self._containment is None:
            self._containment = containment()
        scope = self._containment.enter(ctx.env)
        try:
            proc, pipe = spawn(argv, ctx.cwd, ctx.env, _devnull(), scope.target)
        except (OSError, ValueError) as exc:
            scope.release()
            error = f"cannot start {argv[0]} in {ctx.cwd}: {exc}"
            with contextlib.suppress(OSError):  # the log may be what cannot be written
                sink.note(error)
                sink.close()
            return Outcome(OutcomeStatus.FAILED, error=error, output_tail=sink.tail())
        scope.started(proc)
        os.set_blocking(pipe, False)
        pidfd = _pidfd_open(proc.pid)
        entry = _Proc(
            key,
            proc,
            ctx,
            sink,
            scope,
            started,
            pipe,
            pidfd,
            None if ctx.timeout is None else started + ctx.timeout,
        )
        self._watch(pipe, entry)
        if pidfd is not None:
            self._watch(pidfd, entry)
        self._procs[key] = entry
        if ctx.on_spawn is not None:
            ctx.on_spawn(proc.pid)  # if it raises, close() stops the process
        return None

    def poll(self, timeout: float | None) -> list[tuple[Hashable, Outcome]]:
        """Wait up to ``timeout`` for events; return the attempts that finished."""
        now = time.monotonic()
        wait = self._wait_time(now)
        if timeout is not None:
            wait = timeout if wait is None else min(wait, timeout)
        ms = -1 if wait is None else max(0, int(wait * 1000 + 0.999))
        for fd, _ in self._poller.poll(ms):
            if fd not in self._watched:
                continue  # unwatched by an earlier event of this round
            entry = self._watched[fd]
            if entry is None:
                self._drain_wake()
            elif fd == entry.pipe:
                self._read(entry)
            else:
                self._reaped(entry)
        now = time.monotonic()
        done: list[tuple[Hashable, Outcome]] = []
        for entry in list(self._procs.values()):
            outcome = self._advance(entry, now)
            if outcome is not None:
                done.append((entry.key, outcome))
        if self._procs and now >= self._reap_at:
            self._reap(now)
        return done

    def close(self) -> None:
        """Kill whatever still runs and release every descriptor."""
        for entry in list(self._procs.values()):
            entry.scope.signal(signal.SIGKILL)
            self._finish(entry)
        self._reap(time.monotonic())
        self._unwatch(self._wake_r)
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- one process -------------------------------------------------------------

    def _advance(self, entry: _Proc, now: float) -> Outcome | None:
        proc = entry.proc
        if not entry.exited:
            self._enforce(entry, now)
            if entry.pidfd is None and proc.poll() is not None:
                entry.exited = True
            if not entry.exited:
                return None
        if not entry.clearing and entry.drain_until is None:
            if entry.scope.alive():
                entry.clearing = True
                if entry.kill_at is None:
                    log.warning("task_left_processes", task=entry.ctx.task_id, pid=proc.pid)
                    entry.sink.note(
                        "the command exited but left processes running: sending SIGTERM"
                    )
                    self._terminate(entry, now)
            else:
                entry.drain_until = now + DRAIN
        if entry.clearing:
            if entry.killed_at is None and entry.kill_at is not None and now >= entry.kill_at:
                self._kill(entry, now)
            gone = not entry.scope.alive()
            if not gone and entry.killed_at is not None:
                entry.scope.signal(signal.SIGKILL)  # what was forked since the last round
            stuck = entry.killed_at is not None and now >= entry.killed_at + SETTLE
            if stuck and not gone:
                log.warning("task_processes_survived_kill", task=entry.ctx.task_id)
            if gone or stuck:
                entry.clearing = False
                entry.drain_until = now + DRAIN
            else:
                return None
        if entry.pipe is not None and entry.drain_until is not None and now < entry.drain_until:
            return None
        return self._finish(entry)

    def _finish(self, entry: _Proc) -> Outcome:
        proc = entry.proc
        if entry.pipe is not None:
            self._unwatch(entry.pipe)
            os.close(entry.pipe)
            entry.pipe = None
        if entry.pidfd is not None:
            if not entry.exited:
                self._unwatch(entry.pidfd)
            os.close(entry.pidfd)
            entry.pidfd = None
        if proc.returncode is None:
            entry.scope.signal(signal.SIGKILL)
            proc.wait()
        entry.scope.release()
        with contextlib.suppress(OSError):
            entry.sink.close()
        self._procs.pop(entry.key, None)
        if self._containment is not None and self._containment.subreaper:
            reap_orphans()
        code = proc.returncode
        duration = time.monotonic() - entry.started
        tail = entry.sink.tail()
        if entry.stopped is OutcomeStatus.TIMED_OUT:
            error = f"timed out after {entry.ctx.timeout:g}s"
            return Outcome(entry.stopped, code, error=error, output_tail=tail, duration=duration)
        if entry.stopped is OutcomeStatus.CANCELLED:
            return Outcome(
                entry.stopped, code, error="cancelled", output_tail=tail, duration=duration
            )
        if code == 0:
            return Outcome(OutcomeStatus.SUCCEEDED, 0, output_tail=tail, duration=duration)
        return Outcome(
            OutcomeStatus.FAILED,
            code,
            error=_describe_exit(code),
            output_tail=tail,
            duration=duration,
        )

    def _read(self, entry: _Proc, drain: bool = False) -> None:
        """Take what the pipe holds (one read, or with ``drain`` up to :data:`DRAIN_READS`:
        a process left behind that keeps writing must not hold the loop); at its end see
        whether the process has exited too, so both are noticed in one round."""
        reads = DRAIN_READS if drain else 1
        while entry.pipe is not None and reads > 0:
            reads -= 1
            try:
                data = os.read(entry.pipe, READ_SIZE)
            except BlockingIOError:
                return
            if data:
                entry.sink.write(data)
                continue
            self._unwatch(entry.pipe)
            os.close(entry.pipe)
            entry.pipe = None
            if not entry.exited and entry.proc.poll() is not None:
                self._exited(entry)

    def _reaped(self, entry: _Proc) -> None:
        entry.proc.wait()
        self._exited(entry)
        self._read(entry, drain=True)

    def _reap(self, now: float) -> None:
        """Collect orphans of tasks that have ended (the agent is their subreaper)."""
        self._reap_at = now + REAP_EVERY
        if self._containment is not None and self._containment.subreaper:
            reap_orphans()

    def _exited(self, entry: _Proc) -> None:
        entry.exited = True
        if entry.pidfd is not None:
            self._unwatch(entry.pidfd)

    def _enforce(self, entry: _Proc, now: float) -> None:
        if entry.stopped is None:
            if entry.deadline is not None and now >= entry.deadline:
                entry.stopped = OutcomeStatus.TIMED_OUT
                entry.sink.note(
                    f"timed out after {entry.ctx.timeout:g}s: sending SIGTERM to its processes"
                )
                self._terminate(entry, now)
            elif entry.ctx.cancel.is_set():
                entry.stopped = OutcomeStatus.CANCELLED
                entry.sink.note("cancelled: sending SIGTERM to its processes")
                self._terminate(entry, now)
        if entry.killed_at is None and entry.kill_at is not None and now >= entry.kill_at:
            self._kill(entry, now)

    def _terminate(self, entry: _Proc, now: float) -> None:
        entry.scope.signal(signal.SIGTERM)
        entry.kill_at = now + max(0.0, entry.ctx.grace)

    def _kill(self, entry: _Proc, now: float) -> None:
        entry.sink.note(f"still running {entry.ctx.grace:g}s after SIGTERM: sending SIGKILL")
        entry.scope.signal(signal.SIGKILL)
        entry.killed_at = now

    def _wait_time(self, now: float) -> float | None:
        waits: list[float] = []
        for entry in self._procs.values():
            if not entry.exited:
                if entry.stopped is None:
                    waits.append(CANCEL_POLL)
                    if entry.deadline is not None:
                        waits.append(entry.deadline - now)
                if entry.pidfd is None:
                    waits.append(CHILD_POLL)
            if entry.kill_at is not None and entry.killed_at is None:
                waits.append(entry.kill_at - now)
            if entry.clearing:
                waits.append(CHILD_POLL)
            if entry.drain_until is not None:
                waits.append(entry.drain_until - now)
        return max(0.0, min(waits)) if waits else None

    def _watch(self, fd: int, entry: _Proc | None) -> None:
        self._poller.register(fd, select.POLLIN)
        self._watched[fd] = entry

    def _unwatch(self, fd: int) -> None:
        self._poller.unregister(fd)
        del self._watched[fd]

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass


def _pidfd_open(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits, where the OS offers one."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:
        return None
    return fd


def _describe_exit(code: int | None) -> str | None:
    """``killed by SIGSEGV`` for a signal death; plain exit codes speak for themselves."""
    if code is None or code >= 0:
        return None
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


__all__ = ["ProcessLoop"]
