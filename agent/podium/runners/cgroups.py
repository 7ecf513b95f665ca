"""The cgroup v2 side of containment: where this process's cgroup is, whether the agent
may make cgroups there, the pool of slots attempts run in, and killing a cgroup's members.

The cgroups live in ``<the agent's cgroup>/podium-<hash of the data dir>/
agent-<pid>-<start>/slot-N``: one parent per data dir, so that two agents on one host
never meet, one directory per agent process, and slots that are reused (a fresh cgroup
per attempt costs more than starting the process). A slot names its attempt in the
extended attribute :data:`XATTR`. Killing is ``cgroup.kill`` (or freeze, SIGKILL each
member, thaw, on kernels without it); a slot emptied by ``cgroup.kill`` is removed rather
than reused, since some kernels kill a child cloned into it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from podium import leftovers
from podium.leftovers import Marker
from podium.log import get_logger
from podium.runners.spawn import CgroupTarget

log = get_logger(__name__)

XATTR = "user.podium.attempt"
FREEZE_WAIT = 1.0
"""Seconds to wait for a cgroup to report itself frozen (kernels without cgroup.kill)."""
RELEASE_WAIT = 0.5
"""Seconds a slot's killed processes get to exit before the slot is given up."""


# -- where ----------------------------------------------------------------------------


def cgroup2_dir() -> tuple[Path | None, str]:
    """The directory of this process's own cgroup in a cgroup2 hierarchy, or why none."""
    if not sys.platform.startswith("linux"):
        return None, "not Linux"
    try:
        own = next(
            line[3:].strip()
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.startswith("0::")
        )
    except (OSError, StopIteration):
        return None, "no cgroup2 hierarchy (/proc/self/cgroup has no 0:: line)"
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError as exc:
        return None, f"cannot read /proc/self/mountinfo: {exc.strerror}"
    for line in mounts:
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        if not tail.startswith("cgroup2 ") or len(parts) < 5:
            continue
        root, point = _unescape(parts[3]), _unescape(parts[4])
        if own == root or own.startswith(root.rstrip("/") + "/"):
            return Path(point) / own[len(root) :].lstrip("/"), ""
    return None, "no cgroup2 hierarchy mounted where this process's cgroup is"


def writable_base() -> tuple[Path | None, str]:
    """This process's cgroup2 directory if the agent can make cgroups there, or why not."""
    base, reason = cgroup2_dir()
    if base is None:
        return None, reason
    probe = base / f"podium-probe-{os.getpid()}"
    try:
        probe.mkdir(exist_ok=True)
    except OSError as exc:
        return None, f"cannot create a cgroup in {base}: {exc.strerror}"
    try:
        if not (probe / "cgroup.kill").exists() and not (probe / "cgroup.freeze").exists():
            return None, f"cgroups in {base} have neither cgroup.kill nor cgroup.freeze"
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()
    return base, ""


def _unescape(text: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes are octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        text = text.replace(code, chr(int(code[1:], 8)))
    return text


def _parent_name(data_dir: str | None) -> str:
    real = os.path.realpath(data_dir) if data_dir else ""
    return "podium-" + hashlib.sha256(real.encode()).hexdigest()[:12]


# -- the slots of this process --------------------------------------------------------


@dataclass(eq=False)
class Slot:
    """One cgroup an attempt runs in; :attr:`target` is where its first process starts."""

    path: Path
    target: CgroupTarget
    procs_fd: int
    home: Path
    kill_file: bool
    killed: bool = False
    """``cgroup.kill`` was used: some kernels then SIGKILL a child cloned into the cgroup
    at birth (its kill count no longer matches), so the slot is not used again."""

    def procs(self) -> list[int]:
        """The pids in the slot (exited processes, zombies included, are not)."""
        try:
            raw = os.pread(self.procs_fd, 1 << 16, 0)
            if len(raw) == 1 << 16:
                raw = (self.path / "cgroup.procs").read_bytes()
        except OSError:
            return []
        return [int(pid) for pid in raw.split()]

    def kill(self) -> None:
        """SIGKILL everything in the slot, forks in flight included."""
        self.killed = self.killed or self.kill_file
        kill_cgroup(self.path, self.kill_file)

    def close(self) -> None:
        os.close(self.target.fd)
        os.close(self.procs_fd)


@dataclass(eq=False)
class CgroupPool:
    """The cgroup slots of this process, per data dir."""

    base: Path
    join: str
    _free: dict[Path, list[Slot]] = field(default_factory=dict)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _kill_file: bool | None = None
    _busy: list[Slot] = field(default_factory=list)
    _homes: dict[str | None, Path] = field(default_factory=dict)

    def parent(self, data_dir: str | None) -> Path:
        return self.base / _parent_name(data_dir)

    def acquire(self, data_dir: str | None, marker: Marker | None) -> Slot:
        """An empty slot for an attempt (named in its extended attribute)."""
        home = self._homes.get(data_dir)
        if home is None:
            name = f"agent-{os.getpid()}-{_own_start()}"
            home = self._homes[data_dir] = self.parent(data_dir) / name
        with self._lock:
            free = self._free.get(home)
            if free is None:
                free = self._free[home] = []
                _make_home(home)
            slot = free.pop() if free else None
            if slot is None:
                self._count += 1
                slot = self._new_slot(home, home / f"slot-{self._count}")
        with contextlib.suppress(OSError):
            os.setxattr(slot.path, XATTR, marker.attempt.encode() if marker else b"")
        return slot

    def release(self, slot: Slot) -> None:
        """Take a slot back once nothing runs in it; killed processes get a moment to
        exit, and a slot still busy after that is not used again."""
        end = time.monotonic() + RELEASE_WAIT
        while slot.procs():
            if time.monotonic() >= end:
                log.warning("cgroup_slot_still_busy", path=str(slot.path))
                with self._lock:
                    self._busy.append(slot)
                return
            time.sleep(0.01)
        if slot.killed:
            slot.close()
            with contextlib.suppress(OSError):
                slot.path.rmdir()
            return
        with self._lock:
            self._free.setdefault(slot.home, []).append(slot)

    def close(self) -> None:
        """Remove the empty slots and this process's directories (at exit)."""
        with self._lock:
            for slot in [s for slots in self._free.values() for s in slots] + self._busy:
                slot.close()
                with contextlib.suppress(OSError):
                    slot.path.rmdir()
            for home in self._free:
                for done in (home, home.parent):  # the parent stays while another uses it
                    with contextlib.suppress(OSError):
                        done.rmdir()
            self._free.clear()
            self._busy.clear()

    def _new_slot(self, home: Path, path: Path) -> Slot:
        try:
            path.mkdir()
        except FileExistsError:
            if members(path):
                raise OSError(errno.EBUSY, "cgroup in use", str(path)) from None
        if self._kill_file is None:
            self._kill_file = (path / "cgroup.kill").exists()
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            procs = os.open(path / "cgroup.procs", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(fd)
            raise
        return Slot(path, CgroupTarget(str(path), fd), procs, home, self._kill_file)


def _make_home(home: Path) -> None:
    """This process's directory under the data dir's parent; empty ones that dead agents
    left are removed on the way (busy ones wait for ``kill_attempt``)."""
    home.parent.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    for other in home.parent.iterdir():
        if other == home or not other.name.startswith("agent-") or _agent_alive(other.name):
            continue
        for slot in other.glob("slot-*"):
            with contextlib.suppress(OSError):
                slot.rmdir()
        with contextlib.suppress(OSError):
            other.rmdir()


def _agent_alive(name: str) -> bool:
    """Whether the agent a directory ``agent-<pid>-<start>`` belongs to still runs."""
    _, pid, start = [*name.split("-"), "", ""][:3]
    if not pid.isdigit() or not start.isdigit():
        return False
    stat = leftovers.read_stat(int(pid))
    return stat is not None and not stat.zombie and stat.start == int(start)


def _own_start() -> int:
    stat = leftovers.read_stat(os.getpid())
    return stat.start if stat is not None else 0


# -- any cgroup, a dead agent's included ----------------------------------------------


def members(path: Path) -> list[int]:
    """The pids in the cgroup at ``path`` (none if it cannot be read)."""
    try:
        return [int(pid) for pid in (path / "cgroup.procs").read_bytes().split()]
    except OSError:
        return []


def kill_cgroup(path: Path, kill_file: bool | None = None) -> None:
    """SIGKILL everything in a cgroup: ``cgroup.kill``, or (older kernels, or
    ``kill_file=False``) freeze it so that nothing forks meanwhile, SIGKILL each member,
    thaw. ``kill_file=None`` looks whether the cgroup has ``cgroup.kill``."""
    if kill_file is None:
        kill_file = (path / "cgroup.kill").exists()
    try:
        if kill_file:
            (path / "cgroup.kill").write_text("1")
            return
        (path / "cgroup.freeze").write_text("1")
        end = time.monotonic() + FREEZE_WAIT
        while b"frozen 1" not in _read(path / "cgroup.events") and time.monotonic() < end:
            time.sleep(0.005)
        leftovers.send(members(path), signal.SIGKILL)
        (path / "cgroup.freeze").write_text("0")
    except OSError as exc:
        log.warning("cgroup_kill_failed", path=str(path), error=str(exc))
        leftovers.send(members(path), signal.SIGKILL)


def slots_of(marker: Marker) -> list[Path]:
    """Busy cgroup slots of the data dir's agents whose attribute names the attempt."""
    base, _ = cgroup2_dir()
    if base is None:
        return []
    parent = base / _parent_name(marker.data_dir)
    found: list[Path] = []
    for slot in parent.glob("agent-*/slot-*"):
        try:
            named = os.getxattr(slot, XATTR).decode()
        except OSError:
            continue
        if named == marker.attempt and members(slot):
            found.append(slot)
    return found


def remove_slot(slot: Path) -> None:
    """Remove an emptied slot, and its agent's directory if that agent is gone."""
    with contextlib.suppress(OSError):
        slot.rmdir()
        if not _agent_alive(slot.parent.name):
            slot.parent.rmdir()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


__all__ = [
    "FREEZE_WAIT",
    "RELEASE_WAIT",
    "XATTR",
    "CgroupPool",
    "Slot",
    "cgroup2_dir",
    "kill_cgroup",
    "members",
    "remove_slot",
    "slots_of",
    "writable_base",
]
