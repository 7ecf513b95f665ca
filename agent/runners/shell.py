"""The ``run`` kind, and the process supervision every subprocess-based runner shares.

A task's process leads its own process group (``start_new_session``), so a timeout
or cancellation stops everything it started: SIGTERM to the group, ``grace``
seconds, then SIGKILL. The calling worker thread reads the merged stdout/stderr
pipe itself with a selector, waking only for output, the child's exit (a pidfd
where the platform has one), the next deadline, or a periodic look at
``ctx.cancel`` (an Event cannot wake a selector). Processes the task leaves behind
are stopped the same way once the direct child has exited.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import structlog

from agent.runners.base import Outcome, OutcomeStatus, TaskContext
from agent.runners.output import OutputSink

log = structlog.get_logger(__name__)

SHELL = "/bin/sh"
READ_SIZE = 64 * 1024
CANCEL_POLL = 0.1
"""Seconds between looks at ``ctx.cancel`` while a process runs."""
CHILD_POLL = 0.05
"""Seconds between exit checks where no pidfd exists, and between group checks."""
DRAIN = 0.2
"""Seconds to keep reading a pipe held open by a process outside the task's group."""
SETTLE = 0.5
"""Seconds to wait for a SIGKILLed group to disappear before giving up on it."""


# Text with any of these needs a shell; so do words the shell treats itself.
_SHELL_SYNTAX = frozenset("$`\\\"'|&;<>()[]{}*?~#=%!\n\t")
# Words the shell handles itself (keywords, special and behaviour-changing builtins):
# text starting with one of them always goes to the shell. ``true``/``false`` are not here:
# the programs do exactly what the builtins do.
_SHELL_WORDS = frozenset(
    {
        ".",
        ":",
        "[",
        "alias",
        "bg",
        "break",
        "case",
        "cd",
        "command",
        "continue",
        "do",
        "done",
        "echo",
        "elif",
        "else",
        "esac",
        "eval",
        "exec",
        "exit",
        "export",
        "fc",
        "fg",
        "fi",
        "for",
        "function",
        "getopts",
        "hash",
        "if",
        "in",
        "jobs",
        "kill",
        "local",
        "printf",
        "pwd",
        "read",
        "readonly",
        "return",
        "select",
        "set",
        "shift",
        "source",
        "test",
        "then",
        "time",
        "times",
        "trap",
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
    }
)


@lru_cache(maxsize=1024)
def _which(word: str, path: str, cwd: str) -> str | None:
    """The executable a command word names, if the kernel can exec it as it is (a binary
    or a script with ``#!``; a script without one is the shell's to run)."""
    if "/" in word:
        full = os.path.join(cwd, word)
        found = full if os.path.isfile(full) and os.access(full, os.X_OK) else None
    else:
        found = shutil.which(word, path=path)
    if found is None:
        return None
    try:
        with open(found, "rb") as program:
            magic = program.read(4)
    except OSError:
        return None
    return found if magic == b"\x7fELF" or magic.startswith(b"#!") else None


def command_argv(command: str, env: Mapping[str, str], cwd: Path) -> list[str]:
    """How to run a ``run:`` command: ``/bin/sh -c TEXT``, or, like make, the program itself
    when the text is plain words naming an executable (no quoting, expansion, redirection,
    operators, builtins) — the shell would do exactly that, one process later."""
    words = command.split(" ")
    if (
        not command.strip()
        or _SHELL_SYNTAX.intersection(command)
        or words[0] in _SHELL_WORDS
        or "" in words
    ):
        return [SHELL, "-c", command]
    program = _which(words[0], env.get("PATH", os.defpath), str(cwd))
    if program is None:
        return [SHELL, "-c", command]  # the shell's own "not found" message and exit 127
    return [program, *words[1:]]


class ShellRunner:
    """Runs the task's shell text with ``/bin/sh -c``; parameters arrive only as env."""

    def run(self, config: str, ctx: TaskContext) -> Outcome:
        """Run one attempt of a ``run:`` task."""
        return supervise(command_argv(config, ctx.env, ctx.cwd), ctx)


def supervise(
    argv: Sequence[str], ctx: TaskContext, env: Mapping[str, str] | None = None
) -> Outcome:
    """Run ``argv`` as a process group under ``ctx``'s limits and report the outcome."""
    started = time.monotonic()
    if ctx.cancel.is_set():
        return Outcome(OutcomeStatus.CANCELLED, error="cancelled before start")
    try:
        sink = OutputSink.for_context(ctx)
    except OSError as exc:
        reason = f"cannot open log file {ctx.log_path}: {exc.strerror or exc}"
        return Outcome(OutcomeStatus.FAILED, error=reason, duration=_since(started))
    try:
        status, exit_code, error = _run(argv, ctx, ctx.env if env is None else env, sink)
    except Exception as exc:  # a runner reports, never raises: the child is already gone
        log.exception("runner_internal_error", task=ctx.task_id)
        status, exit_code, error = OutcomeStatus.FAILED, None, f"internal error: {exc!r}"
    finally:
        _close_quietly(sink)
    return Outcome(
        status, exit_code=exit_code, error=error, output_tail=sink.tail(), duration=_since(started)
    )


def _close_quietly(sink: OutputSink) -> None:
    """Close the sink; a failure to flush the last line is logged, not raised."""
    try:
        sink.close()
    except Exception:
        log.exception("runner_log_close_failed", path=str(sink.path))


def _run(
    argv: Sequence[str], ctx: TaskContext, env: Mapping[str, str], sink: OutputSink
) -> tuple[OutcomeStatus, int | None, str | None]:
    """Spawn and supervise; spawn errors become a failed status, never an exception."""
    try:
        proc = _spawn(argv, ctx.cwd, env)
    except (OSError, ValueError) as exc:
        error = f"cannot start {argv[0]} in {ctx.cwd}: {exc}"
        sink.note(error)
        return OutcomeStatus.FAILED, None, error
    try:
        supervisor = _Supervisor(proc, ctx, sink)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    try:
        if ctx.on_spawn is not None:
            ctx.on_spawn(proc.pid)
        supervisor.run()
    finally:
        supervisor.close()
    return supervisor.result()


_DEVNULL: list[int] = []


def _devnull() -> int:
    """One read-only /dev/null descriptor for every child's stdin (opened once)."""
    if not _DEVNULL:
        _DEVNULL.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    return _DEVNULL[0]


def _spawn(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session, output merged into one pipe."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=_devnull(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
        close_fds=True,
        start_new_session=True,
    )


class _Supervisor:
    """Reads one process group's output and enforces its timeout and cancellation."""

    def __init__(self, proc: subprocess.Popen[bytes], ctx: TaskContext, sink: OutputSink) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.ctx = ctx
        self.sink = sink
        self.pgid = proc.pid
        self.deadline = None if ctx.timeout is None else time.monotonic() + ctx.timeout
        self.stopped: OutcomeStatus | None = None
        self.kill_at: float | None = None
        self.killed_at: float | None = None
        self.pipe: int | None = proc.stdout.fileno()
        os.set_blocking(self.pipe, False)
        self.pidfd = _pidfd_open(proc.pid)
        self.selector = _make_selector()
        self.selector.register(self.pipe, selectors.EVENT_READ)
        if self.pidfd is not None:
            self.selector.register(self.pidfd, selectors.EVENT_READ)

    def run(self) -> None:
        """Supervise until the child has exited, its group is gone and the pipe is done."""
        self._until_exit()
        self._clear_group()
        self._drain()

    def result(self) -> tuple[OutcomeStatus, int | None, str | None]:
        """Status, exit code and error of the finished attempt."""
        code = self.proc.returncode
        if self.stopped is OutcomeStatus.TIMED_OUT:
            return self.stopped, code, f"timed out after {self.ctx.timeout:g}s"
        if self.stopped is OutcomeStatus.CANCELLED:
            return self.stopped, code, "cancelled"
        if code == 0:
            return OutcomeStatus.SUCCEEDED, code, None
        return OutcomeStatus.FAILED, code, _describe_exit(code)

    def close(self) -> None:
        """Release descriptors; a child still running (an internal error) is killed."""
        if self.proc.returncode is None:
            _signal_group(self.pgid, signal.SIGKILL)
            self.proc.wait()
        self.selector.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.pipe = None

    def _until_exit(self) -> None:
        """Read output until the direct child exits, stopping it on timeout or cancel."""
        while self.proc.returncode is None:
            now = time.monotonic()
            self._enforce(now)
            for key, _ in self.selector.select(self._wait_time(now)):
                if key.fd == self.pipe:
                    self._read()
                else:
                    self._reap()
            if self.pidfd is None:
                self.proc.poll()

    def _reap(self) -> None:
        """Collect the exited child and stop watching its pidfd."""
        self.proc.wait()
        if self.pidfd is not None:
            self.selector.unregister(self.pidfd)

    def _clear_group(self) -> None:
        """Stop what the task left running in its group: TERM, grace, KILL."""
        if not _group_alive(self.pgid):
            return
        if self.kill_at is None:
            log.warning("task_left_processes", task=self.ctx.task_id, pgid=self.pgid)
            self.sink.note("the command exited but left processes running: sending SIGTERM")
            self._terminate(time.monotonic())
        while True:
            now = time.monotonic()
            if self.killed_at is None and self.kill_at is not None and now >= self.kill_at:
                self._kill(now)
            if self.killed_at is not None and now >= self.killed_at + SETTLE:
                log.warning("task_group_survived_kill", task=self.ctx.task_id, pgid=self.pgid)
                return
            until = self.killed_at + SETTLE if self.killed_at is not None else self.kill_at
            assert until is not None
            self._read_for(min(max(0.0, until - now), CHILD_POLL))
            if not _group_alive(self.pgid):
                return

    def _drain(self) -> None:
        """Read what is left; a pipe held open from outside the group gets ``DRAIN`` s."""
        end = time.monotonic() + DRAIN
        while self.pipe is not None:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self._read_for(remaining)

    def _read_for(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            if key.fd == self.pipe:
                self._read()

    def _read(self) -> None:
        assert self.pipe is not None
        try:
            data = os.read(self.pipe, READ_SIZE)
        except BlockingIOError:
            return
        if data:
            self.sink.write(data)
            return
        self.selector.unregister(self.pipe)
        self.pipe = None

    def _enforce(self, now: float) -> None:
        """Start stopping the group on timeout or cancel; SIGKILL once grace is over."""
        if self.stopped is None:
            if self.deadline is not None and now >= self.deadline:
                self._stop(OutcomeStatus.TIMED_OUT, f"timed out after {self.ctx.timeout:g}s", now)
            elif self.ctx.cancel.is_set():
                self._stop(OutcomeStatus.CANCELLED, "cancelled", now)
        if self.killed_at is None and self.kill_at is not None and now >= self.kill_at:
            self._kill(now)

    def _wait_time(self, now: float) -> float | None:
        """How long the selector may sleep before a deadline or check is due."""
        waits: list[float] = []
        if self.stopped is None:
            waits.append(CANCEL_POLL)
            if self.deadline is not None:
                waits.append(self.deadline - now)
        elif self.killed_at is None and self.kill_at is not None:
            waits.append(self.kill_at - now)
        if self.pidfd is None:
            waits.append(CHILD_POLL)
        return max(0.0, min(waits)) if waits else None

    def _stop(self, status: OutcomeStatus, reason: str, now: float) -> None:
        self.stopped = status
        self.sink.note(f"{reason}: sending SIGTERM to the process group")
        self._terminate(now)

    def _terminate(self, now: float) -> None:
        _signal_group(self.pgid, signal.SIGTERM)
        self.kill_at = now + max(0.0, self.ctx.grace)

    def _kill(self, now: float) -> None:
        self.sink.note(f"still running {self.ctx.grace:g}s after SIGTERM: sending SIGKILL")
        _signal_group(self.pgid, signal.SIGKILL)
        self.killed_at = now


def _make_selector() -> selectors.BaseSelector:
    """``poll`` where available: cheapest for two descriptors and one short-lived loop."""
    if hasattr(selectors, "PollSelector"):
        return selectors.PollSelector()
    return selectors.DefaultSelector()


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


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group; one that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("task_group_signal_refused", pgid=pgid, signal=sig.name)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for init do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    """Scan ``/proc`` for a non-zombie member of ``pgid``; without ``/proc``, assume one."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    return any(entry.isdigit() and _live_in_group(entry, pgid) for entry in entries)


def _live_in_group(pid: str, pgid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z"


def _describe_exit(code: int | None) -> str | None:
    """``killed by SIGSEGV`` for a signal death; plain exit codes speak for themselves."""
    if code is None or code >= 0:
        return None
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _since(started: float) -> float:
    return time.monotonic() - started


__all__ = ["SHELL", "ShellRunner", "supervise"]
