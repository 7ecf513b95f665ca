"""Containing task attempts: everything an attempt starts can be found and killed, whatever
it does with sessions and process groups (``setsid``, a double fork, ``set -m``).

One kind of containment is chosen per process, the first time a task is about to start
(:func:`containment`), and logged once (``containment_selected``); :func:`describe` says
which is in force, for status pages.

``cgroup2``
    Each attempt runs in a cgroup of its own, which its first process enters before the
    command runs (see :mod:`podium.runners.spawn`), so nothing it starts can leave it.
    Where the cgroups live, how they are reused and how they are emptied is
    :mod:`podium.runners.cgroups`.
``proc-marker``
    Where no cgroup2 hierarchy is writable (a container's default), or libc cannot start
    a process inside a cgroup and nobody asked for one anyway (``PODIUM_CONTAINMENT``):
    the attempt's process group; its descendants in ``/proc``'s process tree; and, since
    the agent is a child subreaper, every orphan of the attempt, which the kernel hands
    to the agent and which is known by the marker it inherited (``PODIUM_ATTEMPT_ID`` and
    ``PODIUM_DATA_DIR``) or by the attempt's session.

Either way the agent is a child subreaper: orphans of tasks become its children, and
:func:`reap_orphans` collects those that have ended, and only those (never a child the
agent waits for itself, such as ``git``, which runs in the agent's own session).

After a restart, :func:`kill_attempt` stops what a dead agent's attempt left, through
both its cgroup and its marker (with each process's start time, so that a reused pid is
never taken for one of the attempt's), and returns once nothing of it is left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from podium import leftovers
from podium.leftovers import Marker
from podium.log import get_logger
from podium.runners import cgroups
from podium.runners import spawn as spawning
from podium.runners.cgroups import CgroupPool, Slot
from podium.runners.spawn import CgroupTarget, Child

log = get_logger(__name__)

MODE_VAR = "PODIUM_CONTAINMENT"
"""``auto`` (the default), ``cgroup2`` (also where it costs a ``/bin/sh`` step per task) or
``proc-marker``."""
MODES = ("auto", "cgroup2", "proc-marker")
PR_SET_CHILD_SUBREAPER = 36
SETTLE = 2.0
"""Seconds :func:`kill_attempt` keeps killing after SIGKILL before it gives up."""


# -- one attempt ----------------------------------------------------------------------


class Scope(Protocol):
    """One attempt's processes. :attr:`target` is where its first process must start."""

    target: CgroupTarget | None

    def started(self, child: Child) -> None:
        """The attempt's first process exists."""

    def alive(self) -> bool:
        """Whether anything of the attempt still runs (zombies do not count)."""
        ...

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to every process of the attempt."""

    def release(self) -> None:
        """The attempt is over: give back what it held."""


def _live_pid(child: Child | None) -> int | None:
    """The first process's pid while it is not reaped (after that it may be reused)."""
    return child.pid if child is not None and child.returncode is None else None


class MarkerScope:
    """Process group, process tree, and the orphans the agent (a subreaper) received."""

    target: CgroupTarget | None = None

    def __init__(self, marker: Marker | None) -> None:
        self.marker = marker
        self.child: Child | None = None

    def started(self, child: Child) -> None:
        self.child = child

    def alive(self) -> bool:
        child = self.child
        if child is None:
            return False
        if leftovers.group_alive(child.pid):
            return True
        return any(leftovers.live(pid) for pid in self._members(include_child=False))

    def signal(self, sig: signal.Signals) -> None:
        child = self.child
        if child is None:
            return
        members = self._members(include_child=True)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, sig)
        leftovers.send(members, sig)

    def release(self) -> None:
        """Nothing to give back: the process table is not held."""

    def _members(self, include_child: bool) -> set[int]:
        roots = _orphans.of(self.child.pid if self.child else 0, self.marker)
        pid = _live_pid(self.child)
        found = leftovers.descendants(roots)
        if pid is not None:
            found |= leftovers.descendants([pid])
            if not include_child:
                found.discard(pid)
        found.discard(os.getpid())
        return found


class CgroupScope:
    """Everything in the attempt's cgroup slot."""

    def __init__(self, marker: Marker | None, pool: CgroupPool, slot: Slot) -> None:
        self.marker = marker
        self.child: Child | None = None
        self._pool = pool
        self._slot: Slot | None = slot
        self.target: CgroupTarget | None = slot.target

    def started(self, child: Child) -> None:
        self.child = child

    def alive(self) -> bool:
        return self._slot is not None and bool(self._slot.procs())

    def signal(self, sig: signal.Signals) -> None:
        if self._slot is None:
            return
        pid = _live_pid(self.child)  # it may still be on its way into the slot (/bin/sh step)
        if pid is not None:
            leftovers.send([pid], sig)
        if sig == signal.SIGKILL:
            self._slot.kill()
        else:
            leftovers.send(self._slot.procs(), sig)

    def release(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            self._pool.release(slot)


# -- the choice ---------------------------------------------------------------------


@dataclass
class Containment:
    """The containment in force in this process."""

    kind: str
    reason: str = ""
    pool: CgroupPool | None = None
    subreaper: bool = False

    def enter(self, env: Mapping[str, str]) -> Scope:
        """A scope for an attempt about to start with ``env`` (its marker, if any, and its
        data dir come from there)."""
        marker = Marker.of_env(env)
        if self.pool is not None:
            try:
                slot = self.pool.acquire(env.get(leftovers.DATA_DIR_VAR), marker)
            except OSError as exc:
                log.warning("containment_cgroup_unavailable", error=str(exc))
            else:
                return CgroupScope(marker, self.pool, slot)
        return MarkerScope(marker)

    def describe(self, data_dir: Path | str | None = None) -> dict[str, str]:
        """What is in force, for a status page: ``containment`` and its ``path`` (cgroup2)
        or ``reason`` (proc-marker), and whether the agent is a child subreaper."""
        out = {"containment": self.kind}
        if self.pool is not None:
            path = self.pool.parent(str(data_dir)) if data_dir is not None else self.pool.base
            out.update(path=str(path), join=self.pool.join)
        else:
            out["reason"] = self.reason
        out["subreaper"] = "yes" if self.subreaper else "no"
        return out


_chosen: dict[str, Containment] = {}
_choose_lock = threading.Lock()


def containment() -> Containment:
    """The containment in force (chosen and logged on first use, per ``PODIUM_CONTAINMENT``)."""
    mode = os.environ.get(MODE_VAR, "auto").strip() or "auto"
    chosen = _chosen.get(mode)
    if chosen is None:
        with _choose_lock:
            chosen = _chosen.get(mode)
            if chosen is None:
                chosen = _chosen[mode] = _choose(mode)
    return chosen


def describe(data_dir: Path | str | None = None) -> dict[str, str]:
    """:meth:`Containment.describe` of the containment in force."""
    return containment().describe(data_dir)


def _choose(mode: str) -> Containment:
    if mode not in MODES:
        log.warning("containment_mode_unknown", value=mode, known=list(MODES))
        mode = "auto"
    subreaper = _become_subreaper()
    pool: CgroupPool | None = None
    reason = ""
    if mode == "proc-marker":
        reason = f"{MODE_VAR}=proc-marker"
    else:
        base, reason = cgroups.writable_base()
        if base is not None:
            native = spawning.cgroup_spawn_native()
            if native or mode == "cgroup2":
                pool = CgroupPool(base, "clone3" if native else "shell")
                atexit.register(pool.close)
            else:
                reason = (
                    f"{_libc_name()} cannot start a process inside a cgroup (glibc 2.39+"
                    f" can); {MODE_VAR}=cgroup2 uses {base} anyway, with one /bin/sh step"
                    " more per task"
                )
    chosen = Containment("cgroup2" if pool else "proc-marker", reason, pool, subreaper)
    if pool is not None:
        log.info("containment_selected", containment="cgroup2", path=str(pool.base), join=pool.join)
    else:
        log.info("containment_selected", containment="proc-marker", reason=reason)
    return chosen


def _become_subreaper() -> bool:
    """Make this process the child subreaper of everything it starts (Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _libc_name() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or "this libc"
    except (ValueError, OSError):
        return "this libc"


# -- orphans --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Orphan:
    start: int
    sid: int
    marker: Marker | None


class _Orphans:
    """The agent's children that it did not spawn itself and that are not in its own
    session: orphans of tasks, handed to the agent because it is a subreaper (they go to
    its main thread). Those that have ended are reaped whenever they are looked at."""

    def __init__(self) -> None:
        self._known: dict[int, _Orphan] = {}
        self._ours: set[int] = set()
        """Children in the agent's own session (git and such): never an orphan of a task."""
        self._fd: tuple[int, int] | None = None
        """This process's pid and its main thread's ``children`` file, kept open (a read
        costs a tenth of an open)."""

    def of(self, sid: int, marker: Marker | None) -> list[int]:
        """Live orphans of the attempt whose session is ``sid`` or that carry ``marker``."""
        return [
            pid
            for pid, orphan in self.scan().items()
            if orphan.sid == sid or (marker is not None and marker.same(orphan.marker))
        ]

    def scan(self) -> dict[int, _Orphan]:
        """Reap the orphans that have ended; return the live ones."""
        out: dict[int, _Orphan] = {}
        direct, ours = spawning.direct_pids(), self._ours
        if all(pid in direct or pid in ours for pid in self._children()):
            return out  # the common case: no orphan at all
        with spawning.direct_children() as direct:
            children = self._children()
            own_sid = os.getsid(0)
            present = set(children)
            self._ours &= present
            for pid in [pid for pid in self._known if pid not in present]:
                del self._known[pid]
            for pid in children:
                if pid in direct or pid in self._ours:
                    continue
                stat = leftovers.read_stat(pid)
                if stat is None:
                    continue
                if stat.sid == own_sid:
                    self._ours.add(pid)
                elif stat.zombie:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                else:
                    known = self._known.get(pid)
                    if known is None or known.start != stat.start:
                        marker = leftovers.marker_of(pid)
                        known = self._known[pid] = _Orphan(stat.start, stat.sid, marker)
                    out[pid] = known
        return out

    def _children(self) -> list[int]:
        me = os.getpid()
        if self._fd is None or self._fd[0] != me:  # first use, or a forked copy
            try:
                fd = os.open(f"/proc/{me}/task/{me}/children", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return leftovers.children(me)
            self._fd = (me, fd)
        try:
            raw = os.pread(self._fd[1], 1 << 16, 0)
        except OSError:
            return leftovers.children(me)
        return [int(pid) for pid in raw.split()]


_orphans = _Orphans()


def reap_orphans() -> None:
    """Reap the orphans of tasks that have ended: zombie children of the agent outside its
    own session that it did not spawn. Children the agent waits for itself (tasks it
    spawned, git in its own session) are never touched."""
    _orphans.scan()


# -- after a restart ------------------------------------------------------------------


def kill_attempt(attempt_id: int, started_at: float, data_dir: Path, grace: float) -> bool:
    """Stop everything a dead agent's attempt left running: its cgroup slot, and every
    process carrying its marker that started after it, with their descendants. SIGTERM,
    up to ``grace`` seconds, then SIGKILL until nothing is left (bounded); whether
    nothing of the attempt is left."""
    marker = Marker(str(attempt_id), str(data_dir))
    slots = cgroups.slots_of(marker)
    pids = leftovers.marked(marker, started_at)
    if not slots and not pids:
        return True
    log.info("leftover_processes_killed", attempt_id=attempt_id, processes=len(pids))
    for slot in slots:
        pids.update(cgroups.members(slot))
    leftovers.send(pids, signal.SIGTERM)
    end = time.monotonic() + max(0.0, grace)
    while time.monotonic() < end and _left(pids, slots):
        time.sleep(0.02)
    end = time.monotonic() + SETTLE
    while True:
        for slot in slots:
            cgroups.kill_cgroup(slot)
        survivors = leftovers.marked(marker, started_at)
        leftovers.send(survivors, signal.SIGKILL)
        if not survivors and not _left(set(), slots):
            break
        if time.monotonic() >= end:
            log.warning("leftover_processes_survived", attempt_id=attempt_id)
            return False
        time.sleep(0.02)
    for slot in slots:
        cgroups.remove_slot(slot)
    return True


def _left(pids: set[int], slots: list[Path]) -> bool:
    return any(leftovers.live(pid) for pid in pids) or any(cgroups.members(s) for s in slots)


__all__ = [
    "MODES",
    "MODE_VAR",
    "CgroupScope",
    "Containment",
    "MarkerScope",
    "Scope",
    "containment",
    "describe",
    "kill_attempt",
    "reap_orphans",
]
