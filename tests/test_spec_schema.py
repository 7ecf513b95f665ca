"""`podium schema` and `podium validate`, run as the real console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium.spec.yamlio import parse_yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples-repo"
PODIUM = Path(sys.executable).parent / "podium"

WORKFLOW_KEYS = {"name", "description", "on_failure", "concurrency", "schedule", "params", "tasks"}
TASK_KEYS = {
    "id",
    "run",
    "http",
    "python",
    "needs",
    "inputs",
    "env",
    "timeout",
    "retries",
    "rollback",
    "idempotent",
    "approval",
    "workdir",
}


def podium(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``podium`` command with no PODIUM_* settings from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    return subprocess.run(
        [str(PODIUM), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = podium("schema")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


# -- a small JSON Schema checker (the jsonschema package is not a dependency) -------------

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_errors(
    value: Any, node: dict[str, Any], root: dict[str, Any], at: str = ""
) -> list[str]:
    """Violations of the keywords pydantic emits ($ref, anyOf, type, properties, ...)."""
    errors: list[str] = []
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        errors += schema_errors(value, root["$defs"][name], root, at)
    if "anyOf" in node and all(schema_errors(value, s, root, at) for s in node["anyOf"]):
        errors.append(f"{at}: matches none of anyOf")
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{at}: {value!r} not in {node['enum']}")
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [*errors, f"{at}: {value!r} is not {node['type']}"]
    if isinstance(value, dict):
        props = node.get("properties", {})
        errors += [f"{at}: missing {k!r}" for k in node.get("required", []) if k not in value]
        for key, item in value.items():
            if key in props:
                errors += schema_errors(item, props[key], root, f"{at}.{key}")
            elif node.get("additionalProperties") is False:
                errors.append(f"{at}: unknown key {key!r}")
            elif isinstance(node.get("additionalProperties"), dict):
                errors += schema_errors(item, node["additionalProperties"], root, f"{at}.{key}")
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0):
            errors.append(f"{at}: fewer than {node['minItems']} items")
        if "items" in node:
            for i, item in enumerate(value):
                errors += schema_errors(item, node["items"], root, f"{at}[{i}]")
    if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
        errors.append(f"{at}: {value!r} does not match {node['pattern']}")
    if _TYPES["number"](value):
        if "minimum" in node and value < node["minimum"]:
            errors.append(f"{at}: {value} < {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            errors.append(f"{at}: {value} > {node['maximum']}")
    return errors


def check(instance: Any, schema: dict[str, Any]) -> list[str]:
    return schema_errors(instance, schema, schema)


# -- podium schema --------------------------------------------------------------------


def test_schema_is_a_json_schema_with_the_contract_keys(schema: dict[str, Any]) -> None:
    """`podium schema` prints a JSON Schema naming every workflow and task key."""
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    assert set(schema["properties"]) >= WORKFLOW_KEYS
    assert set(schema["required"]) == {"name", "tasks"}
    task = schema["$defs"]["Task"]
    assert task["type"] == "object"
    assert set(task["properties"]) >= TASK_KEYS
    assert task["required"] == ["id"]
    assert schema["properties"]["tasks"]["items"] == {"$ref": "#/$defs/Task"}
    assert schema["$defs"]["OnFailure"]["enum"] == ["rollback", "stop", "continue"]
    assert {"approvers", "timeout", "on_timeout"} <= set(
        schema["$defs"]["ApprovalSpec"]["properties"]
    )
    assert {"count", "delay", "backoff", "max_delay"} <= set(
        schema["$defs"]["RetryPolicy"]["properties"]
    )


def test_schema_refuses_unknown_keys(schema: dict[str, Any]) -> None:
    """Workflow, task and nested definitions set additionalProperties: false."""
    assert schema["additionalProperties"] is False
    for name in ("Task", "ApprovalSpec", "RetryPolicy", "HttpSpec", "SecretRef"):
        assert schema["$defs"][name]["additionalProperties"] is False, name
    good = {"name": "w", "tasks": [{"id": "a", "run": "x"}]}
    assert check(good, schema) == []
    assert check({**good, "colour": "blue"}, schema) == [": unknown key 'colour'"]
    bad_task = {"name": "w", "tasks": [{"id": "a", "run": "x", "comand": "y"}]}
    assert check(bad_task, schema) == [".tasks[0]: unknown key 'comand'"]


def test_schema_accepts_the_short_forms_files_use(schema: dict[str, Any]) -> None:
    """Durations as text, ``retries: 2``, numeric env values and secret refs fit the schema."""
    workflow = {
        "name": "w",
        "params": {"COUNT": 3, "FLAG": True},
        "tasks": [
            {
                "id": "a",
                "run": "x",
                "timeout": "1h30m",
                "retries": 2,
                "env": {"N": 1, "TOKEN": {"secret": "TOKEN"}},
                "approval": {"approvers": ["@sre"], "timeout": "4h"},
            },
            {
                "id": "b",
                "http": {"url": "https://example.com"},
                "timeout": 90,
                "retries": {"count": 2, "delay": "5s", "max_delay": "1m"},
            },
        ],
    }
    assert check(workflow, schema) == []
    assert check({**workflow, "concurrency": "lots"}, schema) != []


def test_every_example_workflow_conforms_to_the_schema(schema: dict[str, Any]) -> None:
    """An editor using the schema accepts every workflow shipped in examples-repo."""
    files = sorted((EXAMPLES / "workflows").glob("*.yaml"))
    assert len(files) == 3
    for path in files:
        parsed = parse_yaml(path.read_text())
        assert parsed.problems == []
        assert check(parsed.data, schema) == [], path.name


def test_config_schema_describes_podium_yaml() -> None:
    """`podium schema --config` is the schema of podium.yaml and fits the example's."""
    result = podium("schema", "--config")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert {"workflows_dir", "defaults"} <= set(config["properties"])
    assert config["additionalProperties"] is False
    assert check(parse_yaml((EXAMPLES / "podium.yaml").read_text()).data, config) == []
    assert check({"workflow_dir": "x"}, config) == [": unknown key 'workflow_dir'"]


# -- podium validate -------------------------------------------------------------------


def test_validate_examples_repo() -> None:
    """`podium validate examples-repo` exits 0 and says all three workflows are valid."""
    result = podium("validate", str(EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "3 workflow(s) valid"


def test_validate_reports_file_line_message_and_exits_1(tmp_path: Path) -> None:
    """A directory with invalid files exits 1 and prints one ``file:line: message`` per problem."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "good.yaml").write_text("name: good\ntasks: [{id: a, run: x}]\n")
    (tmp_path / "workflows" / "bad.yaml").write_text(
        "name: bad\n"
        "tasks:\n"
        "  - id: a\n"
        "    run: x\n"
        "    timeout: soon\n"
        "  - id: b\n"
        "    run: y\n"
        "    needs: [c]\n"
    )
    (tmp_path / "workflows" / "broken.yml").write_text("name: [oops\n")

    result = podium("validate", str(tmp_path))

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "workflows/bad.yaml:5: tasks[0].timeout: not a duration: 'soon' (use e.g. 30s, 10m, 1h30m)",
        "workflows/bad.yaml:8: task 'b' needs unknown task 'c'",
        "workflows/broken.yml:1: YAML syntax error: expected ',' or ']', but got '<stream end>'",
    ]
    for line in lines:
        assert re.fullmatch(r"workflows/[\w.]+:\d+: \S.*", line)
    assert "3 problem(s) found" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_json_output(tmp_path: Path) -> None:
    """`podium validate --json` gives the same verdict as data."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "w.yaml").write_text("name: w\nbogus: 1\ntasks: [{id: a, run: x}]\n")
    result = podium("validate", "--json", str(tmp_path))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["problems"] == [
        {"file": "workflows/w.yaml", "line": 2, "message": "unknown key 'bogus'"}
    ]


def test_validate_invalid_podium_yaml_fails(tmp_path: Path) -> None:
    """A bad podium.yaml alone makes validate exit 1."""
    (tmp_path / "podium.yaml").write_text("defaults:\n  on_failure: explode\n")
    result = podium("validate", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.startswith("podium.yaml:2: defaults.on_failure:")


def test_validate_missing_directory_is_one_line(tmp_path: Path) -> None:
    """A path that does not exist gives a one-line error and exit 1, no traceback."""
    missing = tmp_path / "nope"
    result = podium("validate", str(missing))
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1
    assert result.returncode == 1
    assert str(missing) in err[0] and "no such file or directory" in err[0]
