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

A child can be started inside a cgroup (v2), so that nothing it starts can leave it:
where libc offers ``posix_spawnattr_setcgroup_np`` (glibc 2.39+: ``clone3`` with
``CLONE_INTO_CGROUP``), the child is born there, at no extra cost; elsewhere a
``/bin/sh`` step joins the cgroup and then execs the command (one more exec and a
cgroup migration per task). Either way it is in the cgroup before the command runs.

Every child spawned here is known until it is reaped (:func:`direct_children`): the
agent is a child subreaper, and what reaps orphans of tasks must leave these alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from podium.log import get_logger

log = get_logger(__name__)

CLONE_FS = 0x200
"""``unshare`` flag: the thread gets its own root, working directory and umask."""
_DEFAULT_SIGNALS = tuple(
    s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s
)
"""Signals Python ignores that a child must see with their default action."""
JOIN_CGROUP = 'echo 0 >"$0/cgroup.procs" || exit 126; exec "$@"'
"""The ``/bin/sh`` step that moves itself into the cgroup ``$0``, then becomes the command."""


class CgroupTarget(NamedTuple):
    """A cgroup (v2) directory a child is to start in: its path and an open descriptor."""

    path: str
    fd: int


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
            if self.returncode is not None:
                _direct.discard(self.pid)
            return
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere: nothing more can be known
            self.returncode = 255
            _direct.discard(self.pid)
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)
        if self.returncode is not None:
            _direct.discard(self.pid)


_sealed = False
_posix_spawn_usable = True
_seal_lock = threading.Lock()
_local = threading.local()
_direct: set[int] = set()
"""Pids of children spawned here and not yet reaped."""
_direct_lock = threading.Lock()
"""Held while a child is spawned and registered, and while orphans are reaped."""


def direct_pids() -> frozenset[int]:
    """The children spawned here and not yet reaped, as of now."""
    return frozenset(_direct)


@contextlib.contextmanager
def direct_children() -> Iterator[frozenset[int]]:
    """The children spawned here and not yet reaped; none is spawned while this is held."""
    with _direct_lock:
        yield frozenset(_direct)


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
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str],
    stdin: int,
    cgroup: CgroupTarget | None = None,
) -> tuple[Child, int]:
    """Start ``argv`` in ``cwd`` with exactly ``env`` (inside ``cgroup`` when one is given);
    return the child and the read end of its output pipe. Raises OSError (or ValueError)
    when it cannot be started."""
    seal_inherited()
    with _direct_lock:
        child, pipe = _spawn(argv, cwd, env, stdin, cgroup)
        _direct.add(child.pid)
    return child, pipe


def cgroup_spawn_native() -> bool:
    """Whether a child can be started inside a cgroup without an extra step (libc's
    ``posix_spawnattr_setcgroup_np``)."""
    libc = _libc()
    return libc is not None and libc.cgroup


def _spawn(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str],
    stdin: int,
    cgroup: CgroupTarget | None,
) -> tuple[Child, int]:
    if cgroup is not None:
        libc = _libc()
        if libc is not None and libc.cgroup and "/" in argv[0]:
            return libc.spawn(argv, cwd, env, stdin, cgroup.fd)
        argv = ["/bin/sh", "-c", JOIN_CGROUP, cgroup.path, *argv]
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
        return _spawn(argv, cwd, env, stdin, None)
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


class _Libc:
    """libc's own ``posix_spawn`` through ctypes, for what ``os.posix_spawn`` cannot ask
    for: a cgroup to start in (glibc 2.39+), and a working directory of the child's own."""

    SETSIGDEF = 0x04
    SETSIGMASK = 0x08
    SETSID = 0x80
    SETCGROUP = 0x100
    OPAQUE = 1024
    """Bytes reserved for ``posix_spawnattr_t`` and the file actions (glibc: 336 and 80)."""

    def __init__(self, lib: Any) -> None:
        import ctypes

        self._ctypes = ctypes
        self._lib = lib
        self.cgroup = hasattr(lib, "posix_spawnattr_setcgroup_np")
        lib.posix_spawn.argtypes = [
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_char_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_char_p),
        ]
        lib.posix_spawn_file_actions_addchdir_np.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.posix_spawnattr_setflags.argtypes = [ctypes.c_void_p, ctypes.c_short]
        sigmask = ctypes.create_string_buffer(128)
        sigdef = ctypes.create_string_buffer(128)
        lib.sigemptyset(sigmask)
        lib.sigemptyset(sigdef)
        for sig in _DEFAULT_SIGNALS:
            lib.sigaddset(sigdef, int(sig))
        # made once: every spawn happens under _direct_lock, so one at a time
        self._attrs: list[Any] = []
        for flags in (0, self.SETCGROUP) if self.cgroup else (0,):
            attr = ctypes.create_string_buffer(self.OPAQUE)
            lib.posix_spawnattr_init(attr)
            flags |= self.SETSID | self.SETSIGMASK | self.SETSIGDEF
            lib.posix_spawnattr_setflags(attr, flags)
            lib.posix_spawnattr_setsigmask(attr, sigmask)
            lib.posix_spawnattr_setsigdefault(attr, sigdef)
            self._attrs.append(attr)

    def spawn(
        self,
        argv: Sequence[str],
        cwd: Path | str,
        env: Mapping[str, str],
        stdin: int,
        cgroup: int | None,
    ) -> tuple[Child, int]:
        """Start ``argv[0]`` (a path) like :func:`spawn`, inside the cgroup whose directory
        descriptor is ``cgroup`` when one is given."""
        ctypes, lib = self._ctypes, self._lib
        code = sys.getfilesystemencoding()
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv])
        pairs = [f"{k}={v}".encode(code, "surrogateescape") for k, v in env.items()]
        c_env = (ctypes.c_char_p * (len(pairs) + 1))(*pairs)  # the last stays NULL
        attr = self._attrs[cgroup is not None]
        actions = ctypes.create_string_buffer(self.OPAQUE)
        read, write = os.pipe()
        lib.posix_spawn_file_actions_init(actions)
        try:
            if cgroup is not None:
                lib.posix_spawnattr_setcgroup_np(attr, cgroup)
            for source, target in ((stdin, 0), (write, 1), (write, 2)):
                lib.posix_spawn_file_actions_adddup2(actions, source, target)
            lib.posix_spawn_file_actions_addchdir_np(actions, os.fsencode(cwd))
            pid = ctypes.c_int()
            err = lib.posix_spawn(ctypes.byref(pid), c_argv[0], actions, attr, c_argv, c_env)
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
            lib.posix_spawn_file_actions_destroy(actions)
        if err:
            os.close(read)
            raise OSError(err, os.strerror(err), argv[0])
        return Child(pid.value), read


_LIBC: list[_Libc | None] = []


def _libc() -> _Libc | None:
    """libc's ``posix_spawn`` through ctypes (None where there is no usable one)."""
    if not _LIBC:
        with _seal_lock:
            if not _LIBC:
                _LIBC.append(_load_libc())
    return _LIBC[0]


def _load_libc() -> _Libc | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        lib = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if not hasattr(lib, "posix_spawn_file_actions_addchdir_np"):  # glibc < 2.29
        return None
    return _Libc(lib)


__all__ = [
    "JOIN_CGROUP",
    "CgroupTarget",
    "Child",
    "cgroup_spawn_native",
    "direct_children",
    "direct_pids",
    "seal_inherited",
    "spawn",
]
