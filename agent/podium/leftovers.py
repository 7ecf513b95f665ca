"""What ``/proc`` tells about the processes of task attempts.

Every attempt carries a marker in its environment, ``PODIUM_ATTEMPT_ID`` and
``PODIUM_DATA_DIR`` (attempt ids are per state store: the data dir tells two agents'
attempts apart), and every process it starts inherits it, whatever it does with
sessions and process groups. A process's start time (field 22 of ``/proc/PID/stat``)
tells one of the attempt's own from an older process that happens to match. The
process tree (``/proc/PID/task/TID/children``) gives the descendants of a process,
marked or not. :mod:`podium.runners.containment` builds the fallback containment and the
recovery scan on these.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

ATTEMPT_VAR = "PODIUM_ATTEMPT_ID"
DATA_DIR_VAR = "PODIUM_DATA_DIR"
START_SLACK = 2.0
"""Seconds a process may seem to have started before its attempt: the boot time in
``/proc/stat`` has whole seconds, start times have clock ticks."""


@dataclass(frozen=True)
class Marker:
    """The attempt a process belongs to, as its environment says."""

    attempt: str
    data_dir: str

    @classmethod
    def of_env(cls, env: Mapping[str, str]) -> Marker | None:
        """The marker an attempt's environment carries, if it carries one."""
        attempt, data_dir = env.get(ATTEMPT_VAR), env.get(DATA_DIR_VAR)
        if not attempt or not data_dir:
            return None
        return cls(attempt, data_dir)

    def same(self, other: Marker | None) -> bool:
        """The same attempt of the same data dir (however the dir was spelt)."""
        if other is None or other.attempt != self.attempt:
            return False
        return other.data_dir == self.data_dir or _real(other.data_dir) == _real(self.data_dir)


@dataclass(frozen=True)
class Stat:
    """The fields of ``/proc/PID/stat`` that containment needs."""

    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    start: int
    """Clock ticks after boot (field 22)."""

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")

    def started_after(self, when: float) -> bool:
        """Whether the process started at ``when`` (wall clock) or later."""
        return boot_time() + self.start / _ticks() >= when - START_SLACK


def read_stat(pid: int) -> Stat | None:
    """The process's stat, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            raw = file.read()
    except OSError:
        return None
    fields = raw.rpartition(b")")[2].split()
    if len(fields) < 20:
        return None
    # after the command: state(3) ppid(4) pgrp(5) session(6) ... starttime(22)
    return Stat(
        pid, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])
    )


def live(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    stat = read_stat(pid)
    return stat is not None and not stat.zombie


def marker_of(pid: int) -> Marker | None:
    """The attempt marker in a process's environment (None: none, or unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            raw = file.read()
    except OSError:
        return None
    if ATTEMPT_VAR.encode() not in raw:
        return None
    env: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        key, _, value = entry.partition(b"=")
        if key in (b"PODIUM_ATTEMPT_ID", b"PODIUM_DATA_DIR"):
            env[key.decode()] = value.decode(errors="replace")
    return Marker.of_env(env)


def children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (none once it is gone)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tids:
        found.extend(thread_children(pid, int(tid)))
    return found


def thread_children(pid: int, tid: int) -> list[int]:
    """The children of one thread of ``pid``."""
    try:
        with open(f"/proc/{pid}/task/{tid}/children", "rb") as file:
            return [int(child) for child in file.read().split()]
    except OSError:
        return []


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` that still exist and every process below them."""
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in found or not os.path.exists(f"/proc/{pid}"):
            continue
        found.add(pid)
        todo.extend(children(pid))
    return found


def marked(marker: Marker, since: float) -> set[int]:
    """Every live process carrying ``marker`` that started at ``since`` or later (one scan
    of ``/proc``), and everything below them, marked or not."""
    needle = f"{ATTEMPT_VAR}={marker.attempt}\0".encode()
    roots: list[int] = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as file:
                raw = file.read()
        except OSError:
            continue
        if needle not in raw:
            continue
        pid = int(name)
        stat = read_stat(pid)
        if stat is None or stat.zombie or not stat.started_after(since):
            continue
        if marker.same(marker_of(pid)):
            roots.append(pid)
    return {pid for pid in descendants(roots) if live(pid)}


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None and stat.pgid == pgid and not stat.zombie:
                return True
    return False


def send(pids: Iterable[int], sig: signal.Signals) -> None:
    """Signal each process; one that is already gone is fine."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@lru_cache(maxsize=1)
def boot_time() -> float:
    """When the machine booted (wall clock), from ``/proc/stat``."""
    with open("/proc/stat", "rb") as file:
        for line in file:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


@lru_cache(maxsize=1)
def _ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _real(path: str) -> str:
    return os.path.realpath(path)


__all__ = [
    "ATTEMPT_VAR",
    "DATA_DIR_VAR",
    "Marker",
    "Stat",
    "boot_time",
    "children",
    "descendants",
    "group_alive",
    "live",
    "marked",
    "marker_of",
    "read_stat",
    "send",
    "thread_children",
]
