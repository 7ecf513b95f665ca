"""5. Start-up: the commands people run all day, on a one-task repository.

``podium --help``, ``podium --version``, ``podium validate`` on the bundled examples, a
no-op ``podium plan`` (nothing outstanding) and a ``podium reconcile`` that runs one task
(each time after a new commit to the task; the data dir and its clone exist, as on a
workstation or an agent's host). Each command runs ``5 x repeat`` times (after one untimed
warm-up, so the page cache and ``.pyc`` files are warm); the table shows the median and the
fastest. Baselines: ``python -c pass`` (the same interpreter as podium) and
``git --version``.
"""

from __future__ import annotations

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
    ratio,
    run_measured,
)

NAME = "startup"
TITLE = "Start-up: --help, validate, a no-op plan, a one-task reconcile (vs python -c pass)"
ONE_TASK = "name: w\ntasks:\n  - {{id: a, run: 'true', env: {{N: '{n}'}}}}\n"
GOALS_MS = {
    "podium --help": 100.0,
    "podium plan (no-op)": 250.0,
    "podium reconcile (1 task)": 300.0,
}
EXAMPLES = ROOT / "examples-repo"


def run(cfg: Config) -> Result:
    scratch = cfg.scratch(NAME)
    env = bench_env(scratch / "home")
    commands: dict[str, list[str]] = {
        "baseline: python -c pass": [PYTHON, "-c", "pass"],
        "baseline: git --version": ["git", "--version"],
        "podium --help": [PODIUM, "--help"],
        "podium --version": [PODIUM, "--version"],
        "podium validate examples-repo": [PODIUM, "validate", str(EXAMPLES)],
    }
    repo = GitRepo(scratch / "git", env)
    counter = [0]

    def change() -> None:  # before each reconcile: the one task is outstanding again
        counter[0] += 1
        repo.commit({"workflows/w.yaml": ONE_TASK.format(n=counter[0])})
        repo.push()

    source = ["--repo", repo.url, "--data-dir", str(scratch / "data")]
    commands["podium plan (no-op)"] = [PODIUM, "plan", *source]
    commands["podium reconcile (1 task)"] = [PODIUM, "reconcile", *source]
    before = {"podium reconcile (1 task)": change}
    ok = {"podium plan (no-op)": (0, 2)}
    times: dict[str, list[Measured]] = {k: [] for k in commands}
    try:
        change()
        for name, argv in commands.items():
            before.get(name, lambda: None)()
            run_measured(argv, env, cwd=scratch)  # warm-up
        for _ in range(5 * cfg.repeat):
            for name, argv in commands.items():  # interleaved
                before.get(name, lambda: None)()
                got = run_measured(argv, env, cwd=scratch)
                if got.returncode not in ok.get(name, (0,)):
                    raise RuntimeError(f"{name} exited {got.returncode}")
                times[name].append(got)
    finally:
        cfg.cleanup(scratch)
    walls = {k: [m.wall for m in v] for k, v in times.items()}
    py = median(walls["baseline: python -c pass"])
    rows: list[list[Any]] = [
        [
            name,
            len(w),
            median(w) * 1000,
            min(w) * 1000,
            median([m.cpu for m in times[name]]) * 1000,
            ratio(median(w), py),
        ]
        for name, w in walls.items()
    ]
    table = Table(
        "start-up, warm caches",
        ["command", "n", "median ms", "min ms", "CPU ms", "x python -c pass"],
        rows,
    )
    targets = [
        Target(name, median(walls[name]) * 1000, goal, "ms", detail=f"median of {len(walls[name])}")
        for name, goal in GOALS_MS.items()
    ]
    data = {
        "runs_s": walls,
        "cpu_s": {k: [m.cpu for m in v] for k, v in times.items()},
        "examples": str(EXAMPLES.relative_to(ROOT)),
    }
    return Result(NAME, TITLE, [table], targets, data)
