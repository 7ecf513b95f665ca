"""Run Podium's benchmark suite.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--repeat K]

Each benchmark prints a table and its targets (PASS/FAIL) and writes
``bench/results/<name>.json``. Figures are compared with a baseline measured in the
same run, so ratios hold on a small, noisy machine. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402 - the path above must come first
    RESULTS_DIR,
    TARGET_HEADERS,
    Config,
    Result,
    Table,
    Target,
    machine_info,
    now_iso,
    write_json,
)

BENCHMARKS = ("dag", "plan", "latency", "idle", "startup")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat, short idle")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these benchmarks (repeatable or comma-separated): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--repeat", type=int, default=None, help="repeats per figure (default 3)")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON results go"
    )
    parser.add_argument("--keep", action="store_true", help="keep scratch directories")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument(
        "--report", action="store_true", help="print the saved results as Markdown and exit"
    )
    parser.add_argument("--child", choices=BENCHMARKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    args.names = [n for n in BENCHMARKS if n in names] if names else list(BENCHMARKS)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _run_one(name: str, cfg: Config) -> int:
    """Run one benchmark in this process: print its tables, write its JSON."""
    module = importlib.import_module(f"bench.{name}")
    print(f"\n== {name}: {module.TITLE}", flush=True)
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    path = cfg.results_dir / f"{name}.json"
    try:
        result: Result = module.run(cfg)
    except Exception as exc:
        traceback.print_exc()
        write_json(
            path,
            {"benchmark": name, "date": now_iso(), "error": f"{type(exc).__name__}: {exc}"},
        )
        return 1
    result.data["elapsed_s"] = time.perf_counter() - t0
    # other work on the machine shows here (1-minute load averages, before and after)
    result.data["loadavg_1m"] = [load_before[0], os.getloadavg()[0]]
    for table in result.tables:
        print(table.render(), flush=True)
    print(Table("targets", TARGET_HEADERS, [t.row() for t in result.targets]).render())
    for note in result.notes:
        print(f"note: {note}")
    write_json(path, result.to_json(cfg))
    print(f"({time.perf_counter() - t0:.0f}s; wrote {path})", flush=True)
    return 0


def _targets_of(path: Path) -> tuple[list[Target], str | None]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return [], f"no results ({exc})"
    if "error" in data:
        return [], str(data["error"])
    targets = [
        Target(t["name"], t["value"], t["limit"], t["unit"], t["comparison"] == "<=", t["detail"])
        for t in data["targets"]
    ]
    return targets, None


def _report(names: list[str], results_dir: Path) -> int:
    """The saved results as Markdown (what bench/README.md shows)."""
    for name in names:
        path = results_dir / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        print(f"### {name}: {data.get('title', '')}\n")
        if "error" in data:
            print(f"error: {data['error']}\n")
            continue
        m = data["machine"]
        print(
            f"{data['date']}, {m['nproc']} CPU(s), Python {m['python']},"
            f" podium {m.get('podium_commit', '?')}, repeat {data['config']['repeat']},"
            f" load average {' -> '.join(f'{x:.1f}' for x in data['data'].get('loadavg_1m', []))}"
            f"{', quick' if data['config']['quick'] else ''}\n"
        )
        for table in data["tables"]:
            print(f"{table['title']}\n")
            print(Table(table["title"], table["headers"], table["rows"]).render(markdown=True))
            print()
        targets, _error = _targets_of(path)
        print(Table("targets", TARGET_HEADERS, [t.row() for t in targets]).render(markdown=True))
        for note in data.get("notes", []):
            print(f"\nNote: {note}")
        print()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    cfg = Config(quick=args.quick, repeat=args.repeat, results_dir=args.results_dir, keep=args.keep)
    if args.child:
        return _run_one(args.child, cfg)
    if args.report:
        return _report(args.names, cfg.results_dir)
    info = machine_info()
    print(
        f"Podium benchmarks, {now_iso()}: {info['nproc']} CPU(s) ({info['cpu']}),"
        f" Python {info['python']}, {info['git']}, {info['make']}"
        f"{' [quick]' if cfg.quick else ''}, repeat {cfg.repeat}",
        flush=True,
    )
    began = time.perf_counter()
    rows: list[list[object]] = []
    errors: list[str] = []
    failed = 0
    for name in args.names:
        # each benchmark in a fresh, small interpreter: the peak RSS that wait4 reports for a
        # child can never be below its parent's at fork time, and in-process measurements
        # (plan) must not share a heap or threads with the others
        argv_child = [sys.executable, str(Path(__file__).resolve()), "--child", name]
        argv_child += ["--repeat", str(cfg.repeat), "--results-dir", str(cfg.results_dir)]
        argv_child += ["--quick"] if cfg.quick else []
        argv_child += ["--keep"] if cfg.keep else []
        code = subprocess.run(argv_child, check=False).returncode
        targets, error = _targets_of(cfg.results_dir / f"{name}.json")
        if code != 0 or error:
            errors.append(f"{name}: {error or f'exit status {code}'}")
        rows += [[name, *t.row()] for t in targets]
        failed += sum(1 for t in targets if t.passed is False)
    if rows:
        print()
        print(Table("summary of targets", ["bench", *TARGET_HEADERS], rows).render())
    print(
        f"\n{len(args.names)} benchmark(s) in {time.perf_counter() - began:.0f}s;"
        f" {failed} target(s) failed; {len(errors)} error(s)"
    )
    for error in errors:
        print(f"error: {error}")
    if errors:
        return 1
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
