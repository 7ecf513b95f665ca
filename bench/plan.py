"""2. Plan cost: 1,000 workflows x 10 tasks, measured in-process with the Python API.

- cold plan: a new ``GitSource`` and ``Reconciler`` on the already-cloned cache (what an
  agent restart does): walk the commit's tree, read every file, parse and validate it,
  fingerprint every task, read the executed state and diff. Also broken down by phase.
- warm plan: ``Reconciler.plan`` again on the same revision (the desired state is cached).
- warm pass: ``Reconciler.reconcile_once(drive=False)`` with nothing new and nothing
  outstanding (every task applied): fetch, record, plan, act. Its process CPU
  (``time.process_time``) is the target; the git children's CPU is reported apart.

Baseline (the I/O floor): ``git ls-tree -r`` of the revision plus ``git cat-file --batch``
of every blob. The ``podium plan`` command on the same repo and state is timed as well.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PODIUM,
    Config,
    GitRepo,
    Result,
    Table,
    Target,
    bench_env,
    children_cpu,
    median,
    ratio,
    run_measured,
)

NAME = "plan"
TITLE = "Plan cost (1,000 workflows x 10 tasks)"
WORKFLOWS = 1000
QUICK_WORKFLOWS = 20
TASKS = 10


def workflow_yaml(i: int) -> str:
    """A realistic small workflow: params, env, a fan-out/fan-in of 10 tasks, one input."""
    lines = [
        f"name: wf-{i:04d}",
        f"description: generated workflow {i}",
        "on_failure: stop",
        "concurrency: 2",
        "params:",
        f"  SERVICE: svc-{i:04d}",
        '  REGION: "eu-west-1"',
        "tasks:",
        "  - id: build",
        '    run: echo "build $SERVICE"',
        "    inputs: [scripts/build.sh]",
        "    timeout: 5m",
    ]
    for t in range(1, TASKS - 1):
        lines += [
            f"  - id: step-{t}",
            "    needs: [build]",
            f'    run: echo "step {t} of $SERVICE in $REGION"',
            f'    env: {{STEP: "{t}"}}',
            "    retries: {count: 2, delay: 1s}",
        ]
    lines += [
        "  - id: finish",
        f"    needs: [{', '.join(f'step-{t}' for t in range(1, TASKS - 1))}]",
        "    run: echo done",
    ]
    return "\n".join(lines) + "\n"


def _io_floor(bare: Path, rev: str, env: dict[str, str]) -> float:
    """``git ls-tree -r`` + ``git cat-file --batch`` of every blob: the time to read the files."""
    began = time.perf_counter()
    tree = subprocess.run(
        ["git", "-C", str(bare), "ls-tree", "-r", rev],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    shas = "".join(line.split()[2] + "\n" for line in tree.splitlines() if " blob " in line)
    out = subprocess.run(
        ["git", "-C", str(bare), "cat-file", "--batch"],
        input=shas.encode(),
        capture_output=True,
        check=True,
        env=env,
    ).stdout
    elapsed = time.perf_counter() - began
    assert len(out) > len(shas)
    return elapsed


def run(cfg: Config) -> Result:
    from podium.fingerprint import fingerprint_workflow
    from podium.planner import Applied, Desired
    from podium.planner import plan as diff
    from podium.reconciler import Reconciler
    from podium.source import open_source
    from podium.spec.loader import load_snapshot
    from podium.store import open_store

    count = QUICK_WORKFLOWS if cfg.quick else WORKFLOWS
    scratch = cfg.scratch(NAME)
    env = bench_env(scratch / "home")
    try:
        repo = GitRepo(scratch / "repo", env)
        files = {f"workflows/wf-{i:04d}.yaml": workflow_yaml(i) for i in range(count)}
        files["scripts/build.sh"] = "#!/bin/sh\necho build\n"
        rev = repo.commit(files, f"{count} workflows")
        repo.push()
        cache = scratch / "data" / "cache"
        state = scratch / "data" / "state.db"

        # first contact: clone, plan against an empty store, then mark everything applied
        source = open_source(repo.url, cache)
        t0 = time.perf_counter()
        fetched = source.fetch()
        clone_s = time.perf_counter() - t0
        assert fetched.revision == rev, fetched
        store = open_store(state)
        first = Reconciler(store, source, None)
        t0 = time.perf_counter()
        loaded, first_plan = first.plan(rev)
        first_s = time.perf_counter() - t0
        n_tasks = first_plan.outstanding_count
        assert n_tasks == count * TASKS, (n_tasks, first_plan.problems[:3])
        first.desired.record(loaded, first.notifiers)
        now = time.time()
        with store.tx():
            for name, fps in loaded.desired.fingerprints.items():
                for task, fp in fps.items():
                    applied = Applied(fp.fingerprint, fp.spec_hash, fp.inputs_hash, rev, now)
                    store.set_applied(name, task, applied, None)

        cold, cold_cpu, warm, warm_cpu, pass_wall, pass_cpu, pass_git = ([] for _ in range(7))
        phases: dict[str, list[float]] = {
            k: []
            for k in (
                "walk+read+parse+validate",
                "last-good reload (all files again)",
                "fingerprint",
                "executed",
                "diff",
            )
        }
        floor: list[float] = []
        for _ in range(cfg.repeat):
            floor.append(_io_floor(repo.bare, rev, env))
            # cold: what an agent does after a restart (the clone cache is already there)
            src = open_source(repo.url, cache)
            src.fetch()
            rec = Reconciler(store, src, None)
            t0, c0 = time.perf_counter(), time.process_time()
            _, the_plan = rec.plan(rev)
            cold.append(time.perf_counter() - t0)
            cold_cpu.append(time.process_time() - c0)
            assert the_plan.outstanding_count == 0, the_plan.outstanding_count
            # warm: same revision again
            t0, c0 = time.perf_counter(), time.process_time()
            rec.plan(rev)
            warm.append(time.perf_counter() - t0)
            warm_cpu.append(time.process_time() - c0)
            # warm pass, steady state (the first pass after a restart records files)
            rec.reconcile_once(drive=False)
            g0 = children_cpu()
            t0, c0 = time.perf_counter(), time.process_time()
            result = rec.reconcile_once(drive=False)
            pass_wall.append(time.perf_counter() - t0)
            pass_cpu.append(time.process_time() - c0)
            pass_git.append(children_cpu() - g0)
            assert not result.started and result.revision == rev, result
        # the cold plan by phase, once (slow), on yet another fresh source
        src2 = open_source(repo.url, cache)
        src2.fetch()
        t0 = time.perf_counter()
        desired_state = load_snapshot(src2.snapshot(rev))
        t1 = time.perf_counter()
        Reconciler(store, src2, None).desired._last_good()  # what a cold load does first
        t2 = time.perf_counter()
        fps = {n: fingerprint_workflow(wf) for n, wf in desired_state.workflows.items()}
        t3 = time.perf_counter()
        executed = rec.executed()
        t4 = time.perf_counter()
        diff(Desired(rev, desired_state.workflows, fps, desired_state.problems), executed, t4)
        t5 = time.perf_counter()
        spans = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
        for key, value in zip(phases, spans, strict=True):
            phases[key].append(value)
        store.close()

        cli_argv = [PODIUM, "plan", "--repo", repo.url, "--data-dir", str(scratch / "data")]
        cli_argv += ["--state", str(state)]
        got = run_measured(cli_argv, env, cwd=scratch, log=scratch / "plan-cli.log")
        if got.returncode != 0:
            raise RuntimeError(f"podium plan exited {got.returncode} (expected 0)")
        cli = [got.wall]
    finally:
        cfg.cleanup(scratch)

    floor_s = median(floor)

    def row(label: str, wall: float | None, cpu: float | None = None) -> list[Any]:
        return [
            label,
            None if wall is None else wall * 1000,
            None if cpu is None else cpu * 1000,
            ratio(wall, floor_s),
        ]

    rows: list[list[Any]] = [
        row("baseline: git ls-tree -r + cat-file --batch", floor_s),
        row("first plan (empty store: all new)", first_s),
        row("cold plan (new Reconciler)", median(cold), median(cold_cpu)),
        *(row(f"  cold phase (1 run): {k}", median(v)) for k, v in phases.items()),
        row("warm plan (same revision)", median(warm), median(warm_cpu)),
        row("warm reconcile pass, nothing new", median(pass_wall), median(pass_cpu)),
        row("  its git children (fetch) CPU", None, median(pass_git)),
        row("podium plan CLI, 1 run (cached clone, all applied)", median(cli)),
    ]
    table = Table(
        f"{count} workflows x {TASKS} tasks = {count * TASKS} tasks, medians of {cfg.repeat}"
        f" (clone {clone_s:.2f}s)",
        ["step", "wall ms", "CPU ms", "x I/O floor"],
        rows,
    )
    data = {
        "workflows": count,
        "tasks": count * TASKS,
        "clone_s": clone_s,
        "io_floor_s": floor,
        "first_plan_s": first_s,
        "cold_plan_s": cold,
        "cold_plan_cpu_s": cold_cpu,
        "cold_phases_s": phases,
        "warm_plan_s": warm,
        "warm_plan_cpu_s": warm_cpu,
        "warm_pass_s": pass_wall,
        "warm_pass_cpu_s": pass_cpu,
        "warm_pass_git_children_cpu_s": pass_git,
        "plan_cli_s": cli,
    }
    targets = [
        Target(
            f"cold plan of {count * TASKS} tasks",
            median(cold),
            1.0,
            "s",
            detail="new Reconciler: walk + read + parse + fingerprint + diff, median wall",
        ),
        Target(
            "warm reconcile pass, nothing new",
            median(pass_cpu) * 1000,
            20,
            "ms CPU",
            detail="process_time of reconcile_once(drive=False); git children excluded",
        ),
    ]
    notes = []
    if cfg.quick:
        notes.append("quick mode: the targets are meant for 10,000 tasks")
    return Result(NAME, TITLE, [table], targets, data, notes)
