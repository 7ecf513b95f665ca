"""4. Idle cost of ``podium agent``, and its memory while it runs the 2,000-task DAG.

Idle: an agent (with its HTTP face) on a repository whose one workflow is already
applied, sampled for 60 s (``--quick``: 5 s) after it has settled: CPU from
``/proc/<pid>/stat`` (utime+stime; the git children it waited for, cutime+cstime, are
reported apart and in the total) and VmRSS every 0.5 s. Two agents are measured side by
side: the default poll interval (30 s, the target) and ``--interval 1s``. Baseline: a
``python -c 'import time; time.sleep(...)'`` process sampled the same way.

Busy: a fresh agent on the DAG of ``bench/dag.py`` (N=2,000; ``--quick``: 100), VmRSS
sampled every 0.25 s until the run has finished, then VmHWM (the kernel's peak RSS).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PODIUM,
    PYTHON,
    Config,
    GitRepo,
    Result,
    Table,
    Target,
    bench_env,
    free_port,
    median,
    proc_cpu,
    proc_status_kb,
    proc_threads,
    query,
    ratio,
    wait_until,
)
from bench.dag import workflow_yaml as dag_yaml

NAME = "idle"
TITLE = "Idle cost of podium agent; RSS while running the 2,000-task DAG"
WINDOW = 60.0
QUICK_WINDOW = 5.0
DAG_N = 2000
QUICK_DAG_N = 100


def _start_agent(
    repo: GitRepo, scratch: Path, tag: str, interval: str, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    argv = [PODIUM, "agent", "--repo", repo.url, "--state", str(scratch / f"state-{tag}.db")]
    argv += ["--data-dir", str(scratch / f"data-{tag}"), "--interval", interval]
    argv += ["--listen", f"127.0.0.1:{free_port()}"]
    log = (scratch / f"agent-{tag}.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _runs_done(state: Path, expected: int) -> bool:
    rows = query(state, "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")
    return bool(rows) and rows[0][0] >= expected


def _sample_idle(procs: dict[str, subprocess.Popen[Any]], window: float) -> dict[str, Any]:
    """CPU over the window and RSS samples of each process (all measured together)."""
    cpu0 = {k: proc_cpu(p.pid) for k, p in procs.items()}
    rss: dict[str, list[int]] = {k: [] for k in procs}
    began = time.perf_counter()
    while time.perf_counter() - began < window:
        for k, p in procs.items():
            value = proc_status_kb(p.pid, "VmRSS")
            if value is not None:
                rss[k].append(value)
        time.sleep(0.5)
    elapsed = time.perf_counter() - began
    out: dict[str, Any] = {}
    for k, p in procs.items():
        own1, kids1 = proc_cpu(p.pid)
        own0, kids0 = cpu0[k]
        out[k] = {
            "window_s": elapsed,
            "cpu_own_pct": 100 * (own1 - own0) / elapsed,
            "cpu_children_pct": 100 * (kids1 - kids0) / elapsed,
            "cpu_total_pct": 100 * ((own1 - own0) + (kids1 - kids0)) / elapsed,
            "rss_mb_median": median(rss[k]) / 1024,
            "rss_mb_max": max(rss[k]) / 1024,
            "hwm_mb": (proc_status_kb(p.pid, "VmHWM") or 0) / 1024,
            "threads": proc_threads(p.pid),
        }
    return out


def _busy(cfg: Config, n: int) -> dict[str, Any]:
    scratch = cfg.scratch(f"{NAME}-busy")
    env = bench_env(scratch / "home")
    repo = GitRepo(scratch / "repo", env)
    repo.commit({"workflows/dag.yaml": dag_yaml(n)}, f"DAG of {n}")
    repo.push()
    state = scratch / "state-busy.db"
    began = time.perf_counter()
    proc = _start_agent(repo, scratch, "busy", "30s", env)
    samples: list[int] = []
    try:
        while not _runs_done(state, 1):
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited with {proc.returncode} during the DAG")
            if time.perf_counter() - began > 900:
                raise TimeoutError("the DAG did not finish within 900 s")
            value = proc_status_kb(proc.pid, "VmRSS")
            if value is not None:
                samples.append(value)
            time.sleep(0.25)
        elapsed = time.perf_counter() - began
        hwm = proc_status_kb(proc.pid, "VmHWM") or 0
        done = query(state, "SELECT COUNT(*) FROM run_tasks WHERE status = 'succeeded'")
        if not done or done[0][0] != n:
            raise RuntimeError(f"busy agent: {done} tasks succeeded, expected {n}")
    finally:
        _stop(proc)
        cfg.cleanup(scratch)
    return {
        "tasks": n,
        "wall_s": elapsed,
        "rss_mb_median": median(samples) / 1024 if samples else None,
        "rss_mb_max_sampled": max(samples) / 1024 if samples else None,
        "hwm_mb": hwm / 1024,
    }


def run(cfg: Config) -> Result:
    window = QUICK_WINDOW if cfg.quick else WINDOW
    scratch = cfg.scratch(NAME)
    env = bench_env(scratch / "home")
    repo = GitRepo(scratch / "repo", env)
    repo.commit({"workflows/w.yaml": "name: w\ntasks:\n  - {id: a, run: 'true'}\n"}, "one task")
    repo.push()
    procs: dict[str, subprocess.Popen[Any]] = {}
    try:
        procs["agent, --interval 30s (default)"] = _start_agent(repo, scratch, "30s", "30s", env)
        procs["agent, --interval 1s"] = _start_agent(repo, scratch, "1s", "1s", env)
        procs["baseline: python sleep"] = subprocess.Popen(
            [PYTHON, "-c", f"import time; time.sleep({window + 600})"]
        )
        for tag in ("30s", "1s"):
            wait_until(lambda t=tag: _runs_done(scratch / f"state-{t}.db", 1), 60, 0.05)
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited early with {p.returncode}")
        time.sleep(2.0)  # let the run's bookkeeping and the first drain settle
        idle = _sample_idle(procs, window)
    finally:
        for p in procs.values():
            _stop(p)
        cfg.cleanup(scratch)
    busy = _busy(cfg, QUICK_DAG_N if cfg.quick else DAG_N)

    base = idle["baseline: python sleep"]
    rows = [
        [
            name,
            got["cpu_own_pct"],
            got["cpu_children_pct"],
            got["cpu_total_pct"],
            got["rss_mb_median"],
            got["rss_mb_max"],
            got["hwm_mb"],
            ratio(got["rss_mb_median"], base["rss_mb_median"]),
            got["threads"],
        ]
        for name, got in idle.items()
    ]
    idle_table = Table(
        f"idle, {window:.0f} s window, nothing to do",
        [
            "process",
            "CPU% own",
            "CPU% git children",
            "CPU% total",
            "RSS MB",
            "RSS MB max",
            "VmHWM MB",
            "RSS x baseline",
            "threads",
        ],
        rows,
    )
    default = idle["agent, --interval 30s (default)"]
    busy_table = Table(
        f"agent running the {busy['tasks']}-task DAG (width 10, fan-in 2, concurrency 2)",
        ["tasks", "wall s", "RSS MB median", "RSS MB max sampled", "VmHWM MB", "x idle RSS"],
        [
            [
                busy["tasks"],
                busy["wall_s"],
                busy["rss_mb_median"],
                busy["rss_mb_max_sampled"],
                busy["hwm_mb"],
                ratio(busy["hwm_mb"], default["rss_mb_median"]),
            ]
        ],
    )
    targets = [
        Target(
            "idle agent CPU (default interval)",
            default["cpu_total_pct"],
            1.0,
            "% of a core",
            detail=f"own + git children over {window:.0f} s",
        ),
        Target(
            "idle agent RSS (default interval)",
            default["rss_mb_max"],
            100,
            "MB",
            detail="max VmRSS sampled over the window",
        ),
        Target(
            f"agent RSS while running the {busy['tasks']}-task DAG",
            busy["hwm_mb"],
            150,
            "MB",
            detail="VmHWM of the agent at the end of the run",
        ),
    ]
    notes = ["idle with --interval 1s is informational (the target is for the default)"]
    if cfg.quick:
        notes.append(f"quick mode: {window:.0f} s window and a {busy['tasks']}-task DAG")
    return Result(
        NAME, TITLE, [idle_table, busy_table], targets, {"idle": idle, "busy": busy}, notes
    )
