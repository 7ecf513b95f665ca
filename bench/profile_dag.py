"""Profile ``podium reconcile`` on the benchmark DAG with py-spy, and rank podium's hot spots.

    .venv/bin/python bench/profile_dag.py [--tasks 2000] [--rate 100] [--out DIR]

Needs ``py-spy`` (``.venv/bin/pip install py-spy``). Samples every thread without pausing
the process (``--nonblocking``), idle waits excluded, then prints per function: samples,
share of the busy samples, and milliseconds per task (samples / rate / N). The raw
profile (flamegraph-ready "collapsed" stacks) is kept in ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402 - the path above must come first
    PODIUM,
    RESULTS_DIR,
    Config,
    GitRepo,
    Table,
    bench_env,
)
from bench.dag import workflow_yaml  # noqa: E402

WAITS = ("Condition.wait", "Event.wait", "_worker (concurrent/futures/thread.py:81)")


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:LINE)`` -> ``func (file.py)``: aggregate over lines."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    # podium's own modules keep their package path
    inside = path.startswith("podium/") or "/podium/" in path
    short = "podium/" + path.split("podium/", 1)[1] if inside else Path(path).name
    return f"{name} ({short})"


def summarize(raw: Path, tasks: int, rate: int, top: int = 25) -> list[Table]:
    by_thread: Counter[str] = Counter()
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("thread ", "process "))]
        if not frames or any(w in frames[-1] for w in WAITS):
            continue  # no Python frame, or blocked in a wait py-spy did not see as idle
        busy += count
        by_thread[_thread_role(frames)] += count
        self_c[_frame_name(frames[-1])] += count
        for name in {_frame_name(f) for f in frames}:
            incl[name] += count

    def ms_per_task(n: int) -> float:
        return n / rate / tasks * 1000

    def rows(counter: Counter[str], only_podium: bool) -> list[list[object]]:
        picked = [(k, v) for k, v in counter.most_common() if not only_podium or "(podium/" in k][
            :top
        ]
        return [[k, v, 100 * v / busy, ms_per_task(v)] for k, v in picked]

    headers = ["function", "samples", "% busy", "ms/task"]
    return [
        Table(
            f"busy samples by thread role ({busy} samples at {rate} Hz, {tasks} tasks)",
            ["role", "samples", "% busy", "ms/task"],
            [[k, v, 100 * v / busy, ms_per_task(v)] for k, v in by_thread.most_common()],
        ),
        Table("self time (any code)", headers, rows(self_c, only_podium=False)),
        Table("inclusive time, podium's own functions", headers, rows(incl, only_podium=True)),
    ]


def _thread_role(frames: list[str]) -> str:
    text = ";".join(frames)
    if "importlib._bootstrap" in text:
        return "imports (start-up)"
    if "LocalExecutor._execute" in text:
        return "task worker threads (runner: spawn, supervise, log)"
    if "_renew_loop" in text:
        return "lease renewal thread"
    if "reconcile (podium/cli/passes.py" in text or "Reconciler." in text:
        return "coordinator (engine drive, store)"
    return "other (start-up, imports, exit)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "profile")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 1
    cfg = Config()
    scratch = cfg.scratch("profile")
    env = bench_env(scratch / "home")
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"dag-{args.tasks}.collapsed.txt"
    try:
        repo = GitRepo(scratch / "repo", env)
        repo.commit({"workflows/dag.yaml": workflow_yaml(args.tasks)}, "dag")
        repo.push()
        data = scratch / "data"
        argv = [spy, "record", "--nonblocking", "--threads", "-r", str(args.rate), "-f", "raw"]
        argv += ["-o", str(raw), "--", PODIUM, "reconcile", "--repo", repo.url]
        argv += ["--data-dir", str(data)]
        began = time.perf_counter()
        with (args.out / "podium.log").open("wb") as log:
            code = subprocess.run(argv, env=env, stdout=log, stderr=log, check=False).returncode
        wall = time.perf_counter() - began
    finally:
        cfg.cleanup(scratch)
    if code != 0:
        print(f"py-spy/podium exited {code}; see {args.out / 'podium.log'}", file=sys.stderr)
        return 1
    print(f"podium reconcile of {args.tasks} tasks under py-spy: {wall:.1f}s wall")
    for table in summarize(raw, args.tasks, args.rate):
        print()
        print(table.render())
    print(f"\nraw profile: {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
