"""The pure planner: which tasks are outstanding, why, and what blocks a run."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.fingerprint import fingerprint_workflow
from podium.planner import (
    Applied,
    Desired,
    Executed,
    Failure,
    Plan,
    Reason,
    due_slot,
    plan,
)
from podium.source.memory import MemorySnapshot
from podium.spec.loader import load_snapshot

WF_FILE = "workflows/deploy.yaml"

# build → test → deploy, plus an independent docs task.
DEPLOY = """\
name: deploy
params:
  VERSION: "1.0"
tasks:
  - id: build
    run: make build
    inputs: [src/*.c]
  - id: test
    needs: [build]
    run: make test
  - id: deploy
    needs: [test]
    run: make deploy
  - id: docs
    run: make docs
"""

SRC = {"src/main.c": "int main(void) { return 0; }\n"}


def repo(workflow: str = DEPLOY, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Repository files: the deploy workflow, its sources, and any extra files."""
    return {WF_FILE: workflow, **SRC, **(extra or {})}


def desired_of(files: Mapping[str, str], revision: str | None = None) -> Desired:
    """Load and fingerprint a repository the way the reconciler does."""
    state = load_snapshot(MemorySnapshot(files, revision))
    assert not state.problems, [str(p) for p in state.problems]
    fps = {name: fingerprint_workflow(wf) for name, wf in state.workflows.items()}
    return Desired(state.revision, state.workflows, fps, state.problems)


def applied_of(desired: Desired, only: set[str] | None = None) -> dict[tuple[str, str], Applied]:
    """Applied records as if every task of ``desired`` (or of the ``only`` workflows) ran."""
    return {
        (name, task): Applied(fp.fingerprint, fp.spec_hash, fp.inputs_hash, desired.revision, 1.0)
        for name, fps in desired.fingerprints.items()
        if only is None or name in only
        for task, fp in fps.items()
    }


def reasons(the_plan: Plan, workflow: str = "deploy") -> dict[str, Reason]:
    wp = the_plan.workflow(workflow)
    assert wp is not None
    return {c.id: c.reason for c in wp.outstanding}


# -- plain table: desired vs applied -------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    applied: dict[str, str] | None
    """Files whose fingerprints are applied (None: nothing ran yet)."""
    desired: dict[str, str]
    outstanding: dict[str, Reason]
    removed: tuple[str, ...] = ()
    up_to_date: frozenset[str] = field(default_factory=frozenset)


ALL = ("build", "test", "deploy", "docs")

CASES = [
    Case(
        "new workflow: every task is new",
        None,
        repo(),
        {t: Reason.NEW for t in ALL},
    ),
    Case(
        "applied equals desired: nothing outstanding",
        repo(),
        repo(),
        {},
        up_to_date=frozenset(ALL),
    ),
    Case(
        "one command changed: it and its descendants",
        repo(),
        repo(DEPLOY.replace("make test", "make test-all")),
        {"test": Reason.CHANGED, "deploy": Reason.UPSTREAM_CHANGED},
        up_to_date=frozenset({"build", "docs"}),
    ),
    Case(
        "input file content changed",
        repo(),
        repo(extra={"src/main.c": "int main(void) { return 1; }\n"}),
        {
            "build": Reason.INPUTS_CHANGED,
            "test": Reason.UPSTREAM_CHANGED,
            "deploy": Reason.UPSTREAM_CHANGED,
        },
        up_to_date=frozenset({"docs"}),
    ),
    Case(
        "a new file matching an input glob",
        repo(),
        repo(extra={"src/util.c": "int util;\n"}),
        {
            "build": Reason.INPUTS_CHANGED,
            "test": Reason.UPSTREAM_CHANGED,
            "deploy": Reason.UPSTREAM_CHANGED,
        },
        up_to_date=frozenset({"docs"}),
    ),
    Case(
        "a file nobody declares as input changed: nothing",
        repo(extra={"README.md": "one"}),
        repo(extra={"README.md": "two"}),
        {},
        up_to_date=frozenset(ALL),
    ),
    Case(
        "revert: desired goes back to an older fingerprint than the applied one",
        repo(DEPLOY.replace("make test", "make test-all")),
        repo(),
        {"test": Reason.CHANGED, "deploy": Reason.UPSTREAM_CHANGED},
        up_to_date=frozenset({"build", "docs"}),
    ),
    Case(
        "a workflow param changed: every task sees it",
        repo(),
        repo(DEPLOY.replace('VERSION: "1.0"', 'VERSION: "1.1"')),
        {t: Reason.CHANGED for t in ALL},
    ),
    Case(
        "comments, whitespace and key order do not matter",
        repo(),
        repo(
            "# the deploy pipeline\n"
            + DEPLOY.replace(
                "  - id: docs\n    run: make docs\n", "  - run:   make docs  \n    id: docs\n"
            )
        ),
        {},
        up_to_date=frozenset(ALL),
    ),
    Case(
        "operational knobs (timeout, retries, approval) do not re-run a task",
        repo(),
        repo(
            DEPLOY.replace(
                "    run: make deploy\n",
                "    run: make deploy\n    timeout: 5m\n    retries: 3\n"
                "    approval: {approvers: [lead@example.com]}\n",
            )
        ),
        {},
        up_to_date=frozenset(ALL),
    ),
    Case(
        "a task added: only it is new",
        repo(),
        repo(DEPLOY + "  - id: lint\n    needs: [build]\n    run: make lint\n"),
        {"lint": Reason.NEW},
        up_to_date=frozenset(ALL),
    ),
    Case(
        "a task removed from Git is listed as removed",
        repo(),
        repo(DEPLOY.replace("  - id: docs\n    run: make docs\n", "")),
        {},
        removed=("docs",),
        up_to_date=frozenset({"build", "test", "deploy"}),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_outstanding_tasks_and_reasons(case: Case) -> None:
    """Each row: exactly the expected tasks are outstanding, for the expected reasons."""
    applied = {} if case.applied is None else applied_of(desired_of(case.applied))
    desired = desired_of(case.desired)
    result = plan(desired, Executed(applied=applied), now=1_700_000_000.0)
    wp = result.workflow("deploy")
    assert wp is not None
    assert reasons(result) == case.outstanding
    assert set(wp.up_to_date) == case.up_to_date
    assert wp.removed == case.removed
    assert wp.startable == bool(case.outstanding)
    assert result.has_changes == bool(case.outstanding or case.removed)
    assert result.outstanding_count == len(case.outstanding)


def test_outstanding_change_carries_new_and_previous_fingerprints() -> None:
    """A changed task records the desired fingerprint and the one applied before it."""
    old = desired_of(repo())
    new = desired_of(repo(DEPLOY.replace("make test", "make test-all")))
    wp = plan(new, Executed(applied=applied_of(old)), now=0.0).workflow("deploy")
    assert wp is not None
    (test, deploy) = wp.outstanding
    assert test.id == "test"
    assert test.fingerprint == new.fingerprints["deploy"]["test"].fingerprint
    assert test.previous == old.fingerprints["deploy"]["test"].fingerprint
    assert deploy.previous == old.fingerprints["deploy"]["deploy"].fingerprint
    assert test.fingerprint != test.previous


def test_new_tasks_have_no_previous_fingerprint() -> None:
    """A task never applied has ``previous`` None."""
    wp = plan(desired_of(repo()), Executed(), now=0.0).workflow("deploy")
    assert wp is not None
    assert [c.previous for c in wp.outstanding] == [None] * 4


def test_outstanding_keeps_the_file_order_of_tasks() -> None:
    """Outstanding tasks are listed in the order the workflow file declares them."""
    wp = plan(desired_of(repo()), Executed(), now=0.0).workflow("deploy")
    assert wp is not None
    assert [c.id for c in wp.outstanding] == list(ALL)
    assert wp.file == WF_FILE


def test_removed_workflow_is_listed_with_its_tasks() -> None:
    """A workflow gone from Git appears in ``removed_workflows`` with its applied tasks."""
    other = "name: other\ntasks:\n  - id: b\n    run: 'true'\n  - id: a\n    run: 'true'\n"
    before = desired_of(repo(extra={"workflows/other.yaml": other}))
    after = desired_of(repo())
    result = plan(after, Executed(applied=applied_of(before)), now=0.0)
    assert result.removed_workflows == (("other", ("a", "b")),)
    assert result.workflow("other") is None
    assert result.outstanding_count == 0
    assert result.has_changes


def test_remaining_workflow_with_nothing_to_do_has_no_changes() -> None:
    """Applied == desired across every workflow: no changes at all."""
    desired = desired_of(repo())
    result = plan(desired, Executed(applied=applied_of(desired)), now=0.0)
    assert result.removed_workflows == ()
    assert not result.has_changes


# -- failures block the workflow -----------------------------------------------------------

CHANGED = repo(DEPLOY.replace("make test", "make test-all"))


@pytest.mark.parametrize(
    ("retry_failed", "failed_at", "blocked"),
    [
        (False, "desired", True),
        (True, "desired", False),
        (False, "older", False),
        (True, "older", False),
    ],
    ids=[
        "failed fingerprint blocks",
        "retry_failed lets it run again",
        "a new fingerprint unblocks",
        "a new fingerprint with retry_failed",
    ],
)
def test_failed_fingerprint_blocks_the_workflow(
    retry_failed: bool, failed_at: str, blocked: bool
) -> None:
    """A failed fingerprint blocks a new run unless retry_failed or the task changed since."""
    prefix = "retry_failed: true\n" if retry_failed else ""
    applied = applied_of(desired_of(repo()))
    failing = desired_of(repo(prefix + CHANGED[WF_FILE]))
    desired = (
        failing
        if failed_at == "desired"
        else desired_of(repo(prefix + DEPLOY.replace("make test", "make test-v2")))
    )
    failure = Failure(failing.fingerprints["deploy"]["test"].fingerprint, run_id=12)
    executed = Executed(applied=applied, failed={("deploy", "test"): failure})
    wp = plan(desired, executed, now=0.0).workflow("deploy")
    assert wp is not None
    assert {c.id for c in wp.outstanding} == {"test", "deploy"}
    assert wp.blocked_by == (failure if blocked else None)
    assert wp.blocked_task == ("test" if blocked else None)
    assert wp.startable is not blocked


def test_failure_of_an_up_to_date_task_does_not_block() -> None:
    """A stale failure record for a task that is now applied at its desired fingerprint is moot."""
    desired = desired_of(repo())
    fp = desired.fingerprints["deploy"]["test"].fingerprint
    executed = Executed(
        applied=applied_of(desired), failed={("deploy", "test"): Failure(fp, run_id=3)}
    )
    wp = plan(desired, executed, now=0.0).workflow("deploy")
    assert wp is not None
    assert wp.outstanding == () and wp.blocked_by is None


# -- active runs and approvals -------------------------------------------------------------


def test_active_run_is_reported_and_not_startable() -> None:
    """With a run in progress the plan names it and does not start another."""
    wp = plan(desired_of(repo()), Executed(active_runs={"deploy": 7}), now=0.0).workflow("deploy")
    assert wp is not None
    assert wp.active_run == 7
    assert len(wp.outstanding) == 4
    assert not wp.startable


def test_other_workflows_active_run_does_not_matter() -> None:
    """An active run of another workflow leaves this one startable."""
    wp = plan(desired_of(repo()), Executed(active_runs={"other": 7}), now=0.0).workflow("deploy")
    assert wp is not None
    assert wp.active_run is None and wp.startable


def test_tasks_with_approval_are_marked() -> None:
    """Only tasks that declare ``approval`` are marked needs_approval."""
    text = DEPLOY.replace(
        "    run: make deploy\n",
        "    run: make deploy\n    approval: {approvers: ['@sre']}\n",
    )
    wp = plan(desired_of(repo(text)), Executed(), now=0.0).workflow("deploy")
    assert wp is not None
    assert {c.id: c.needs_approval for c in wp.outstanding} == {
        "build": False,
        "test": False,
        "deploy": True,
        "docs": False,
    }


# -- schedules -----------------------------------------------------------------------------


def ts(text: str) -> float:
    """Unix time of an ISO timestamp in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("schedule", "now", "after", "expected"),
    [
        ("0 * * * *", "2024-01-01T12:30:00", "2024-01-01T11:30:00", "2024-01-01T12:00:00"),
        ("0 * * * *", "2024-01-01T12:30:00", "2024-01-01T12:00:00", None),
        ("0 * * * *", "2024-01-01T12:30:00", "2024-01-01T12:10:00", None),
        ("0 * * * *", "2024-01-01T12:00:00", "2024-01-01T11:30:00", "2024-01-01T12:00:00"),
        ("0 * * * *", "2024-01-01T11:59:59", "2024-01-01T11:30:00", None),
        ("0 3 * * *", "2024-01-05T12:00:00", "2024-01-01T00:00:00", "2024-01-05T03:00:00"),
        ("*/15 * * * *", "2024-01-01T12:44:00", "2024-01-01T09:00:00", "2024-01-01T12:30:00"),
        ("* * * * * 30", "2024-01-01T12:07:30", "2024-01-01T12:06:30", "2024-01-01T12:07:30"),
    ],
    ids=[
        "missed slot is due",
        "slot already run",
        "slot before first_seen or last_slot",
        "exactly on the slot",
        "one second before the slot",
        "days of downtime: latest slot only",
        "many missed slots: latest only",
        "seconds field: exactly on the slot",
    ],
)
def test_due_slot(schedule: str, now: str, after: str, expected: str | None) -> None:
    """The latest slot in (after, now] is due; earlier missed slots are not replayed."""
    got = due_slot(schedule, ts(now), ts(after))
    assert got == (None if expected is None else ts(expected))


@settings(max_examples=50, deadline=None)
@given(
    schedule=st.sampled_from(
        ["0 * * * *", "*/7 * * * *", "30 2 * * 1", "* * * * * 15", "0 0 1 * *"]
    ),
    now=st.integers(min_value=1_600_000_000, max_value=1_900_000_000),
    fraction=st.sampled_from([0.0, 0.25, 0.999]),
)
def test_due_slot_is_the_latest_slot_at_or_before_now(
    schedule: str, now: int, fraction: float
) -> None:
    """With a long gap, the due slot matches the cron, is <= now, and no later slot is <= now."""
    at = now + fraction
    slot = due_slot(schedule, at, after=at - 40 * 86400)
    assert slot is not None and slot <= at
    assert croniter.match(schedule, datetime.fromtimestamp(slot, tz=UTC))
    following = croniter(schedule, datetime.fromtimestamp(slot, tz=UTC)).get_next(float)
    assert following > at
    assert due_slot(schedule, at, after=slot) is None


NIGHTLY = "name: nightly\nschedule: '0 3 * * *'\ntasks:\n  - id: a\n    run: 'true'\n" + (
    "  - id: b\n    needs: [a]\n    run: 'true'\n"
)
NOW = ts("2024-01-10T12:00:00")
SLOT = ts("2024-01-10T03:00:00")


@pytest.mark.parametrize(
    ("first_seen", "last_slot", "slot"),
    [
        (None, None, None),
        ("2024-01-10T04:00:00", None, None),
        ("2024-01-10T03:00:00", None, None),
        ("2024-01-09T12:00:00", None, SLOT),
        ("2024-01-01T00:00:00", "2024-01-02T03:00:00", SLOT),
        ("2024-01-01T00:00:00", "2024-01-10T03:00:00", None),
        ("2024-01-01T00:00:00", "2024-01-11T03:00:00", None),
    ],
    ids=[
        "never seen before: not due",
        "first seen after the slot: not due",
        "first seen exactly at the slot: not due",
        "first seen before the slot: due",
        "days of downtime: one run for the latest slot",
        "latest slot already run",
        "last slot ahead of now (clock skew)",
    ],
)
def test_schedule_in_plan(
    first_seen: str | None, last_slot: str | None, slot: float | None
) -> None:
    """An up-to-date scheduled workflow is outstanding (``scheduled``) only when a slot is due."""
    desired = desired_of({"workflows/nightly.yaml": NIGHTLY})
    executed = Executed(
        applied=applied_of(desired),
        first_seen={} if first_seen is None else {"nightly": ts(first_seen)},
        last_slot={} if last_slot is None else {"nightly": ts(last_slot)},
    )
    wp = plan(desired, executed, now=NOW).workflow("nightly")
    assert wp is not None
    assert wp.slot == slot
    expected = {} if slot is None else {"a": Reason.SCHEDULED, "b": Reason.SCHEDULED}
    assert {c.id: c.reason for c in wp.outstanding} == expected
    assert wp.startable == (slot is not None)


def test_scheduled_run_keeps_the_stronger_reason_of_a_changed_task() -> None:
    """When a slot is due, a changed task says ``changed``; the others say ``scheduled``."""
    old = desired_of({"workflows/nightly.yaml": NIGHTLY})
    new = desired_of(
        {
            "workflows/nightly.yaml": NIGHTLY.replace(
                "  - id: a\n    run: 'true'", "  - id: a\n    run: 'false'"
            )
        }
    )
    executed = Executed(
        applied=applied_of(old),
        first_seen={"nightly": ts("2024-01-01T00:00:00")},
    )
    wp = plan(new, executed, now=NOW).workflow("nightly")
    assert wp is not None
    assert {c.id: c.reason for c in wp.outstanding} == {
        "a": Reason.CHANGED,
        "b": Reason.UPSTREAM_CHANGED,
    }
    assert wp.slot == SLOT


def test_scheduled_rerun_is_not_blocked_by_an_old_failure() -> None:
    """A failure at the applied fingerprint does not stop the next scheduled slot."""
    desired = desired_of({"workflows/nightly.yaml": NIGHTLY})
    fp = desired.fingerprints["nightly"]["a"].fingerprint
    executed = Executed(
        applied=applied_of(desired),
        failed={("nightly", "a"): Failure(fp, 4)},
        first_seen={"nightly": ts("2024-01-01T00:00:00")},
    )
    wp = plan(desired, executed, now=NOW).workflow("nightly")
    assert wp is not None
    assert wp.blocked_by is None and wp.startable


# -- purity --------------------------------------------------------------------------------


def test_plan_is_pure() -> None:
    """Same inputs give equal plans, and neither desired nor executed is modified."""
    desired = desired_of(CHANGED)
    executed = Executed(
        applied=applied_of(desired_of(repo())),
        failed={("deploy", "docs"): Failure("x", 1)},
        active_runs={"deploy": 3},
        first_seen={"deploy": 5.0},
    )
    desired_before = copy.deepcopy(desired)
    executed_before = copy.deepcopy(executed)
    first = plan(desired, executed, now=1000.0)
    second = plan(desired, executed, now=1000.0)
    assert first == second
    assert desired == desired_before
    assert executed == executed_before
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.revision = "other"  # type: ignore[misc]


# -- properties over random DAGs -----------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> list[list[int]]:
    """``needs[i]``: indices (all < i) task i depends on — always acyclic."""
    n = draw(st.integers(min_value=1, max_value=8))
    return [sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(n)]


def dag_files(needs: list[list[int]], commands: Mapping[int, str] | None = None) -> dict[str, str]:
    """A workflow for the DAG (as JSON, which YAML reads), one input file per third task."""
    commands = commands or {}
    tasks = []
    for i, deps in enumerate(needs):
        task: dict[str, object] = {"id": f"t{i}", "run": commands.get(i, f"echo {i}")}
        if deps:
            task["needs"] = [f"t{d}" for d in deps]
        if i % 3 == 0:
            task["inputs"] = [f"data/{i}.txt"]
        tasks.append(task)
    files = {"workflows/dag.yaml": json.dumps({"name": "dag", "tasks": tasks})}
    files.update({f"data/{i}.txt": f"data {i}" for i in range(0, len(needs), 3)})
    return files


def descendants(needs: list[list[int]], root: int) -> set[int]:
    found: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, deps in enumerate(needs):
            if i not in found and any(d == root or d in found for d in deps):
                found.add(i)
                changed = True
    return found


@settings(max_examples=50, deadline=None)
@given(
    old=dags(),
    new=dags(),
    applied_fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_applying_every_outstanding_task_leaves_an_empty_plan(
    old: list[list[int]], new: list[list[int]], applied_fraction: float
) -> None:
    """After applying what the plan lists (and forgetting what it removed) nothing is left."""
    before = desired_of(dag_files(old))
    applied = applied_of(before)
    keep = int(len(applied) * applied_fraction)
    applied = dict(sorted(applied.items())[:keep])
    desired = desired_of(dag_files(new, {0: "echo new"}))
    first = plan(desired, Executed(applied=applied), now=0.0)
    wp = first.workflow("dag")
    assert wp is not None
    assert {c.id for c in wp.outstanding} | set(wp.up_to_date) == {f"t{i}" for i in range(len(new))}
    fps = desired.fingerprints["dag"]
    for change in wp.outstanding:
        fp = fps[change.id]
        applied[("dag", change.id)] = Applied(fp.fingerprint, fp.spec_hash, fp.inputs_hash)
    for task in wp.removed:
        del applied[("dag", task)]
    second = plan(desired, Executed(applied=applied), now=0.0)
    assert not second.has_changes
    again = second.workflow("dag")
    assert again is not None
    assert again.outstanding == () and again.removed == ()


@settings(max_examples=50, deadline=None)
@given(needs=dags(), data=st.data())
def test_changing_one_task_marks_it_and_its_descendants(
    needs: list[list[int]], data: st.DataObject
) -> None:
    """Mutating one task's command makes exactly it (changed) and its descendants outstanding."""
    target = data.draw(st.integers(0, len(needs) - 1), label="target")
    before = desired_of(dag_files(needs))
    after = desired_of(dag_files(needs, {target: f"echo {target} edited"}))
    wp = plan(after, Executed(applied=applied_of(before)), now=0.0).workflow("dag")
    assert wp is not None
    expected = {f"t{target}": Reason.CHANGED} | {
        f"t{i}": Reason.UPSTREAM_CHANGED for i in descendants(needs, target)
    }
    assert {c.id: c.reason for c in wp.outstanding} == expected
    assert set(wp.up_to_date) == {f"t{i}" for i in range(len(needs))} - set(expected)
