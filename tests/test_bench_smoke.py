"""Smoke run of the benchmark suite (bench/) with tiny sizes: it runs and writes numbers."""

from __future__ import annotations

import json
import numbers
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"


def _bench(name: str, results: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", name, "--results-dir", str(results)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "summary of targets" in done.stdout
    data: dict[str, Any] = json.loads((results / f"{name}.json").read_text())
    assert data["benchmark"] == name
    assert data["config"] == {"quick": True, "repeat": 1}
    assert data["targets"], data
    for target in data["targets"]:
        if target["value"] is None:  # a figure lost in start-up noise at tiny sizes
            assert target["pass"] is None, target
        else:
            assert isinstance(target["value"], numbers.Real), target
            assert target["pass"] in (True, False), target
    for table in data["tables"]:
        assert table["rows"], table
    return data


def _positive(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0


def test_bench_dag_and_startup_quick(tmp_path: Path) -> None:
    dag = _bench("dag", tmp_path)
    sizes = dag["data"]["sizes"]
    assert sizes, dag
    for figures in sizes.values():
        for key in ("podium_wall_s", "make_wall_s", "podium_peak_rss_mb", "podium_cpu_s"):
            assert _positive(figures[key]), (key, figures)
        for key in ("podium_per_task_ms", "make_per_task_ms"):  # a difference: may be < 0
            assert isinstance(figures[key], numbers.Real), (key, figures)
    assert _positive(dag["data"]["startup"]["podium_wall_s"])

    startup = _bench("startup", tmp_path)
    runs = startup["data"]["runs_s"]
    assert set(runs) >= {"podium --help", "baseline: python -c pass"}
    assert all(_positive(t) for times in runs.values() for t in times)
    assert {"podium plan (no-op)", "podium reconcile (1 task)"} <= set(runs)


def test_bench_plan_quick(tmp_path: Path) -> None:
    """The plan benchmark runs on the real API (its phases are timed and positive)."""
    plan = _bench("plan", tmp_path)
    assert all(t["value"] is not None for t in plan["targets"]), plan["targets"]
