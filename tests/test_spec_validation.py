"""Workflow validation: every problem as ``file:line: message``, all of them, never a crash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from textwrap import dedent

import pytest

from podium.source.directory import capture
from podium.source.memory import MemorySnapshot
from podium.spec.loader import (
    MAX_FILE_BYTES,
    DesiredState,
    Problem,
    load_snapshot,
    load_workflow,
)
from podium.spec.models import OnFailure, RepoConfig, RetryPolicy, SecretRef
from podium.spec.yamlio import MAX_NODES

WF = "workflows/wf.yaml"

SCRIPTS = {
    "scripts/build.sh": "#!/bin/sh\nmake\n",
    "scripts/deploy.sh": "#!/bin/sh\ndeploy\n",
    "scripts/lib/common.sh": "helpers\n",
    "scripts/notes.txt": "not a script\n",
    "README.md": "# repo\n",
}


def y(text: str) -> str:
    """YAML text written indented in a test, as a file would hold it."""
    return dedent(text).lstrip("\n")


def load(text: str, **extra: str) -> DesiredState:
    """Load a repository holding ``workflows/wf.yaml`` plus the scripts and ``extra`` files."""
    return load_snapshot(MemorySnapshot({**SCRIPTS, WF: y(text), **extra}))


def problems_in(state: DesiredState, file: str = WF) -> list[Problem]:
    return [p for p in state.problems if p.file == file]


def only_problem(state: DesiredState, file: str = WF) -> Problem:
    found = problems_in(state, file)
    assert len(found) == 1, [str(p) for p in state.problems]
    return found[0]


def assert_problem(state: DesiredState, line: int, *fragments: str, file: str = WF) -> None:
    """Some problem of ``file`` is on exactly ``line`` and its message has every fragment."""
    found = [
        p
        for p in problems_in(state, file)
        if p.line == line and all(f in p.message for f in fragments)
    ]
    assert found, f"no problem on line {line} with {fragments}: {[str(p) for p in state.problems]}"


def assert_invalid(state: DesiredState, file: str = WF) -> None:
    assert file in state.invalid_files
    assert file not in state.files


# -- one test per kind of problem ---------------------------------------------------


def test_yaml_syntax_error_points_at_the_bad_line() -> None:
    """A YAML syntax error is one problem on the line where the parser failed."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
           needs: [x]
          - id: test
            run: make test
        """
    )
    problem = only_problem(state)
    assert problem.line == 5
    assert problem.message.startswith("YAML syntax error")
    assert_invalid(state)
    assert state.workflows == {}


def test_unclosed_bracket_at_end_of_file_points_where_it_opened() -> None:
    """An unfinished flow sequence is reported on its own line, not past the end of the file."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
            needs: [test,
        """
    )
    problem = only_problem(state)
    assert problem.line == 5
    assert "YAML syntax error" in problem.message


def test_unknown_keys_are_reported_where_they_are() -> None:
    """Unknown keys at the top, in a task and in a nested mapping are each reported."""
    state = load(
        """
        name: web
        colour: blue
        tasks:
          - id: build
            run: make
            retries: {count: 2, dleay: 5s}
            comand: make all
        """
    )
    assert_problem(state, 2, "unknown key 'colour'")
    assert_problem(state, 6, "unknown key 'dleay'", "retries")
    assert_problem(state, 7, "unknown key 'comand'", "tasks[0]")
    assert len(problems_in(state)) == 3
    assert_invalid(state)


def test_wrong_types_are_reported_per_key() -> None:
    """A value of the wrong type is reported on its key's line, naming the key."""
    state = load(
        """
        name: web
        concurrency: lots
        on_failure: explode
        tasks:
          - id: build
            run: make
            idempotent: [1]
            needs: test
          - id: test
            run: [make, test]
        """
    )
    assert_problem(state, 2, "concurrency", "expected a whole number, got the text 'lots'")
    assert_problem(state, 3, "on_failure", "'rollback', 'stop' or 'continue'")
    assert_problem(state, 7, "tasks[0].idempotent", "expected true or false, got a list")
    assert_problem(state, 8, "tasks[0].needs", "expected a list, got the text 'test'")
    assert_problem(state, 10, "tasks[1].run", "expected text, got a list")
    assert len(problems_in(state)) == 5


def test_bad_durations_are_reported() -> None:
    """timeout, retry delays and approval timeouts must be durations like 30s or 1h30m."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
            timeout: 10 minutes
            retries:
              count: 2
              delay: soon
          - id: deploy
            run: ./deploy.sh
            approval: {approvers: [lead], timeout: -5}
          - id: forever
            run: sleep 1
            timeout: .inf
        """
    )
    assert_problem(state, 5, "tasks[0].timeout", "not a duration", "'10 minutes'")
    assert_problem(state, 8, "tasks[0].retries.delay", "not a duration", "'soon'")
    assert_problem(state, 11, "tasks[1].approval.timeout", "negative")
    assert_problem(state, 14, "tasks[2].timeout", "not a duration")
    assert len(problems_in(state)) == 4


@pytest.mark.parametrize("cron", ["61 * * * *", "every day", "* * *", ""])
def test_bad_cron_is_reported(cron: str) -> None:
    """A schedule that is not a cron expression is reported on the schedule line."""
    state = load(
        f"""
        # nightly
        name: nightly
        schedule: "{cron}"
        tasks:
          - id: vacuum
            run: vacuum
        """
    )
    problem = only_problem(state)
    assert problem.line == 3
    assert "schedule" in problem.message and "invalid cron expression" in problem.message


def test_good_cron_is_accepted() -> None:
    """Five-field cron and @-shortcuts validate."""
    for cron in ("0 2 * * *", "*/15 9-17 * * 1-5", "@daily"):
        state = load(f'name: n\nschedule: "{cron}"\ntasks: [{{id: a, run: x}}]\n')
        assert state.problems == ()
        assert state.workflows["n"].spec.schedule == cron


def test_duplicate_workflow_names_across_files() -> None:
    """Two files with the same workflow name: the second is reported on its name line."""
    first = y(
        """
        name: deploy
        tasks: [{id: a, run: x}]
        """
    )
    second = y(
        """
        # copy of the first one
        description: oops
        name: deploy
        tasks: [{id: b, run: y}]
        """
    )
    state = load_snapshot(MemorySnapshot({"workflows/a.yaml": first, "workflows/b.yaml": second}))
    problem = only_problem(state, "workflows/b.yaml")
    assert problem.line == 3
    assert "duplicate workflow name 'deploy'" in problem.message
    assert "workflows/a.yaml" in problem.message
    assert state.workflows["deploy"].file == "workflows/a.yaml"
    assert state.invalid_files == ("workflows/b.yaml",)


def test_duplicate_task_ids() -> None:
    """A repeated task id is reported on the second id's line."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
          - id: test
            run: make test
          - run: make again
            id: build
        """
    )
    problem = only_problem(state)
    assert problem.line == 8
    assert "duplicate task id 'build'" in problem.message


def test_needs_naming_an_unknown_task() -> None:
    """Each unknown name in needs is reported on its own list item's line."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
          - id: deploy
            run: ./deploy.sh
            needs:
              - build
              - tset
              - lint
        """
    )
    assert_problem(state, 9, "task 'deploy' needs unknown task 'tset'")
    assert_problem(state, 10, "task 'deploy' needs unknown task 'lint'")
    assert len(problems_in(state)) == 2


def test_task_needing_itself() -> None:
    """A task in its own needs is reported (a cycle of one)."""
    state = load("name: w\ntasks:\n  - id: a\n    run: x\n    needs: [a]\n")
    problem = only_problem(state)
    assert problem.line == 5
    assert "'a' needs itself" in problem.message


def test_dependency_cycle_is_named() -> None:
    """A cycle is one problem that names every task on it, in order."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
          - id: a
            run: x
            needs: [c]
          - id: b
            run: x
            needs: [a, build]
          - id: c
            run: x
            needs: [b]
        """
    )
    problem = only_problem(state)
    assert problem.line == 7
    assert problem.message == "dependency cycle: a -> c -> b -> a"
    assert_invalid(state)


def test_task_with_no_kind() -> None:
    """A task without run/http/python is reported on the task's line."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
          - id: deploy
            env: {A: b}
        """
    )
    problem = only_problem(state)
    assert problem.line == 5
    assert "task 'deploy' has no task kind" in problem.message
    assert "run, http, python" in problem.message


def test_task_with_two_kinds() -> None:
    """A task with two kinds is reported on the second kind's line."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
            python: tools.build:main
        """
    )
    problem = only_problem(state)
    assert problem.line == 5
    assert "task 'build' sets 2 task kinds (run, python)" in problem.message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("inputs", "['../secrets.env']", "escapes the repository"),
        ("inputs", "[/etc/passwd]", "absolute paths are refused"),
        ("inputs", "['scripts/../../x']", "escapes the repository"),
        ("inputs", "['~/.ssh/id_rsa']", "absolute paths are refused"),
        ("workdir", "../..", "escapes the repository"),
        ("workdir", "/tmp", "absolute paths are refused"),
        ("workdir", "'C:/Windows'", "absolute paths are refused"),
    ],
)
def test_paths_escaping_the_repository(key: str, value: str, fragment: str) -> None:
    """inputs and workdir outside the checkout are refused on their own line."""
    state = load(f"name: w\ntasks:\n  - id: a\n    run: x\n    {key}: {value}\n")
    problem = only_problem(state)
    assert problem.line == 5
    assert key in problem.message and fragment in problem.message


def test_workdir_inside_the_repository_must_exist() -> None:
    """A workdir is fine inside the checkout, and must be a directory there."""
    state = load("name: w\ntasks:\n  - id: a\n    run: x\n    workdir: ./scripts/lib/\n")
    assert state.problems == ()
    state = load("name: w\ntasks:\n  - id: a\n    run: x\n    workdir: nowhere\n")
    problem = only_problem(state)
    assert problem.line == 5 and "workdir 'nowhere'" in problem.message


def test_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    """A workflow file above 1 MiB is refused on line 1; one of exactly 1 MiB is read."""
    (tmp_path / "workflows").mkdir()
    head = "name: big\ntasks: [{id: a, run: x}]\n"
    filler = "# " + "x" * 70 + "\n"
    body = head + filler * ((MAX_FILE_BYTES - len(head)) // len(filler))
    exact = body + "#" * (MAX_FILE_BYTES - len(body) - 1) + "\n"
    assert len(exact.encode()) == MAX_FILE_BYTES
    (tmp_path / "workflows" / "exact.yaml").write_text(exact.replace("name: big", "name: fit"))
    (tmp_path / "workflows" / "big.yaml").write_text(exact + "#\n")

    state = load_snapshot(capture(tmp_path))

    problem = only_problem(state, "workflows/big.yaml")
    assert problem.line == 1
    assert "1 MiB" in problem.message and str(MAX_FILE_BYTES + 2) in problem.message
    assert "workflows/exact.yaml" not in state.invalid_files
    assert (tmp_path / "workflows" / "exact.yaml").stat().st_size == MAX_FILE_BYTES
    assert sorted(state.workflows) == ["fit"]


def test_alias_bomb_is_refused_at_the_offending_key() -> None:
    """A billion-laughs file is refused, pointing at the first key that expands too far."""
    lines = ["name: bomb", "tasks: [{id: a, run: x}]", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    state = load("\n".join(lines) + "\n")
    problem = only_problem(state)
    # l4 (line 7) is the first level whose expansion (111111 nodes) exceeds the limit
    assert 11_111 < MAX_NODES < 111_111
    assert problem.line == 7
    assert "aliases expand to more than" in problem.message and "refused" in problem.message
    assert state.workflows == {}


def test_recursive_alias_is_refused() -> None:
    """A self-referencing alias cannot hang or crash the loader."""
    state = load("name: w\ntasks: [{id: a, run: x}]\nloop: &x [*x]\n")
    problem = only_problem(state)
    assert problem.line == 3 and "aliases" in problem.message


def test_duplicate_yaml_keys_are_reported() -> None:
    """A key given twice is reported on its second occurrence, naming the first line."""
    state = load(
        """
        name: web
        tasks:
          - id: build
            run: make
            timeout: 5m
            run: make all
        name: web2
        """
    )
    assert_problem(state, 6, "duplicate key 'run'", "first on line 4")
    assert_problem(state, 7, "duplicate key 'name'", "first on line 1")
    assert len(problems_in(state)) == 2
    assert_invalid(state)


# -- all problems, each on one line ---------------------------------------------------


def test_every_problem_of_a_file_is_reported_on_its_own_line() -> None:
    """A file with many problems reports all of them, each as one ``file:line: message``."""
    state = load(
        """
        name: web
        bogus: 1
        schedule: "not cron"
        tasks:
          - id: build
            run: make
            timeout: forever
            needs: [nope]
            inputs: [missing/*.sh]
          - id: build
            run: make
            http: {url: "http://example.com"}
          - id: deploy
            needs: [deploy2]
            workdir: ../outside
          - id: deploy2
            run: x
            needs: [deploy]
        """
    )
    expected = {
        (2, "unknown key 'bogus'"),
        (3, "invalid cron expression 'not cron'"),
        (7, "not a duration: 'forever'"),
        (8, "needs unknown task 'nope'"),
        (9, "input 'missing/*.sh' of task 'build' matches no file"),
        (10, "duplicate task id 'build'"),
        (12, "sets 2 task kinds (run, http)"),
        (13, "task 'deploy' has no task kind"),
        (14, "dependency cycle: deploy -> deploy2 -> deploy"),
        (15, "escapes the repository"),
    }
    for line, fragment in expected:
        assert_problem(state, line, fragment)
    found = problems_in(state)
    assert len(found) == len(expected), [str(p) for p in found]
    for problem in found:
        text = str(problem)
        assert "\n" not in text
        assert re.fullmatch(rf"{re.escape(WF)}:{problem.line}: \S.*", text)
    assert [p.line for p in found] == sorted(p.line for p in found)


def test_missing_required_keys_are_all_reported() -> None:
    """A file missing both name and tasks reports both."""
    state = load("description: nothing here\n")
    messages = {p.message for p in problems_in(state)}
    assert messages == {"missing required key 'name'", "missing required key 'tasks'"}


def test_bad_rollback_is_reported_not_swallowed() -> None:
    """An invalid rollback makes the file invalid *and* says why (no silent rejection)."""
    state = load(
        """
        name: web
        tasks:
          - id: a
            run: x
            rollback: [undo]
          - id: b
            run: x
            rollback: {shell: undo}
          - id: c
            run: x
            rollback: {run: undo, python: "m:f"}
        """
    )
    assert_problem(state, 5, "tasks[0].rollback", "shell command or a mapping")
    assert_problem(state, 8, "tasks[1].rollback", "unknown task kind 'shell'")
    assert_problem(state, 11, "tasks[2].rollback", "exactly one task kind")
    assert_invalid(state)


def test_rollback_forms_are_accepted() -> None:
    """rollback is a shell command or a mapping with one task kind."""
    state = load(
        """
        name: web
        tasks:
          - id: a
            run: x
            rollback: ./undo.sh
          - id: b
            run: x
            rollback: {http: {url: "https://example.com/undo", method: POST}}
        """
    )
    assert state.problems == ()
    tasks = state.workflows["web"].spec.tasks  # type: ignore[attr-defined]
    assert tasks[0].rollback_action() == ("run", "./undo.sh")
    kind, config = tasks[1].rollback_action()
    assert kind == "http" and config.method == "POST"


def test_control_characters_are_a_problem_not_a_crash() -> None:
    """Characters YAML refuses are reported as one problem on their line."""
    state = load("name: w\ntasks: [{id: a, run: x}]\nnote: \x00\n")
    problem = only_problem(state)
    assert problem.line == 3
    assert "unacceptable character #x0000" in problem.message
    assert "\n" not in problem.message


def test_invalid_utf8_is_a_problem() -> None:
    """A file that is not UTF-8 text is reported, not decoded wrongly."""
    state = load_snapshot(MemorySnapshot({WF: b"name: w\xff\n"}))
    problem = only_problem(state)
    assert problem.line == 1 and "not UTF-8" in problem.message


def test_empty_and_non_mapping_files() -> None:
    """An empty file and a file that is a list are each one problem."""
    assert "empty" in only_problem(load("# nothing\n")).message
    assert "must be a mapping" in only_problem(load("- a\n- b\n")).message


def test_several_documents_in_one_file_are_refused() -> None:
    """One workflow per file: a second YAML document is a problem on its separator line."""
    state = load("name: a\ntasks: [{id: a, run: x}]\n---\nname: b\n")
    problem = only_problem(state)
    assert problem.line == 3 and "another document" in problem.message


def test_python_tags_are_refused() -> None:
    """Only plain data is loaded: a python/object tag is a problem, never executed."""
    state = load("name: !!python/object/apply:os.system ['true']\ntasks: [{id: a, run: x}]\n")
    problem = only_problem(state)
    assert problem.line == 1 and "python/object" in problem.message


# -- what a valid file means ----------------------------------------------------------


def test_valid_complex_workflow_loads() -> None:
    """Kinds, short and long retries, durations, secrets and approvals load as typed values."""
    state = load(
        """
        name: deploy-web
        description: Build and deploy.
        on_failure: stop
        concurrency: 2
        schedule: "0 2 * * 1-5"
        params:
          VERSION: 1.4
          DRY_RUN: false
        tasks:
          - id: build
            run: ./scripts/build.sh
            inputs: [scripts/build.sh]
            timeout: 10m
            retries: 3
            env:
              TOKEN: {secret: GITHUB_TOKEN}
              LEVEL: 2
          - id: check
            needs: [build]
            http:
              url: https://example.com/health
              expect: [200]
            timeout: 1h30m
            retries: {count: 2, delay: 5s, backoff: 3, max_delay: 1m}
          - id: notify
            needs: [check]
            python: tools.notify:main
            idempotent: false
            workdir: scripts
            approval:
              approvers: ["@sre", lead@example.com]
              timeout: 4h
              on_timeout: approve
        """
    )
    assert state.problems == () and state.invalid_files == ()
    wf = state.workflows["deploy-web"]
    assert state.files == {WF: "deploy-web"}
    assert not wf.stale and wf.file == WF
    spec = wf.spec
    assert spec.on_failure is OnFailure.STOP and spec.concurrency == 2
    assert spec.params == {"VERSION": "1.4", "DRY_RUN": "false"}
    build, check, notify = spec.tasks  # type: ignore[attr-defined]
    assert (build.kind, check.kind, notify.kind) == ("run", "http", "python")
    assert build.config == "./scripts/build.sh"
    assert build.timeout == 600.0
    assert build.retries == RetryPolicy(count=3)
    assert build.env == {"TOKEN": SecretRef(secret="GITHUB_TOKEN"), "LEVEL": "2"}
    assert check.timeout == 5400.0
    assert check.config.url == "https://example.com/health" and check.config.expect == [200]
    assert (check.retries.count, check.retries.delay, check.retries.backoff) == (2, 5.0, 3.0)
    assert check.retries.max_delay == 60.0
    assert notify.idempotent is False and notify.workdir == "scripts"
    assert notify.approval is not None
    assert notify.approval.approvers == ["@sre", "lead@example.com"]
    assert (notify.approval.timeout, notify.approval.on_timeout) == (14400.0, "approve")
    assert build.idempotent is True and build.approval is None
    assert wf.task_lines == {"build": 10, "check": 18, "notify": 25}
    digest = hashlib.sha256(SCRIPTS["scripts/build.sh"].encode()).hexdigest()
    assert wf.inputs["build"] == {"scripts/build.sh": digest}
    assert wf.inputs["check"] == {}


def test_yaml_1_2_booleans() -> None:
    """Only true/false are booleans: ``on:`` stays a key, yes/no/on/off stay strings."""
    state = load(
        """
        name: w
        notify:
          slack:
            channel: "#ops"
            on: [failed, succeeded]
        params:
          FEATURE: on
          LEGACY: no
        tasks:
          - id: a
            run: x
            env: {Y: yes, OFF: off, T: true}
            idempotent: false
        """
    )
    assert state.problems == ()
    spec = state.workflows["w"].spec
    assert spec.notify is not None
    assert [str(e) for e in spec.notify["slack"].on] == ["failed", "succeeded"]
    assert spec.params == {"FEATURE": "on", "LEGACY": "no"}
    task = spec.tasks[0]  # type: ignore[attr-defined]
    assert task.env == {"Y": "yes", "OFF": "off", "T": "true"}
    assert task.idempotent is False


# -- podium.yaml ------------------------------------------------------------------------


def test_podium_yaml_workflows_dir_and_defaults() -> None:
    """A custom workflows_dir is where workflows are read; defaults apply unless overridden."""
    config = y(
        """
        workflows_dir: ci/pipelines
        defaults:
          on_failure: continue
          concurrency: 7
        """
    )
    plain = "name: plain\ntasks: [{id: a, run: x}]\n"
    own = "name: own\non_failure: stop\nconcurrency: 1\ntasks: [{id: a, run: x}]\n"
    state = load_snapshot(
        MemorySnapshot(
            {
                "podium.yaml": config,
                "ci/pipelines/plain.yaml": plain,
                "ci/pipelines/nested/own.yml": own,
                "ci/pipelines/readme.md": "not a workflow",
                "workflows/ignored.yaml": "this: [is not even valid",
            }
        )
    )
    assert state.problems == ()
    assert state.config.workflows_dir == "ci/pipelines"
    assert sorted(state.workflows) == ["own", "plain"]
    assert state.workflows["plain"].spec.on_failure is OnFailure.CONTINUE
    assert state.workflows["plain"].spec.concurrency == 7
    assert state.workflows["own"].spec.on_failure is OnFailure.STOP
    assert state.workflows["own"].spec.concurrency == 1


def test_without_podium_yaml_built_in_defaults_apply() -> None:
    """No podium.yaml: workflows/ is read and on_failure defaults to rollback."""
    state = load("name: w\ntasks: [{id: a, run: x}]\n")
    assert state.config == RepoConfig()
    assert state.workflows["w"].spec.on_failure is OnFailure.ROLLBACK
    assert state.workflows["w"].spec.concurrency == 4


def test_podium_yaml_problems_are_reported() -> None:
    """podium.yaml is validated too: unknown keys and escaping dirs are file:line problems."""
    config = "defaults:\n  concurency: 3\nworkflows_dir: ../elsewhere\n"
    state = load("name: w\ntasks: [{id: a, run: x}]\n", **{"podium.yaml": config})
    assert_problem(state, 2, "unknown key 'concurency'", file="podium.yaml")
    assert_problem(state, 3, "workflows_dir", "escapes the repository", file="podium.yaml")


# -- last good definition ----------------------------------------------------------------


def test_invalid_file_keeps_its_last_good_definition() -> None:
    """A file broken at a new revision keeps its last good form (stale); others move on."""
    rev1 = MemorySnapshot(
        {
            "workflows/a.yaml": "name: a\ntasks: [{id: t, run: echo one}]\n",
            "workflows/b.yaml": "name: b\ntasks: [{id: t, run: echo one}]\n",
        },
        revision="rev1",
    )
    first = load_snapshot(rev1)
    assert first.problems == ()
    last_good = {wf.file: wf for wf in first.workflows.values()}

    rev2 = MemorySnapshot(
        {
            "workflows/a.yaml": "name: a\ntasks: [{id: t, run: echo two, bad: 1}]\n",
            "workflows/b.yaml": "name: b\ntasks: [{id: t, run: echo two}]\n",
        },
        revision="rev2",
    )
    second = load_snapshot(rev2, last_good=last_good)

    a, b = second.workflows["a"], second.workflows["b"]
    assert a.stale and a.revision == "rev1"
    assert a.spec.tasks[0].config == "echo one"  # type: ignore[attr-defined]
    assert not b.stale and b.revision == "rev2"
    assert b.spec.tasks[0].config == "echo two"  # type: ignore[attr-defined]
    assert second.invalid_files == ("workflows/a.yaml",)
    assert second.files == {"workflows/b.yaml": "b"}
    assert [str(p) for p in second.problems] == [
        "workflows/a.yaml:2: unknown key 'bad' in tasks[0]"
    ]
    # without a last good form the broken workflow is simply absent
    assert sorted(load_snapshot(rev2).workflows) == ["b"]


# -- inputs ----------------------------------------------------------------------------


def _inputs_of(patterns: str) -> dict[str, str]:
    state = load(f"name: w\ntasks:\n  - id: a\n    run: x\n    inputs: {patterns}\n")
    assert state.problems == (), [str(p) for p in state.problems]
    return dict(state.workflows["w"].inputs["a"])


def test_inputs_single_star_stays_in_one_directory() -> None:
    """``scripts/*.sh`` matches .sh files directly in scripts/, not deeper, not others."""
    found = _inputs_of("['scripts/*.sh']")
    assert sorted(found) == ["scripts/build.sh", "scripts/deploy.sh"]
    assert found["scripts/deploy.sh"] == hashlib.sha256(b"#!/bin/sh\ndeploy\n").hexdigest()


def test_inputs_double_star_spans_directories() -> None:
    """``**`` matches every file; ``scripts/**/*.sh`` every .sh below scripts/."""
    assert sorted(_inputs_of("['**']")) == sorted([*SCRIPTS, WF])
    assert sorted(_inputs_of("['scripts/**/*.sh']")) == [
        "scripts/build.sh",
        "scripts/deploy.sh",
        "scripts/lib/common.sh",
    ]


def test_inputs_directory_and_plain_file() -> None:
    """A directory name matches everything below it; ./ prefixes are ignored."""
    assert sorted(_inputs_of("[scripts/lib, ./README.md]")) == [
        "README.md",
        "scripts/lib/common.sh",
    ]


def test_input_glob_matching_nothing_is_an_error() -> None:
    """A glob matching no file is reported on its own list item's line."""
    state = load(
        """
        name: w
        tasks:
          - id: a
            run: x
            inputs:
              - scripts/*.sh
              - scripts/*.py
        """
    )
    problem = only_problem(state)
    assert problem.line == 7
    assert "input 'scripts/*.py' of task 'a' matches no file" in problem.message
    assert_invalid(state)


def test_invalid_glob_is_a_problem_not_a_crash() -> None:
    """A malformed bracket expression in inputs is reported on its line."""
    state = load("name: w\ntasks:\n  - id: a\n    run: x\n    inputs: ['scripts/[z-a]*']\n")
    problem = only_problem(state)
    assert problem.line == 5 and "invalid glob" in problem.message


def test_load_workflow_alone_reads_the_snapshot_files() -> None:
    """load_workflow without a file list still resolves inputs from the snapshot."""
    snap = MemorySnapshot(
        {**SCRIPTS, WF: "name: w\ntasks: [{id: a, run: x, inputs: [README.md]}]\n"}
    )
    wf, problems = load_workflow(snap, WF, RepoConfig())
    assert problems == [] and wf is not None
    assert list(wf.inputs["a"]) == ["README.md"]
