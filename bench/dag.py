"""1. Task throughput on a DAG, against ``make -j2`` running the same DAG.

The DAG: N shell tasks running ``true`` in layers of ``WIDTH`` (10); every task after the
first layer needs ``FANIN`` (2) tasks of the layer before (fan-out/fan-in). Podium runs it
as one workflow with ``concurrency: 2`` via ``podium reconcile`` on a fresh data dir and
state db (clone, plan, one run of all N tasks); make runs the same DAG as a generated
Makefile with ``make -j2``. Like make, Podium runs a command line made of plain words
(no quoting, expansion, redirection or builtins) without a shell: it execs ``true``
itself. So the baseline of the targets is the Makefile with the recipe ``true`` ("make
exec", make's no-shell fast path); a second Makefile with the recipe ``/bin/sh -c true``
(one shell per task, as a command with shell syntax would cost) is measured for
reference.

Per-task overhead = (wall(N) - wall(1-task DAG)) / N for both, the 1-task DAG being the
"empty-run start-up" (same command, same fresh state, one task: process start, clone,
store creation, checkout). It runs right before every N-task run (paired) and the
median of the paired differences is used, so drift of the machine cancels out. The
nothing-outstanding pass (the same command again on an applied repo) is recorded too.
"+/- ms/task" is the median absolute deviation of the paired differences / N: at small N
the start-up's own noise can exceed the work of N tasks.
Peak RSS and CPU come from ``wait4`` on the podium process.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

from bench.common import (
    PODIUM,
    PYTHON,
    ROOT,
    Config,
    GitRepo,
    Measured,
    Result,
    Table,
    Target,
    bench_env,
    median,
    query,
    ratio,
    run_measured,
)

FLOOR = ROOT / "bench" / "spawnfloor.py"
NAME = "dag"
TITLE = "Task throughput on a DAG (podium reconcile vs make -j2)"
SIZES = (100, 500, 2000)
QUICK_SIZES = (20, 60)
WIDTH = 10
FANIN = 2
CONCURRENCY = 2


def needs_of(i: int) -> list[int]:
    """The tasks task ``i`` needs: ``FANIN`` neighbours in the layer before."""
    layer, pos = divmod(i, WIDTH)
    if layer == 0:
        return []
    return [(layer - 1) * WIDTH + (pos + d) % WIDTH for d in range(FANIN)]


def workflow_yaml(n: int, name: str = "dag") -> str:
    lines = [f"name: {name}", f"concurrency: {CONCURRENCY}", "tasks:"]
    for i in range(n):
        needs = needs_of(i)
        extra = f", needs: [{', '.join(f't{d}' for d in needs)}]" if needs else ""
        lines.append(f"  - {{id: t{i}, run: 'true'{extra}}}")
    return "\n".join(lines) + "\n"


SH_RECIPE = "/bin/sh -c true"
"""The process Podium spawns for ``run: 'true'``; make execs it as is (no metacharacters)."""
EXEC_RECIPE = "true"
"""What make alone would do: exec ``true`` directly, no shell (make's fast path)."""


def makefile(n: int, recipe: str = SH_RECIPE) -> str:
    targets = [f"t{i}" for i in range(n)]
    out = [f".PHONY: all {' '.join(targets)}", f"all: {' '.join(targets)}"]
    for i in range(n):
        deps = " ".join(f"t{d}" for d in needs_of(i))
        out.append(f"t{i}:{(' ' + deps) if deps else ''}\n\t{recipe}")
    return "\n".join(out) + "\n"


def _reconcile(repo: GitRepo, scratch: Path, tag: str, env: dict[str, str]) -> Measured:
    data = scratch / f"data-{tag}"
    argv = [PODIUM, "reconcile", "--repo", repo.url, "--data-dir", str(data)]
    argv += ["--state", str(data / "state.db")]
    os.sync()  # flush the previous run's files outside the timed section
    got = run_measured(argv, env, cwd=scratch, log=scratch / f"podium-{tag}.log")
    if got.returncode != 0:
        raise RuntimeError(f"podium reconcile ({tag}) exited {got.returncode}")
    return got


def _podium_once(repo: GitRepo, n: int, scratch: Path, tag: str, env: dict[str, str]) -> Measured:
    got = _reconcile(repo, scratch, tag, env)
    state = scratch / f"data-{tag}" / "state.db"
    done = query(state, "SELECT COUNT(*) FROM run_tasks WHERE status = 'succeeded'")
    if not done or done[0][0] != n:
        raise RuntimeError(f"podium reconcile (N={n}): {done} tasks succeeded, expected {n}")
    return got


def _floor_once(n: int, env: dict[str, str], podium_sized: bool) -> Measured:
    argv = [PYTHON, str(FLOOR), str(n)] + (["--load-podium"] if podium_sized else [])
    os.sync()
    got = run_measured(argv, env, ROOT)
    if got.returncode != 0:
        raise RuntimeError(f"spawnfloor {n} exited {got.returncode}")
    return got


def _make_once(mk: Path, env: dict[str, str]) -> Measured:
    os.sync()
    got = run_measured(["make", "-s", f"-j{CONCURRENCY}", "-f", str(mk), "all"], env, mk.parent)
    if got.returncode != 0:
        raise RuntimeError(f"make -f {mk.name} exited {got.returncode}")
    return got


def _wall(runs: list[Measured]) -> float:
    return median([m.wall for m in runs])


def _spread(runs: list[Measured]) -> float:
    walls = [m.wall for m in runs]
    return max(walls) - min(walls)


def _per_task(runs: list[Measured], starts: list[Measured], n: int) -> tuple[float, float]:
    """Median over repeats of (wall(N) - wall(the 1-task run next to it)) / N, in seconds,
    and the median absolute deviation of those differences / N (its noise)."""
    diffs = [m.wall - s.wall for m, s in zip(runs, starts, strict=True)]
    mid = median(diffs)
    return mid / n, median([abs(d - mid) for d in diffs]) / n


def run(cfg: Config) -> Result:
    sizes = QUICK_SIZES if cfg.quick else SIZES
    scratch = cfg.scratch(NAME)
    env = bench_env(scratch / "home")
    repos: dict[int, GitRepo] = {}
    makefiles: dict[int, Path] = {}
    execfiles: dict[int, Path] = {}
    for n in (1, *sizes):
        repo = GitRepo(scratch / f"repo-{n}", env)
        repo.commit({"workflows/dag.yaml": workflow_yaml(n)}, f"DAG of {n} tasks")
        repo.push()
        repos[n] = repo
        makefiles[n] = scratch / f"make-{n}" / "Makefile"
        makefiles[n].parent.mkdir()
        makefiles[n].write_text(makefile(n, SH_RECIPE))
        execfiles[n] = scratch / f"make-{n}" / "Makefile.exec"
        execfiles[n].write_text(makefile(n, EXEC_RECIPE))

    podium: dict[int, list[Measured]] = {n: [] for n in sizes}
    make: dict[int, list[Measured]] = {n: [] for n in sizes}
    podium_1: dict[int, list[Measured]] = {n: [] for n in sizes}
    make_1: dict[int, list[Measured]] = {n: [] for n in sizes}
    mexec: dict[int, list[Measured]] = {n: [] for n in sizes}
    mexec_1: dict[int, list[Measured]] = {n: [] for n in sizes}
    noop: list[Measured] = []
    # the same DAG run by a bare posix_spawn loop: in a small interpreter, and in one that
    # loaded Podium's modules (what starting processes costs from a process of that size)
    floor: dict[tuple[int, bool], list[Measured]] = {}
    floor_1: dict[tuple[int, bool], list[Measured]] = {}
    try:
        for rep in range(cfg.repeat):  # interleaved, so slow phases of the machine hit all
            for n in sizes:
                make_1[n].append(_make_once(makefiles[1], env))
                make[n].append(_make_once(makefiles[n], env))
                mexec_1[n].append(_make_once(execfiles[1], env))
                mexec[n].append(_make_once(execfiles[n], env))
                podium_1[n].append(_podium_once(repos[1], 1, scratch, f"1-{n}-{rep}", env))
                podium[n].append(_podium_once(repos[n], n, scratch, f"{n}-{rep}", env))
                for sized in (False, True):
                    floor_1.setdefault((n, sized), []).append(_floor_once(1, env, sized))
                    floor.setdefault((n, sized), []).append(_floor_once(n, env, sized))
            noop.append(_reconcile(repos[1], scratch, f"1-{sizes[0]}-{rep}", env))
    finally:
        cfg.cleanup(scratch)

    all_p1 = [m for n in sizes for m in podium_1[n]]
    all_m1 = [m for n in sizes for m in make_1[n]]
    p_start, m_start = _wall(all_p1), _wall(all_m1)
    data: dict[str, Any] = {
        "dag": {"width": WIDTH, "fanin": FANIN, "concurrency": CONCURRENCY, "command": "true"},
        "startup": {
            "definition": "podium reconcile of a 1-task DAG on a fresh data dir and state db;"
            " make -j2 of a 1-target Makefile; each run right before an N-task run",
            "make_recipe": SH_RECIPE,
            "make_exec_recipe": EXEC_RECIPE,
            "make_exec_wall_s": _wall([m for n in sizes for m in mexec_1[n]]),
            "podium_wall_s": p_start,
            "make_wall_s": m_start,
            "podium_noop_wall_s": _wall(noop),
            "podium_runs_s": [m.wall for m in all_p1],
            "make_runs_s": [m.wall for m in all_m1],
            "podium_noop_runs_s": [m.wall for m in noop],
        },
        "per_task_definition": "median over repeats of (wall(N) - wall(paired 1-task run)) / N",
        "sizes": {},
    }
    rows: list[list[Any]] = []
    per_task_ratios: dict[int, float | None] = {}
    exec_ratios: dict[int, float | None] = {}
    noise: dict[int, float] = {}
    for n in sizes:
        pw, mw = _wall(podium[n]), _wall(make[n])
        p_task, p_noise = _per_task(podium[n], podium_1[n], n)
        noise[n] = p_noise
        m_task, _ = _per_task(make[n], make_1[n], n)
        x_task, _ = _per_task(mexec[n], mexec_1[n], n)
        f_small, _ = _per_task(floor[(n, False)], floor_1[(n, False)], n)
        f_sized, _ = _per_task(floor[(n, True)], floor_1[(n, True)], n)
        per_task_ratios[n] = ratio(p_task, m_task)
        exec_ratios[n] = ratio(p_task, x_task)
        rss = max(m.maxrss_mb for m in podium[n])
        cpu = median([m.cpu for m in podium[n]])
        data["sizes"][str(n)] = {
            "podium_wall_s": pw,
            "podium_runs_s": [m.wall for m in podium[n]],
            "podium_startup_runs_s": [m.wall for m in podium_1[n]],
            "podium_per_task_ms": p_task * 1000,
            "podium_per_task_noise_ms": p_noise * 1000,
            "podium_tasks_per_s": n / pw,
            "podium_cpu_s": cpu,
            "podium_peak_rss_mb": rss,
            "make_wall_s": mw,
            "make_runs_s": [m.wall for m in make[n]],
            "make_startup_runs_s": [m.wall for m in make_1[n]],
            "make_per_task_ms": m_task * 1000,
            "make_exec_wall_s": _wall(mexec[n]),
            "make_exec_runs_s": [m.wall for m in mexec[n]],
            "make_exec_per_task_ms": x_task * 1000,
            "wall_ratio": ratio(pw, mw),
            "per_task_ratio": per_task_ratios[n],
            "per_task_ratio_vs_make_exec": ratio(p_task, x_task),
            "python_floor_per_task_ms": f_small * 1000,
            "python_floor_podium_sized_per_task_ms": f_sized * 1000,
            "python_floor_podium_sized_peak_rss_mb": max(m.maxrss_mb for m in floor[(n, True)]),
            "per_task_ratio_vs_podium_sized_floor": ratio(p_task, f_sized),
        }
        rows.append(
            [
                n,
                pw,
                p_task * 1000,
                p_noise * 1000,
                n / pw,
                mw,
                m_task * 1000,
                ratio(pw, mw),
                per_task_ratios[n],
                x_task * 1000,
                ratio(p_task, x_task),
                f_small * 1000,
                f_sized * 1000,
                ratio(p_task, f_sized),
                cpu,
                rss,
            ]
        )
    # a child's ru_maxrss is never below its parent's RSS at fork: this is the floor
    data["rss_floor_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = Table(
        f"DAG, width {WIDTH}, fan-in {FANIN}, concurrency {CONCURRENCY}, medians of "
        f"{cfg.repeat} (start-up = 1-task run: podium {p_start:.3f}s, make {m_start:.4f}s;"
        f" podium nothing-outstanding pass {_wall(noop):.3f}s)",
        [
            "N",
            "podium s",
            "podium ms/task",
            "+/- ms/task",
            "tasks/s",
            "make s",
            "make ms/task",
            "wall ratio",
            "per-task ratio",
            "make exec ms/task",
            "ratio vs exec",
            "py floor ms/task",
            "podium-size floor ms/task",
            "ratio vs that floor",
            "podium CPU s",
            "peak RSS MB",
        ],
        rows,
    )
    n_max = max(sizes)
    # compare with the smallest N whose work stands out of the start-up noise: positive,
    # its paired differences' deviation within 25 % of it, and N tasks' worth of time at
    # least twice the spread of the start-up runs next to it (at N = 100 the work can be a
    # few tens of ms against start-ups that move by as much); failing that, the next
    # largest N
    usable = [
        n
        for n in sorted(sizes)[:-1]
        if (exec_ratios[n] or 0) > 0
        and noise[n] <= 0.25 * data["sizes"][str(n)]["podium_per_task_ms"] / 1000
        and n * data["sizes"][str(n)]["podium_per_task_ms"] / 1000 >= 2 * _spread(podium_1[n])
    ]
    n_min = usable[0] if usable else sorted(sizes)[-2]
    growth = ratio(exec_ratios[n_max], exec_ratios[n_min])
    data["per_task_ratio_growth"] = {"value": growth, "from_n": n_min, "to_n": n_max}
    targets = [
        Target(
            f"per-task overhead vs make at N={n_max}",
            exec_ratios[n_max],
            1.5,
            "x",
            inclusive=True,
            detail=f"(podium ms/task) / (make ms/task), recipe '{EXEC_RECIPE}' for both",
        ),
        Target(
            f"per-task ratio does not grow (N={n_max} vs N={n_min})",
            growth,
            1.25,
            "x",
            inclusive=True,
            detail="per-task ratio at the largest N / at the smallest N out of start-up noise"
            " (25% allowance)",
        ),
        Target(
            f"podium reconcile peak RSS, N={n_max}",
            data["sizes"][str(n_max)]["podium_peak_rss_mb"],
            150,
            "MB",
            detail="ru_maxrss of the podium process (wait4), worst repeat",
        ),
    ]
    return Result(NAME, TITLE, [table], targets, data)
