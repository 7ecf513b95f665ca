"""The example workflows re-run a task when anything its script runs changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from podium.fingerprint import fingerprint_workflow
from podium.source.memory import MemorySnapshot
from podium.spec.loader import load_snapshot

EXAMPLES = Path(__file__).resolve().parents[1] / "examples-repo"
FILES = {
    p.relative_to(EXAMPLES).as_posix(): p.read_text() for p in EXAMPLES.rglob("*") if p.is_file()
}
SOURCED = re.compile(r'^\. "\$\(dirname "\$0"\)/([\w.-]+)"', re.MULTILINE)


def fingerprints(files: dict[str, str]) -> dict[tuple[str, str], str]:
    state = load_snapshot(MemorySnapshot(files))
    assert state.problems == (), [str(p) for p in state.problems]
    return {
        (wf.name, tid): fp.fingerprint
        for wf in state.workflows.values()
        for tid, fp in fingerprint_workflow(wf).items()
    }


def scripts_run_by_tasks() -> dict[tuple[str, str], set[str]]:
    """(workflow, task) → the example scripts its command runs, with what they source."""
    state = load_snapshot(MemorySnapshot(FILES))
    out: dict[tuple[str, str], set[str]] = {}
    for wf in state.workflows.values():
        for task in wf.spec.tasks:
            ran = set(re.findall(r"\./(scripts/[\w.-]+)", str(task.config)))
            for script in list(ran):
                ran |= {f"scripts/{name}" for name in SOURCED.findall(FILES[script])}
            out[(wf.name, task.id)] = ran
    return out


@pytest.mark.parametrize(
    "script", sorted(f for f in FILES if f.startswith("scripts/") and f.endswith(".sh"))
)
def test_editing_a_script_reruns_every_task_that_runs_it(script: str) -> None:
    """Editing a script (lib.sh included) changes the fingerprint of each task that runs it."""
    before = fingerprints(FILES)
    after = fingerprints({**FILES, script: FILES[script] + "# edited\n"})
    changed = {key for key in before if before[key] != after[key]}
    runners = {key for key, ran in scripts_run_by_tasks().items() if script in ran}
    assert runners <= changed, sorted(runners - changed)


def test_every_example_script_sources_lib_sh() -> None:
    """The premise of the test above: the scripts do share lib.sh."""
    scripts = [f for f in FILES if f.startswith("scripts/") and f.endswith(".sh")]
    sourcing = [f for f in scripts if "lib.sh" in SOURCED.findall(FILES[f])]
    assert len(sourcing) == len(scripts) - 1  # all but lib.sh itself
