"""Starting one task process: the child leads a new session, reads /dev/null, and writes
stdout and stderr into one pipe; nothing else of the agent's is inherited.

On Linux the child is made with ``posix_spawn`` (one ``vfork``-style clone and an
``exec``, no Python in between) — the cheapest way a Python process can start a
program, which matters when a run has thousands of short tasks. ``posix_spawn`` has no
portable "working directory" action, so the spawning thread first takes a working
directory of its own (``unshare(CLONE_FS)``: only that thread's ``chdir`` moves, never
another thread's), steps into the task's directory for the spawn and straight back.
Where that is not possible, :class:`subprocess.Popen` does the same job.

What ``Popen(close_fds=True, restore_signals=True)`` guarantees holds on both paths:
Python opens every descriptor close-on-exec, and descriptors the agent inherited are
made close-on-exec when the first process is spawned (:func:`seal_inherited`); SIGPIPE
and SIGXFSZ are back to their defaults in the child, and its signal mask is empty.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import structlog

log = structlog.get_logger(__name__)

CLONE_FS = 0x200
"""``unshare`` flag: the thread gets its own root, working directory and umask."""
_DEFAULT_SIGNALS = tuple(
    s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s
)
"""Signals Python ignores that a child must see with their default action."""


class Child:
    """A spawned process: its pid (= its process group) and, once reaped, its exit code."""

    __slots__ = ("_popen", "pid", "returncode")

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._popen = popen

    def poll(self) -> int | None:
        """The exit code if the process has ended (reaping it), else None."""
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self) -> int:
        """Block until the process ends; its exit code (negative: killed by that signal)."""
        while self.returncode is None:
            self._reap(0)
        return self.returncode

    def _reap(self, flags: int) -> None:
        if self._popen is not None:
            self.returncode = self._popen.poll() if flags else self._popen.wait()
            return
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere: nothing more can be known
            self.returncode = 255
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


_sealed = False
_posix_spawn_usable = True
_seal_lock = threading.Lock()
_local = threading.local()


def seal_inherited() -> None:
    """Make every descriptor above 2 that a child could inherit close-on-exec (once).

    Python's own descriptors are close-on-exec from birth; this catches the ones the
    agent was started with (a service manager's, a shell's ``3>file``)."""
    global _sealed
    if _sealed:
        return
    with _seal_lock:
        if _sealed:
            return
        _sealed = True
        try:
            fds = [int(name) for name in os.listdir("/proc/self/fd")]
        except OSError:
            return
        for fd in fds:
            if fd > 2:
                with contextlib.suppress(OSError):  # the listing's own descriptor is gone
                    if os.get_inheritable(fd):
                        os.set_inheritable(fd, False)


def _own_cwd() -> bool:
    """Give this thread a working directory of its own; False where the platform cannot
    (then Popen is used). Done before every spawn: a thread this one started since the
    last time shares its directory again (a no-op for the kernel when nobody does)."""
    unshare = getattr(_local, "unshare", None)
    if unshare is None:
        unshare = _local.unshare = _unshare_fs()
    if unshare is False:
        return False
    try:
        unshare(CLONE_FS)
    except OSError as exc:
        log.info("spawn_fallback_popen", reason=str(exc))
        _local.unshare = False
        return False
    return True


def _unshare_fs() -> Callable[[int], None] | Literal[False]:
    """``os.unshare`` (Python 3.12+) or libc's; False off Linux or without posix_spawn."""
    if not sys.platform.startswith("linux") or not hasattr(os, "posix_spawn"):
        return False
    unshare: Callable[[int], None] | None = getattr(os, "unshare", None)
    if unshare is not None:
        return unshare
    import ctypes  # only where the os module lacks it

    libc_unshare = ctypes.CDLL(None, use_errno=True).unshare

    def call(flags: int) -> None:
        if libc_unshare(flags) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))

    return call


def spawn(
    argv: Sequence[str], cwd: Path | str, env: Mapping[str, str], stdin: int
) -> tuple[Child, int]:
    """Start ``argv`` in ``cwd`` with exactly ``env``; return the child and the read end of
    its output pipe. Raises OSError (or ValueError) when it cannot be started."""
    seal_inherited()
    # a bare program name is looked up in the task's PATH, which Popen does
    here = _here() if "/" in argv[0] and _posix_spawn_usable and _own_cwd() else None
    if here is None:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
            close_fds=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        with proc.stdout:
            try:
                return Child(proc.pid, proc), os.dup(proc.stdout.fileno())
            except OSError:  # out of descriptors: do not leave the child behind
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
    try:
        read, write = os.pipe()
    except OSError:
        os.close(here)
        raise
    try:
        try:
            os.chdir(cwd)
            pid = os.posix_spawn(
                argv[0],
                list(argv),
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, stdin, 0),
                    (os.POSIX_SPAWN_DUP2, write, 1),
                    (os.POSIX_SPAWN_DUP2, write, 2),
                ],
                setsid=True,
                setsigmask=(),
                setsigdef=_DEFAULT_SIGNALS,
            )
        finally:
            os.fchdir(here)
            os.close(here)
    except NotImplementedError:  # a Python built without POSIX_SPAWN_SETSID: Popen from now on
        os.close(read)
        os.close(write)
        _disable_posix_spawn()
        return spawn(argv, cwd, env, stdin)
    except BaseException:
        os.close(read)
        os.close(write)
        raise
    os.close(write)
    return Child(pid), read


def _here() -> int | None:
    """This thread's working directory as a descriptor to come back to (``O_PATH``: no read
    permission needed); None when even that is impossible (then Popen is used)."""
    try:
        return os.open(".", getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None


def _disable_posix_spawn() -> None:
    global _posix_spawn_usable
    _posix_spawn_usable = False
    log.info("spawn_fallback_popen", reason="posix_spawn cannot start a new session here")


__all__ = ["Child", "seal_inherited", "spawn"]
