"""Strict types and did-you-mean hints in workflow files and podium.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium.fingerprint import fingerprint_workflow
from podium.rundef import definition_of, workflow_from
from podium.source.memory import MemorySnapshot
from podium.spec.loader import load_config, load_snapshot
from podium.spec.schema import config_schema, workflow_schema
from tests.test_spec_schema import check

EXAMPLES = Path(__file__).resolve().parents[1] / "examples-repo"
WF = "workflows/wf.yaml"


def problems_of(text: str, **files: str) -> list[str]:
    state = load_snapshot(MemorySnapshot({WF: text, **files}))
    return [str(p) for p in state.problems]


def with_task(**keys: Any) -> dict[str, Any]:
    """A workflow (as data) whose one task has the given keys besides id and run."""
    return {"name": "w", "tasks": [{"id": "a", "run": "x", **keys}]}


# (workflow data, valid?) — one row per lax coercion strict types now refuse, and the
# short forms that stay
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("idempotent as text", with_task(idempotent="yes"), False),
    ("idempotent as a number", with_task(idempotent=1), False),
    ("idempotent", with_task(idempotent=False), True),
    ("concurrency as text", {**with_task(), "concurrency": "4"}, False),
    ("concurrency as a float", {**with_task(), "concurrency": 4.0}, False),
    ("concurrency", {**with_task(), "concurrency": 4}, True),
    ("retry_failed as text", {**with_task(), "retry_failed": "true"}, False),
    ("description as a number", {**with_task(), "description": 5}, False),
    ("retries shorthand", with_task(retries=2), True),
    ("retries as text", with_task(retries="2"), False),
    ("retry count as text", with_task(retries={"count": "2"}), False),
    ("backoff as text", with_task(retries={"count": 1, "backoff": "2"}), False),
    ("backoff as an integer", with_task(retries={"count": 1, "backoff": 2}), True),
    ("duration as text", with_task(timeout="10m"), True),
    ("duration as a number", with_task(timeout=90), True),
    ("duration as a boolean", with_task(timeout=True), False),
    ("env numbers and booleans", with_task(env={"N": 1, "F": True, "X": 1.5}), True),
    ("env list", with_task(env={"N": [1]}), False),
    ("approvers as text", with_task(approval={"approvers": "me"}), False),
    (
        "http expect as text",
        {"name": "w", "tasks": [{"id": "a", "http": {"url": "https://e.x", "expect": ["200"]}}]},
        False,
    ),
    (
        "http follow_redirects as text",
        {
            "name": "w",
            "tasks": [{"id": "a", "http": {"url": "https://e.x", "follow_redirects": "yes"}}],
        },
        False,
    ),
    ("notify on as text", {**with_task(), "notify": {"console": {"on": "failed"}}}, False),
    ("notify on", {**with_task(), "notify": {"console": {"on": ["failed"]}}}, True),
    ("on_failure", {**with_task(), "on_failure": "stop"}, True),
]


@pytest.mark.parametrize(("name", "data", "valid"), CASES, ids=[c[0] for c in CASES])
def test_loader_and_schema_agree_on_types(name: str, data: dict[str, Any], valid: bool) -> None:
    """What `podium schema` accepts is exactly what validates (no lax coercion either way)."""
    problems = problems_of(json.dumps(data))
    assert (problems == []) == valid, problems
    assert (check(data, workflow_schema()) == []) == valid


def test_type_errors_say_what_was_expected_and_what_was_given() -> None:
    """A quoted number or boolean is named as text, with a hint to drop the quotes."""
    text = (
        'name: w\nconcurrency: "4"\ntasks:\n  - id: a\n    run: x\n'
        '    idempotent: "true"\n    retries: {count: 1, backoff: yes}\n'
    )
    assert problems_of(text) == [
        f"{WF}:2: concurrency: expected a whole number, got the text '4' (write it without quotes)",
        f"{WF}:6: tasks[0].idempotent: expected true or false, got the text 'true'"
        " (write it without quotes)",
        f"{WF}:7: tasks[0].retries.backoff: expected a number, got the text 'yes'",
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "name: w\ntasks:\n  - id: a\n    run: x\n    need: [b]\n  - id: b\n    run: y\n",
            5,
            "unknown key 'need' in tasks[0] (did you mean 'needs'?)",
        ),
        (
            "name: w\ntaks: []\ntasks: [{id: a, run: x}]\n",
            2,
            "unknown key 'taks' (did you mean 'tasks'?)",
        ),
        (
            "name: w\ntasks:\n  - id: a\n    rnu: x\n",
            4,
            "unknown key 'rnu' in tasks[0] (did you mean 'run'?)",
        ),
        (
            "name: w\ntasks:\n  - id: a\n    http: {urll: 'https://e.x'}\n",
            4,
            "unknown key 'urll' in tasks[0].http (did you mean 'url'?)",
        ),
        (
            "name: w\ntasks:\n  - id: a\n    run: x\n    retries: {cout: 2}\n",
            5,
            "unknown key 'cout' in tasks[0].retries (did you mean 'count'?)",
        ),
        (
            "name: w\ntasks:\n  - id: build\n    run: x\n  - id: t\n    run: y\n"
            "    needs: [biuld]\n",
            7,
            "task 't' needs unknown task 'biuld' (did you mean 'build'?)",
        ),
        ("name: w\ncolour: blue\ntasks: [{id: a, run: x}]\n", 2, "unknown key 'colour'"),
    ],
)
def test_unknown_names_get_a_did_you_mean_hint(text: str, line: int, message: str) -> None:
    """A misspelt key, kind or task id names the closest valid one; a far-off one does not."""
    problems = problems_of(text)
    matching = [p for p in problems if p.startswith(f"{WF}:{line}: {message}")]
    assert matching, problems
    if "did you mean" not in message:
        assert all("did you mean" not in p for p in problems), problems


def test_rollback_kind_hint() -> None:
    """A misspelt rollback kind suggests the kind meant."""
    problems = problems_of("name: w\ntasks:\n  - id: a\n    run: x\n    rollback: {rnu: undo}\n")
    assert any(p.endswith("(did you mean 'run'?)") for p in problems), problems


def test_podium_yaml_is_strict_and_hints_too() -> None:
    """podium.yaml refuses quoted numbers and suggests the key meant for a misspelt one."""
    snap = MemorySnapshot({"podium.yaml": 'workflow_dir: flows\ndefaults:\n  concurrency: "2"\n'})
    _, problems = load_config(snap)
    assert sorted(str(p) for p in problems) == [
        "podium.yaml:1: unknown key 'workflow_dir' (did you mean 'workflows_dir'?)",
        "podium.yaml:3: defaults.concurrency: expected a whole number, got the text '2'"
        " (write it without quotes)",
    ]


def test_allow_empty_parses_strictly_and_is_documented() -> None:
    """``allow_empty`` is a boolean key of podium.yaml (default false), described in the schema."""
    config, problems = load_config(MemorySnapshot({"podium.yaml": "allow_empty: true\n"}))
    assert problems == [] and config.allow_empty is True
    config, problems = load_config(MemorySnapshot({"podium.yaml": "workflows_dir: w\n"}))
    assert problems == [] and config.allow_empty is False
    _, problems = load_config(MemorySnapshot({"podium.yaml": "allow_empty: 'yes'\n"}))
    assert [str(p) for p in problems] == [
        "podium.yaml:1: allow_empty: expected true or false, got the text 'yes'"
    ]
    described = config_schema()["properties"]["allow_empty"]
    assert described["type"] == "boolean" and described["default"] is False
    assert described["description"] == (
        "allow a revision with no workflows while tasks are applied"
        " (otherwise such a revision is refused)"
    )


def test_stored_definitions_validate_again_under_strict_types() -> None:
    """A run's stored definition (JSON) of every example validates again to the same hashes."""
    files = {
        p.relative_to(EXAMPLES).as_posix(): p.read_bytes()
        for p in EXAMPLES.rglob("*")
        if p.is_file()
    }
    state = load_snapshot(MemorySnapshot(files))
    assert state.problems == () and len(state.workflows) == 3
    for wf in state.workflows.values():
        fps = fingerprint_workflow(wf)
        stored = json.loads(json.dumps(definition_of(wf, fps)))
        again = workflow_from(stored)
        assert again.spec == wf.spec
        assert fingerprint_workflow(again) == fps
