"""No workflow file can crash or hang the loader: every trigger is a problem of its own file."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.durations import parse_duration
from podium.fingerprint import fingerprint_workflow, topological
from podium.source.memory import MemorySnapshot
from podium.spec import loader
from podium.spec.globs import match, normalize
from podium.spec.loader import DesiredState, Problem, load_config, load_snapshot, load_workflow
from podium.spec.models import RepoConfig

BAD = "workflows/bad.yaml"
GOOD = "workflows/good.yaml"
GOOD_TEXT = "name: good\ntasks:\n  - id: a\n    run: make\n"
LONG_NAME = "data/" + "a" * 40


def task_with(extra: str) -> str:
    """A one-task workflow whose task has the extra (indented) lines."""
    return f"name: bad\ntasks:\n  - id: a\n    run: x\n{extra}"


def chain(n: int, cycle: bool = False) -> str:
    """``n`` tasks, each needing the next (and the last the first when ``cycle``)."""
    lines = ["name: bad", "tasks:"]
    for i in range(n):
        lines += [f"  - id: t{i}", "    run: x"]
        if i + 1 < n:
            lines.append(f"    needs: [t{i + 1}]")
        elif cycle:
            lines.append("    needs: [t0]")
    return "\n".join(lines) + "\n"


def load_beside_good(text: str, **files: str) -> DesiredState:
    """Load ``text`` as workflows/bad.yaml next to a valid workflows/good.yaml."""
    return load_snapshot(MemorySnapshot({BAD: text, GOOD: GOOD_TEXT, **files}))


def bad_problems(state: DesiredState) -> list[str]:
    """The bad file's problems as printed; the good file loaded and has none."""
    assert "good" in state.workflows and state.files.get(GOOD) == "good"
    assert all(p.file == BAD for p in state.problems), [str(p) for p in state.problems]
    return [str(p) for p in state.problems]


TRIGGERS = {
    "impossible date": (task_with("    timeout: 2020-02-30\n"), 5, "not a duration"),
    "timestamp tag": (
        "name: bad\ndescription: !!timestamp nope\ntasks:\n  - id: a\n    run: x\n",
        2,
        "invalid !!timestamp value 'nope'",
    ),
    "int tag": (task_with("    timeout: !!int abc\n"), 5, "invalid !!int value 'abc'"),
    "huge integer": (task_with("    timeout: " + "1" * 4400 + "\n"), 5, "longer than 4300 digits"),
    "huge hex integer": (
        task_with("    timeout: 0x" + "f" * 4000 + "\n"),
        5,
        "longer than 4300 digits",
    ),
    "bool tag": (task_with("    idempotent: !!bool maybe\n"), 5, "invalid !!bool value 'maybe'"),
    "overflowing duration": (
        task_with("    timeout: 1" + "0" * 400 + "\n"),
        5,
        "tasks[0].timeout: duration is too long",
    ),
}


@pytest.mark.parametrize("name", list(TRIGGERS))
def test_each_fuzzing_trigger_is_one_problem_of_its_file(name: str) -> None:
    """A bad scalar is one ``file:line: message`` on its key's line; the sibling file loads."""
    text, line, fragment = TRIGGERS[name]
    problems = bad_problems(load_beside_good(text))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{BAD}:{line}: ") and fragment in problems[0], problems


def test_dates_stay_text_as_in_yaml_1_2() -> None:
    """``2024-01-01`` is text (YAML 1.2 has no implicit dates), so it fits a text field."""
    state = load_beside_good(
        "name: bad\ndescription: 2024-01-01\nparams: {DAY: 2024-02-30}\n"
        "tasks:\n  - id: a\n    run: x\n"
    )
    assert state.problems == ()
    assert state.workflows["bad"].spec.params == {"DAY": "2024-02-30"}


def test_a_thousand_and_one_task_chain_loads_and_fingerprints() -> None:
    """A chain of 1,001 tasks (far deeper than Python's recursion limit) loads and hashes."""
    state = load_beside_good(chain(1001))
    assert state.problems == ()
    wf = state.workflows["bad"]
    order = [t.id for t in topological(list(wf.spec.tasks))]
    assert order == [f"t{i}" for i in reversed(range(1001))]
    fps = fingerprint_workflow(wf)
    assert fps["t0"].upstream == (("t1", fps["t1"].fingerprint),)


def test_a_thousand_and_one_task_cycle_is_named() -> None:
    """A 1,001-task dependency cycle is one problem naming the cycle, not a RecursionError."""
    problems = bad_problems(load_beside_good(chain(1001, cycle=True)))
    assert len(problems) == 1
    assert problems[0].startswith(f"{BAD}:5: dependency cycle: t0 -> t1 -> t2 -> ")
    assert problems[0].endswith("t999 -> t1000 -> t0")


@pytest.mark.timeout(30)
def test_backtracking_glob_matches_in_linear_time() -> None:
    """``*a*a*...c`` against a long run of ``a`` ends at once (it used to take minutes)."""
    stars = "data/*a*a*a*a*a*a*a*a*a*a*c"
    text = task_with(f"    inputs: ['{stars}']\n")
    problems = bad_problems(load_beside_good(text, **{LONG_NAME: "x"}))
    assert problems == [f"{BAD}:5: input '{stars}' of task 'a' matches no file in the repository"]
    many_stars = "*a" * 200 + "*c"
    assert match(many_stars, ["a" * 5000, "a" * 4000 + "c", "a/c"]) == ["a" * 4000 + "c"]


def _reference_glob(pattern: str) -> re.Pattern[str]:
    """The regex the glob syntax used to compile to (the semantics to keep)."""
    out: list[str] = []
    pat = pattern.strip("/")
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append(r"(?:[^/]+/)*")
            i += 3
        elif pat.startswith("**", i):
            out.append(r".*")
            i += 2
        elif pat[i] == "*":
            out.append(r"[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append(r"[^/]")
            i += 1
        elif pat[i] == "[" and pat.find("]", i + 1) != -1:
            end = pat.find("]", i + 1)
            body = pat[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return re.compile("".join(out) + r"(?:/.*)?\Z")


GLOB_PARTS = st.sampled_from(
    ["a", "b", ".", "-", "/", "*", "**", "**/", "?", "[ab]", "[!a]", "[a-b]", "[^b]", "[", "]"]
)
PATHS = st.lists(st.text(alphabet="ab/.-\n", min_size=1, max_size=10).map(normalize), max_size=8)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(GLOB_PARTS, max_size=7).map("".join), PATHS)
def test_glob_semantics_are_unchanged(pattern: str, paths: list[str]) -> None:
    """For any glob with non-empty sets, matches (and refusals) are what the old regexes gave."""
    if "[]" in pattern or "[!]" in pattern:
        return  # an empty set: refused now, an accident of the regex before
    try:
        reference = _reference_glob(normalize(pattern))
    except re.error:
        with pytest.raises(ValueError, match="invalid glob"):
            match(pattern, paths)
        return
    assert match(pattern, paths) == [p for p in paths if reference.match(p)]


def test_documented_glob_forms() -> None:
    """``*`` stays in a segment, ``**/`` spans, ``?``, sets, and a directory matches below."""
    files = ["a/b.sh", "a/c/d.sh", "a/c/e.txt", "b.sh", "x1", "xy"]
    assert match("a/*.sh", files) == ["a/b.sh"]
    assert match("a/**/*.sh", files) == ["a/b.sh", "a/c/d.sh"]
    assert match("**/*.sh", files) == ["a/b.sh", "a/c/d.sh", "b.sh"]
    assert match("a/c", files) == ["a/c/d.sh", "a/c/e.txt"]
    assert match("x?", files) == ["x1", "xy"]
    assert match("x[0-9]", files) == ["x1"]
    assert match("x[!0-9]", files) == ["xy"]
    with pytest.raises(ValueError, match="invalid glob"):
        match("x[z-a]", files)


def test_a_file_over_the_time_budget_is_a_problem_and_the_others_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file that takes longer than the load budget is "took too long", not a hang."""
    monkeypatch.setattr(loader, "LOAD_BUDGET_SECONDS", 1.0)
    files = {f"src/d{i % 50}/f{i}.txt": "" for i in range(20_000)}
    # 2,000 distinct globs over 20,000 files: minutes of matching without a budget
    tasks = "".join(
        f"  - id: t{i}\n    run: x\n    inputs: ['**/*{i}*.txt']\n" for i in range(2000)
    )
    state = load_snapshot(
        MemorySnapshot({BAD: f"name: bad\ntasks:\n{tasks}", GOOD: GOOD_TEXT, **files})
    )
    assert [str(p) for p in state.problems] == [
        f"{BAD}:1: took too long to load (more than 1 s, while matching inputs)"
    ]
    assert "good" in state.workflows and BAD in state.invalid_files


class FailingSnapshot(MemorySnapshot):
    """A snapshot whose storage fails reading one file (as a bad disk would)."""

    def read(self, path: str) -> bytes:
        if path == BAD:
            raise OSError(5, "Input/output error")
        return super().read(path)


def test_anything_unexpected_while_loading_is_a_problem_of_that_file() -> None:
    """An error the checks did not foresee becomes a problem naming its type; others load."""
    state = load_snapshot(FailingSnapshot({BAD: "name: x\n", GOOD: GOOD_TEXT}))
    assert [str(p) for p in state.problems] == [
        f"{BAD}:1: file could not be loaded (OSError: [Errno 5] Input/output error)"
    ]
    assert "good" in state.workflows
    workflow, problems = load_workflow(
        FailingSnapshot({BAD: "name: x\n"}), BAD, RepoConfig(), [BAD]
    )
    assert workflow is None and problems == [state.problems[0]]


def test_a_broken_podium_yaml_never_raises() -> None:
    """podium.yaml with a bad tag or an unreadable body is a problem; defaults are used."""
    config, problems = load_config(
        MemorySnapshot({"podium.yaml": "forbid_self_approval: !!bool maybe\n"})
    )
    assert config == RepoConfig()
    assert problems == [Problem("podium.yaml", 1, "invalid !!bool value 'maybe'")]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (10**400, "duration is too long"),
        ("1" + "0" * 400 + "s", "duration is too long"),
        (float("inf"), "not a duration"),
        (float("nan"), "not a duration"),
        ("3651d", "duration is too long"),
        (-1, "must not be negative"),
        ("x" * 10_000, "not a duration"),
    ],
)
def test_durations_refuse_what_timers_cannot_hold(value: object, fragment: str) -> None:
    """Overflowing, infinite and over-long durations are a short ValueError, not a crash."""
    with pytest.raises(ValueError, match=fragment) as info:
        parse_duration(value)
    assert len(str(info.value)) < 120


def test_longest_duration_is_accepted() -> None:
    """3650 days is the limit itself, and is accepted."""
    assert parse_duration("3650d") == 3650 * 86400


def test_agent_interval_flag_overflow_is_one_line(tmp_path: Path) -> None:
    """``podium agent --interval 1000…`` is one error line and a non-zero exit."""
    import os
    import subprocess
    import sys

    podium = Path(sys.executable).parent / "podium"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    result = subprocess.run(
        [
            str(podium),
            "agent",
            "--repo",
            str(tmp_path / "none"),
            "--data-dir",
            str(tmp_path / "data"),
            "--interval",
            "1" + "0" * 400,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "duration is too long" in lines[0], result.stderr
