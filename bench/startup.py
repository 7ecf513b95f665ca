"""5. Start-up: ``podium --help`` and ``podium validate`` on the bundled examples.

Each command runs ``5 x repeat`` times (after one untimed warm-up, so the page cache and
``.pyc`` files are warm); the table shows the median and the fastest. Baselines:
``python -c pass`` (the same interpreter as podium) and ``git --version``.
"""

from __future__ import annotations

from typing import Any

from bench.common import (
    PODIUM,
    PYTHON,
    ROOT,
    Config,
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
TITLE = "Start-up: podium --help, podium validate (vs python -c pass, git --version)"
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
    times: dict[str, list[Measured]] = {k: [] for k in commands}
    try:
        for argv in commands.values():
            run_measured(argv, env, cwd=scratch)  # warm-up
        for _ in range(5 * cfg.repeat):
            for name, argv in commands.items():  # interleaved
                got = run_measured(argv, env, cwd=scratch)
                if got.returncode != 0:
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
        Target(
            "podium --help",
            median(walls["podium --help"]) * 1000,
            300,
            "ms",
            detail=f"median wall of {len(walls['podium --help'])}",
        )
    ]
    data = {
        "runs_s": walls,
        "cpu_s": {k: [m.cpu for m in v] for k, v in times.items()},
        "examples": str(EXAMPLES.relative_to(ROOT)),
    }
    return Result(NAME, TITLE, [table], targets, data)
