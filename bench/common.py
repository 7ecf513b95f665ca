"""Shared helpers for the benchmarks: environment, git repos, process measurement, tables.

Nothing here imports Podium: the benchmarks drive the real ``podium`` console script as a
subprocess (except ``plan``, which measures the Python API in-process on purpose).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable
PODIUM = str(Path(sys.executable).parent / "podium")
if not Path(PODIUM).exists():  # run with another interpreter: fall back to the project's venv
    PODIUM = str(ROOT / ".venv" / "bin" / "podium")
CLK_TCK = os.sysconf("SC_CLK_TCK")
AUTHOR = ("Bench Author", "bench@example.com")


@dataclass
class Config:
    """What ``run.py`` was asked for."""

    quick: bool = False
    repeat: int = 3
    results_dir: Path = RESULTS_DIR
    keep: bool = False
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    def scratch(self, name: str) -> Path:
        """A fresh scratch directory for one benchmark (removed by :func:`cleanup`)."""
        return Path(tempfile.mkdtemp(prefix=f"podium-bench-{name}-", dir=self.workdir))

    def cleanup(self, path: Path) -> None:
        if not self.keep:
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class Result:
    """What one benchmark returns: tables to print, targets to judge, raw data for JSON."""

    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self, cfg: Config) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "title": self.title,
            "date": now_iso(),
            "machine": machine_info(),
            "config": {"quick": cfg.quick, "repeat": cfg.repeat},
            "tables": [t.to_json() for t in self.tables],
            "targets": [t.to_json() for t in self.targets],
            "data": self.data,
            "notes": self.notes,
        }


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "headers": self.headers, "rows": self.rows}

    def render(self, markdown: bool = False) -> str:
        cells = [[fmt(c) for c in row] for row in self.rows]
        if markdown:
            out = [f"| {' | '.join(self.headers)} |", f"|{'|'.join('---' for _ in self.headers)}|"]
            out += [f"| {' | '.join(r)} |" for r in cells]
            return "\n".join(out)
        widths = [
            max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
            for i, h in enumerate(self.headers)
        ]
        line = "  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True))
        out = [self.title, line.rstrip(), "  ".join("-" * w for w in widths)]
        for raw, r in zip(self.rows, cells, strict=True):
            out.append(
                "  ".join(
                    c.rjust(w)
                    if isinstance(v, int | float) and not isinstance(v, bool)
                    else c.ljust(w)
                    for v, c, w in zip(raw, r, widths, strict=True)
                ).rstrip()
            )
        return "\n".join(out)


@dataclass
class Target:
    """One target of the issue: ``value`` compared with ``limit`` (``value < limit`` passes)."""

    name: str
    value: float | None
    limit: float
    unit: str
    inclusive: bool = False
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.inclusive else self.value < self.limit

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]

    def row(self) -> list[Any]:
        op = "<=" if self.inclusive else "<"
        shown = "-" if self.value is None else f"{fmt(self.value)} {self.unit}"
        return [self.name, shown, f"{op} {fmt(self.limit)} {self.unit}", self.verdict, self.detail]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "comparison": "<=" if self.inclusive else "<",
            "pass": self.passed,
            "detail": self.detail,
        }


TARGET_HEADERS = ["target", "measured", "limit", "verdict", "how"]


def fmt(value: Any) -> str:
    """Compact numbers for tables: 3 significant digits, no float noise."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        mag = abs(value)
        if mag >= 1000:
            return f"{value:,.0f}"
        if mag >= 100:
            return f"{value:.0f}"
        if mag >= 10:
            return f"{value:.1f}"
        if mag >= 1:
            return f"{value:.2f}"
        if mag >= 0.01:
            return f"{value:.3f}"
        return f"{value:.2g}"
    return str(value)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unavailable"
    return out.splitlines()[0].strip() if out else "unavailable"


def _podium_commit() -> str:
    """The commit of the code under test, ``+dirty`` when the work tree has changes."""
    head = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"])
    try:
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "agent", "integrations"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        dirty = ""
    return head + ("+dirty" if dirty else "")


_MACHINE: dict[str, Any] | None = None


def machine_info() -> dict[str, Any]:
    """Where the figures come from (computed once per process)."""
    global _MACHINE
    if _MACHINE is None:
        cpu = "unknown"
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem_kb = 0
        with contextlib.suppress(OSError, ValueError, IndexError):
            mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        _MACHINE = {
            "nproc": os.cpu_count(),
            "cpu": cpu,
            "mem_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "git": _first_line(["git", "--version"]),
            "make": _first_line(["make", "--version"]),
            "podium_commit": _podium_commit(),
        }
    return _MACHINE


# -- environment and git -------------------------------------------------------------


def bench_env(home: Path, **extra: str) -> dict[str, str]:
    """The machine's environment minus Podium/proxy settings, plus an isolated git identity."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PODIUM_", "SLACK_", "GIT_")) and "proxy" not in k.lower()
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "gitconfig").touch()
    env.update(
        HOME=str(home),
        GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=AUTHOR[0],
        GIT_AUTHOR_EMAIL=AUTHOR[1],
        GIT_COMMITTER_NAME=AUTHOR[0],
        GIT_COMMITTER_EMAIL=AUTHOR[1],
        PODIUM_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


def git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


class GitRepo:
    """A bare repository (what ``--repo`` points at) and a work clone that pushes to it."""

    def __init__(self, root: Path, env: Mapping[str, str], branch: str = "main") -> None:
        self.env = dict(env)
        self.branch = branch
        self.bare = root / "remote.git"
        self.work = root / "work"
        git("init", "-q", "--bare", "-b", branch, str(self.bare), env=self.env)
        git("init", "-q", "-b", branch, str(self.work), env=self.env)
        git("remote", "add", "origin", str(self.bare), cwd=self.work, env=self.env)

    @property
    def url(self) -> str:
        return str(self.bare)

    def write(self, files: Mapping[str, str]) -> None:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def commit(self, files: Mapping[str, str] | None = None, message: str = "change") -> str:
        """Write ``files`` and commit them (not pushed); return the new sha."""
        if files:
            self.write(files)
        git("add", "-A", cwd=self.work, env=self.env)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work, env=self.env)
        return self.head()

    def push(self) -> float:
        """Push HEAD to the bare repository; return how long ``git push`` took (s)."""
        began = time.perf_counter()
        git(
            "push", "-q", "--force", "origin", f"HEAD:refs/heads/{self.branch}",
            cwd=self.work, env=self.env,
        )  # fmt: skip
        return time.perf_counter() - began

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.work, env=self.env)


# -- processes -----------------------------------------------------------------------


@dataclass
class Measured:
    """One finished child process: wall time, exit status, and its rusage from ``wait4``."""

    wall: float
    returncode: int
    maxrss_mb: float
    """Peak RSS of the child (and of its waited-for descendants, if any was bigger)."""
    cpu: float
    """User + system CPU seconds of the child and its waited-for descendants."""


def run_measured(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path | None = None,
    log: Path | None = None,
    timeout: float = 900.0,
) -> Measured:
    """Run ``argv`` to completion; output goes to ``log`` (or nowhere)."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        began = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log is not None and not isinstance(out, int):
            out.close()
    return Measured(
        wall=wall,
        returncode=proc.returncode,
        maxrss_mb=usage.ru_maxrss / 1024,
        cpu=usage.ru_utime + usage.ru_stime,
    )


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own CPU s, CPU s of its waited-for children) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def proc_status_kb(pid: int, key: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM, ...), or None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def proc_threads(pid: int) -> int | None:
    return proc_status_kb(pid, "Threads")


def wait_until(check: Callable[[], Any], timeout: float, every: float = 0.01) -> Any:
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise TimeoutError(f"condition not met within {timeout}s (last: {last!r})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def readonly_db(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a Podium state db (safe while an agent writes it)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        yield db
    finally:
        db.close()


def query(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the state db; [] while the db does not exist or is busy."""
    if not path.exists():
        return []
    try:
        with readonly_db(path) as db:
            return list(db.execute(sql, params).fetchall())
    except sqlite3.Error:
        return []


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
