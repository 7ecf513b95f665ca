"""Property tests of loading and fingerprinting: valid stays valid, formatting never matters."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from podium.fingerprint import TaskFingerprint, fingerprint_workflow
from podium.source.memory import MemorySnapshot
from podium.spec.loader import DesiredState, load_snapshot

WF = "workflows/generated.yaml"

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

IDS = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
ENV_NAMES = st.from_regex(r"[A-Z_][A-Z0-9_]{0,7}", fullmatch=True)
# printable text without line breaks, including YAML's special characters (: # - { [ ' " &)
TEXT = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x85"),
    min_size=1,
    max_size=24,
).filter(lambda s: s.strip() != "")
ENV_VALUES = st.one_of(
    TEXT,
    st.integers(min_value=-(10**6), max_value=10**6),
    ENV_NAMES.map(lambda n: {"secret": n}),
)


@st.composite
def task_kinds(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["run", "run", "http", "python"]))
    if kind == "run":
        return kind, draw(TEXT)
    if kind == "http":
        path = draw(st.from_regex(r"[a-z0-9/_-]{0,12}", fullmatch=True))
        method = draw(st.sampled_from(["GET", "POST", "PUT"]))
        return kind, {"url": f"https://example.com/{path}", "method": method}
    module = draw(
        st.from_regex(r"[a-z_][a-z0-9_]{0,6}(\.[a-z_][a-z0-9_]{0,6}){0,2}", fullmatch=True)
    )
    function = draw(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True))
    return kind, f"{module}:{function}"


@st.composite
def workflows(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str]]:
    """A valid workflow (random DAG, kinds, env, params, inputs) and the repo files it reads."""
    ids = draw(st.lists(IDS, min_size=1, max_size=7, unique=True))
    files: dict[str, str] = {}
    tasks: list[dict[str, Any]] = []
    for index, tid in enumerate(ids):
        kind, config = draw(task_kinds())
        task: dict[str, Any] = {"id": tid, kind: config}
        if index:
            needs = draw(st.lists(st.sampled_from(ids[:index]), unique=True, max_size=3))
            if needs:
                task["needs"] = needs
        env = draw(st.dictionaries(ENV_NAMES, ENV_VALUES, max_size=3))
        if env:
            task["env"] = env
        if draw(st.booleans()):
            files[f"inputs/{tid}.txt"] = draw(TEXT)
            task["inputs"] = [draw(st.sampled_from([f"inputs/{tid}.txt", f"inputs/{tid}.*"]))]
        tasks.append(task)
    order = draw(st.permutations(list(range(len(tasks)))))
    data: dict[str, Any] = {"name": draw(IDS), "tasks": [tasks[i] for i in order]}
    params = draw(st.dictionaries(ENV_NAMES, TEXT, max_size=2))
    if params:
        data["params"] = params
    files["README.md"] = "a file no task reads\n"
    return data, files


def block(data: Any, indent: int = 2) -> str:
    return yaml.safe_dump(
        data,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10**9,
        indent=indent,
    )


def flow(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=True, width=10**9)


def as_json(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False)


def shuffled(data: Any, rnd: random.Random) -> Any:
    """The same data with every mapping's keys in another order."""
    if isinstance(data, dict):
        keys = list(data)
        rnd.shuffle(keys)
        return {k: shuffled(data[k], rnd) for k in keys}
    if isinstance(data, list):
        return [shuffled(item, rnd) for item in data]
    return data


def commented(text: str, rnd: random.Random) -> str:
    """Block YAML with comment lines, trailing comments and blank lines sprinkled in."""
    out = ["# generated workflow", ""]
    for line in text.splitlines():
        if rnd.random() < 0.3:
            out.append(" " * rnd.randint(0, 6) + "# a comment: with [yaml] {chars}")
        if rnd.random() < 0.2:
            out.append("")
        out.append(line + (" # trailing" if rnd.random() < 0.4 else ""))
    return "\n".join(out) + "\n"


def load_text(text: str, files: dict[str, str]) -> DesiredState:
    return load_snapshot(MemorySnapshot({**files, WF: text}))


def fingerprints(text: str, files: dict[str, str]) -> dict[str, TaskFingerprint]:
    state = load_text(text, files)
    assert state.problems == (), [str(p) for p in state.problems]
    (wf,) = state.workflows.values()
    return fingerprint_workflow(wf)


def fps(text: str, files: dict[str, str]) -> dict[str, str]:
    return {tid: fp.fingerprint for tid, fp in fingerprints(text, files).items()}


def descendants(data: dict[str, Any], tid: str) -> set[str]:
    """``tid`` and every task that needs it, directly or through others."""
    found = {tid}
    changed = True
    while changed:
        changed = False
        for task in data["tasks"]:
            if task["id"] not in found and found & set(task.get("needs", [])):
                found.add(task["id"])
                changed = True
    return found


def kind_of(task: dict[str, Any]) -> str:
    return next(k for k in ("run", "http", "python") if k in task)


@SETTINGS
@given(workflows())
def test_generated_workflows_validate_and_fingerprint(generated: Any) -> None:
    """Any generated valid workflow loads as written and gets one stable hash per task."""
    data, files = generated
    state = load_text(block(data), files)
    assert state.problems == (), [str(p) for p in state.problems]
    wf = state.workflows[data["name"]]
    loaded = {t.id: t for t in wf.spec.tasks}  # type: ignore[attr-defined]
    assert list(loaded) == [t["id"] for t in data["tasks"]]
    for task in data["tasks"]:
        got = loaded[task["id"]]
        kind = kind_of(task)
        assert got.kind == kind
        if kind == "http":
            assert got.config.url == task["http"]["url"]
        else:
            assert got.config == task[kind]
        assert got.needs == task.get("needs", [])
        for name, value in task.get("env", {}).items():
            if isinstance(value, dict):
                assert got.env[name].secret == value["secret"]
            else:
                assert got.env[name] == str(value)
        if "inputs" in task:
            assert list(wf.inputs[task["id"]]) == [f"inputs/{task['id']}.txt"]
    first = fingerprint_workflow(wf)
    assert set(first) == set(loaded)
    assert all(re.fullmatch(r"[0-9a-f]{64}", fp.fingerprint) for fp in first.values())
    assert fingerprint_workflow(wf) == first


@SETTINGS
@given(workflows(), st.randoms(use_true_random=False), st.sampled_from([2, 4]))
def test_formatting_never_changes_fingerprints(
    generated: Any, rnd: random.Random, indent: int
) -> None:
    """Key order, flow vs block style, JSON, indentation and comments give identical hashes."""
    data, files = generated
    reference = fps(block(data), files)
    variants = {
        "flow": flow(data),
        "json": as_json(data),
        "reordered": block(shuffled(data, rnd), indent),
        "commented": commented(block(shuffled(data, rnd), indent), rnd),
        "reordered flow": flow(shuffled(data, rnd)),
    }
    for name, text in variants.items():
        assert fps(text, files) == reference, f"{name} variant:\n{text}"


def _changed_command(task: dict[str, Any]) -> dict[str, Any]:
    kind = kind_of(task)
    config = task[kind]
    if kind == "run":
        new: Any = config + " --again"
    elif kind == "http":
        new = {**config, "url": config["url"] + "v2"}
    else:
        new = config + "2"
    return {**task, kind: new}


@SETTINGS
@given(workflows(), st.data())
def test_changing_a_command_changes_exactly_that_task_and_its_descendants(
    generated: Any, data_: st.DataObject
) -> None:
    """Editing one task's command re-fingerprints it and everything downstream, nothing else."""
    data, files = generated
    before = fps(block(data), files)
    index = data_.draw(st.integers(0, len(data["tasks"]) - 1), label="task")
    target = data["tasks"][index]["id"]
    edited = {
        **data,
        "tasks": [_changed_command(t) if i == index else t for i, t in enumerate(data["tasks"])],
    }
    after = fps(block(edited), files)
    changed = {tid for tid in before if before[tid] != after[tid]}
    assert changed == descendants(data, target)


@SETTINGS
@given(workflows(), st.data())
def test_changing_an_input_file_changes_that_task_and_its_descendants(
    generated: Any, data_: st.DataObject
) -> None:
    """Editing a file a task declares in inputs re-fingerprints it and its descendants only."""
    data, files = generated
    readers = [t["id"] for t in data["tasks"] if "inputs" in t]
    text = block(data)
    before = fps(text, files)
    # a file nobody reads changes nothing
    assert fps(text, {**files, "README.md": "edited\n"}) == before
    if not readers:
        return
    target = data_.draw(st.sampled_from(readers), label="reader")
    path = f"inputs/{target}.txt"
    after = fps(text, {**files, path: files[path] + " (edited)"})
    changed = {tid for tid in before if before[tid] != after[tid]}
    assert changed == descendants(data, target)


def test_fingerprint_sees_params_secret_names_and_upstream() -> None:
    """Params and secret names are part of every hash; upstream hashes flow down."""
    base = {
        "name": "w",
        "params": {"P": "1"},
        "tasks": [
            {"id": "a", "run": "x", "env": {"T": {"secret": "TOKEN"}}},
            {"id": "b", "run": "y", "needs": ["a"]},
            {"id": "c", "run": "z"},
        ],
    }
    before = fps(block(base), {})
    param = fps(block({**base, "params": {"P": "2"}}), {})
    assert all(before[t] != param[t] for t in before)
    renamed = json.loads(json.dumps(base))
    renamed["tasks"][0]["env"]["T"]["secret"] = "OTHER_TOKEN"
    after = fps(block(renamed), {})
    assert {t for t in before if before[t] != after[t]} == {"a", "b"}
    upstream = dict(fingerprints(block(base), {})["b"].upstream)
    assert upstream == {"a": before["a"]}


# -- garbage in, problems out -------------------------------------------------------------

YAML_TOKENS = st.sampled_from(
    [
        "name: w",
        "tasks:",
        "- id: a",
        "  run: x",
        "needs: [a, b]",
        "inputs: ['**']",
        "timeout: 5m",
        "retries: {count: 1}",
        "&a ",
        "*a",
        "<<: *a",
        "!!str ",
        "!!python/name:os.system",
        "? ",
        ": ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "|",
        ">",
        "#",
        "%YAML 1.2",
        "---",
        "...",
        "\t",
        "  ",
        "\n",
        "\x00",
        "\ufeff",
        "on: yes",
        "http: {url: 1}",
        "env: {A: {secret: 1}}",
        "workdir: ../x",
        "schedule: '* *'",
    ]
)

VALID = block(
    {
        "name": "w",
        "tasks": [
            {"id": "a", "run": "make", "inputs": ["src/*"], "timeout": "5m"},
            {"id": "b", "needs": ["a"], "http": {"url": "https://example.com"}, "retries": 2},
        ],
    }
)


@st.composite
def mutated_valid(draw: st.DrawFn) -> str:
    """A valid workflow with a few random deletions, insertions and token splices."""
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "token"]))
        if op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 8)) :]
        elif op == "insert":
            text = text[:pos] + draw(st.text(max_size=4)) + text[pos:]
        else:
            text = text[:pos] + draw(YAML_TOKENS) + text[pos:]
    return text


GARBAGE = st.one_of(
    st.text(max_size=200),
    st.lists(YAML_TOKENS, max_size=30).map("".join),
    st.lists(YAML_TOKENS, max_size=30).map("\n".join),
    mutated_valid(),
    st.binary(max_size=200),
)


@SETTINGS
@given(GARBAGE)
@example("[" * 5000)
@example("a:\n" + "".join("  " * i + "- b:\n" for i in range(1, 400)))
@example("a: &a [*a, *a]\n")
@example(b"\xff\xfe\x00garbage")
@example("name: w\ntasks:\n  - id: a\n    run: x\n    inputs: ['[]]']\n")
def test_garbage_never_raises(garbage: str | bytes) -> None:
    """Whatever the file holds, loading returns problems (one line each) instead of raising."""
    state = load_snapshot(MemorySnapshot({WF: garbage, "src/main.c": "int main;\n"}))
    text = garbage.decode("utf-8", "replace") if isinstance(garbage, bytes) else garbage
    last_line = max(1, len(text.splitlines()))
    if WF not in state.files:
        assert WF in state.invalid_files
        assert [p for p in state.problems if p.file == WF], "rejected without a problem"
    else:
        assert state.problems == ()
    for problem in state.problems:
        assert problem.file == WF
        assert 1 <= problem.line <= last_line, str(problem)
        assert problem.message.strip() and "\n" not in problem.message, repr(problem.message)
    assert list(state.problems) == sorted(state.problems)
