"""Fuzzing the loader with mutated example workflows: only problems come out, never an error."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from podium.fingerprint import fingerprint_workflow
from podium.source.memory import MemorySnapshot
from podium.spec.loader import Problem, load_snapshot, load_workflow
from podium.spec.models import RepoConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples-repo"
FUZZED = "workflows/fuzzed.yaml"
SIBLING = "workflows/sibling.yaml"
SIBLING_TEXT = "name: sibling-zz9\ntasks:\n  - id: only\n    run: make\n    timeout: 5m\n"
LONG_NAME = "data/" + "a" * 40

SEEDS = [
    *(p.read_text() for p in sorted((EXAMPLES / "workflows").glob("*.yaml"))),
    "name: w\ntasks:\n  - id: a\n    run: make\n    inputs: ['data/*']\n"
    "  - id: b\n    needs: [a]\n    http: {url: 'https://example.com', expect: [200]}\n"
    "    retries: {count: 1, delay: 1s}\n    rollback: {run: undo}\n",
]
REPO_FILES = {
    **{
        f"scripts/{p.name}": p.read_text()
        for p in sorted((EXAMPLES / "scripts").iterdir())
        if p.is_file()
    },
    LONG_NAME: "x",
    SIBLING: SIBLING_TEXT,
}

# values that once crashed or hung the loader, and other awkward YAML
NASTY_VALUES = [
    "2020-02-30",
    "!!timestamp nope",
    "!!int abc",
    "1" * 4400,
    "0x" + "f" * 4000,
    "!!bool maybe",
    "1" + "0" * 400,
    "!!float x",
    "!!binary ===",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!python/object:os.system x",
    ".nan",
    "-.inf",
    "'data/*a*a*a*a*a*a*a*a*a*a*c'",
    "['data/*a*a*a*a*a*a*a*a*a*a*c']",
    "[z-a]",
    "'[!]'",
    '"yes"',
    "'4'",
    "yes",
    "~",
    "[]",
    "{}",
    "&x [1, *x]",
    "*nowhere",
    "{<<: {a: 1}}",
    "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]",
    "'" + "x" * 3000 + "'",
    "../../etc/passwd",
    "/abs",
    "10000000d",
    "\t",
]
TOKENS = st.sampled_from(
    [
        "\n",
        ": ",
        "- ",
        "  ",
        "[",
        "]",
        "{",
        "}",
        "#",
        "&a ",
        "*a",
        "!!str ",
        "!!int ",
        "!!bool ",
        "!!timestamp ",
        "needs: [",
        "need: x\n",
        "    inputs: ['data/*a*a*a*a*a*a*a*a*a*a*c']\n",
        "    timeout: 1" + "0" * 400 + "\n",
        "\x00",
        "\ufeff",
    ]
)
_VALUE = re.compile(r"(?m)^(\s*(?:- )?[A-Za-z_]+: )(.+)$")


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """An example workflow with values swapped for nasty ones and its text spliced."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["value", "value", "delete", "insert", "token", "dup"]))
        if op == "value":
            spots = list(_VALUE.finditer(text))
            if spots:
                spot = draw(st.sampled_from(spots))
                value = draw(st.sampled_from(NASTY_VALUES))
                text = text[: spot.start(2)] + value + text[spot.end(2) :]
            continue
        pos = draw(st.integers(0, len(text)))
        if op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 12)) :]
        elif op == "insert":
            text = text[:pos] + draw(st.text(max_size=6)) + text[pos:]
        elif op == "token":
            text = text[:pos] + draw(TOKENS) + text[pos:]
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines.insert(i, lines[i])
            text = "".join(lines)
    return text


def chain(n: int, cycle: bool) -> str:
    body = "".join(
        f"  - id: t{i}\n    run: x\n"
        + (f"    needs: [t{i + 1}]\n" if i + 1 < n else ("    needs: [t0]\n" if cycle else ""))
        for i in range(n)
    )
    return f"name: chain\ntasks:\n{body}"


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
@example(chain(1001, cycle=False))
@example(chain(1001, cycle=True))
@example("name: w\ntasks:\n  - id: a\n    run: x\n    inputs: ['data/*a*a*a*a*a*a*a*a*a*a*c']\n")
@example("name: w\ntasks:\n  - id: a\n    run: x\n    timeout: 1" + "0" * 400 + "\n")
@example("name: w\ndescription: !!timestamp nope\ntasks: [{id: a, run: x}]\n")
def test_mutated_workflows_only_ever_give_problems(text: str) -> None:
    """Whatever a workflow file says, loading returns Problems for it and its sibling loads."""
    state = load_snapshot(MemorySnapshot({**REPO_FILES, FUZZED: text}))
    assert "sibling-zz9" in state.workflows and state.files[SIBLING] == "sibling-zz9"
    last_line = max(1, len(text.splitlines()))
    for problem in state.problems:
        assert isinstance(problem, Problem)
        assert problem.file == FUZZED, str(problem)
        assert 1 <= problem.line <= last_line, str(problem)
        assert problem.message.strip() and "\n" not in problem.message, repr(problem.message)
        assert "file could not be loaded" not in problem.message, str(problem)
    if FUZZED in state.files:
        assert not state.problems
        fingerprint_workflow(state.workflows[state.files[FUZZED]])
    else:
        assert FUZZED in state.invalid_files and state.problems
    workflow, problems = load_workflow(
        MemorySnapshot({**REPO_FILES, FUZZED: text}), FUZZED, RepoConfig()
    )
    assert (workflow is None) == bool(problems)
    assert all(isinstance(p, Problem) for p in problems)
