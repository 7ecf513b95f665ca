"""`podium validate` on roots and files (as pre-commit calls it), and bad files through the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
import yaml

from podium.cli import cli
from tests.gitrepo import GitRepo, git, workflow

ROOT = Path(__file__).resolve().parents[1]
PODIUM = Path(sys.executable).parent / "podium"
GOOD = workflow("good", "  - id: a\n    run: make\n    inputs: [scripts/build.sh]\n")


def podium(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``podium`` with no PODIUM_* settings from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    return subprocess.run(
        [str(PODIUM), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``podium: error:`` line of a failed command (nothing else printed)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("podium: error: "), result.stderr
    return lines[0]


# -- roots --------------------------------------------------------------------------


def test_a_directory_that_is_not_a_podium_root_is_one_error_line(tmp_path: Path) -> None:
    """No podium.yaml and no workflows/: one line saying so and exit 1 (not "0 valid")."""
    write(tmp_path, {"README.md": "hello\n", "flows/x.yaml": GOOD})
    result = podium("validate", str(tmp_path))
    assert result.stdout == ""
    line = one_error_line(result)
    assert str(tmp_path) in line and "not a Podium root" in line


def test_podium_yaml_naming_another_workflows_dir_makes_a_root(tmp_path: Path) -> None:
    """A directory whose podium.yaml sets workflows_dir is a root; that directory is read."""
    write(
        tmp_path,
        {
            "podium.yaml": "workflows_dir: flows\n",
            "flows/good.yaml": GOOD,
            "scripts/build.sh": "make\n",
        },
    )
    result = podium("validate", str(tmp_path))
    assert (result.returncode, result.stdout) == (0, "1 workflow(s) valid\n"), result.stderr


# -- files, as pre-commit passes them ----------------------------------------------------


@pytest.fixture(name="work")
def work_fixture(tmp_path: Path) -> Path:
    """A Git work tree with podium.yaml, two workflows and a script, as a user has it."""
    root = tmp_path / "ops"
    root.mkdir()
    git("init", "-q", str(root))
    return write(
        root,
        {
            "podium.yaml": "defaults:\n  concurrency: 2\n",
            "workflows/good.yaml": GOOD,
            "workflows/other.yml": workflow("other", "  - id: b\n    run: test\n"),
            "scripts/build.sh": "make\n",
            "scripts/settings.yaml": "not: a workflow\n",
        },
    )


def test_the_hook_manifest_names_an_existing_command() -> None:
    """.pre-commit-hooks.yaml parses, and its podium-validate hook runs `podium validate`."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "podium-validate"]
    assert hook["language"] == "python" and hook["pass_filenames"] is True
    program, command = hook["entry"].split()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[program] == "podium.cli:main"
    assert command in cli.commands

    def selected(path: str) -> bool:  # pre-commit's rule: re.search on files, then exclude
        return bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)

    for path in ("workflows/a.yaml", "workflows/team/b.yml", "podium.yaml", "ops/podium.yaml"):
        assert selected(path), path
    for path in ("scripts/a.sh", "README.md", "workflows/notes.md", ".github/workflows/ci.yml"):
        assert not selected(path), path


def test_validate_takes_the_files_pre_commit_passes(work: Path) -> None:
    """Several workflow files plus podium.yaml, relative to the repo: exit 0 when all valid."""
    result = podium(
        "validate", "workflows/good.yaml", "workflows/other.yml", "podium.yaml", cwd=work
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "2 workflow(s) valid\n", "")


def test_only_the_files_passed_are_judged(work: Path) -> None:
    """A broken file is reported when passed, with its path as given; others are not judged."""
    write(work, {"workflows/other.yml": "name: other\ntasks:\n  - id: b\n    rnu: test\n"})
    result = podium("validate", "workflows/good.yaml", cwd=work)
    assert (result.returncode, result.stdout) == (0, "1 workflow(s) valid\n")

    result = podium("validate", "workflows/good.yaml", "workflows/other.yml", cwd=work)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "workflows/other.yml:3: task 'b' has no task kind: set exactly one of run, http, python",
        "workflows/other.yml:4: unknown key 'rnu' in tasks[0] (did you mean 'run'?)",
    ]
    assert "Traceback" not in result.stderr


def test_a_file_is_checked_with_the_podium_yaml_of_its_root(work: Path) -> None:
    """From outside the root, a file finds the nearest root above it and reads its config."""
    write(work, {"podium.yaml": "workflows_dir: flows\n", "flows/new.yaml": GOOD})
    result = podium("validate", "ops/flows/new.yaml", cwd=work.parent)
    assert (result.returncode, result.stdout) == (0, "1 workflow(s) valid\n"), result.stderr
    result = podium("validate", "ops/workflows/good.yaml", cwd=work.parent)
    line = one_error_line(result)
    assert "ops/workflows/good.yaml: not a workflow file" in line and "under flows/" in line


def test_a_file_that_is_not_a_workflow_file_is_an_error(work: Path) -> None:
    """A YAML file of the root outside workflows/ is one error line, exit 1."""
    line = one_error_line(podium("validate", "scripts/settings.yaml", cwd=work))
    assert line == (
        "podium: error: scripts/settings.yaml: not a workflow file"
        " (workflow files are *.yaml and *.yml under workflows/)"
    )


def test_a_file_outside_any_root_is_an_error(tmp_path: Path) -> None:
    """A file with no Podium root above it (up to its Git top) is one error line."""
    repo = tmp_path / "elsewhere"
    git("init", "-q", str(repo))
    write(repo, {"notes/x.yaml": GOOD})
    line = one_error_line(podium("validate", "notes/x.yaml", cwd=repo))
    assert line.startswith("podium: error: notes/x.yaml: not inside a Podium root")


def test_directories_and_files_mix(work: Path, tmp_path: Path) -> None:
    """A root and a file of another root: each problem's path is as the user would find it."""
    other = write(tmp_path / "second", {"workflows/w.yaml": "name: w\nconcurrency: '3'\n"})
    write(work, {"workflows/good.yaml": "name: good\ntasks: []\n"})
    result = podium("validate", "ops", "second/workflows/w.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "ops/workflows/good.yaml:2: tasks: List should have at least 1 item after validation,"
        " not 0",
        "second/workflows/w.yaml:1: missing required key 'tasks'",
        "second/workflows/w.yaml:2: concurrency: expected a whole number, got the text '3'"
        " (write it without quotes)",
    ]
    assert other.is_dir()


@pytest.mark.parametrize("name", ["validate", "schema"])
def test_every_option_has_help_text(name: str) -> None:
    """Each option of `validate` and `schema` says what it does in --help."""
    command = cli.commands[name]
    options = [p for p in command.get_params(click.Context(command)) if isinstance(p, click.Option)]
    assert len(options) >= 2
    for option in options:
        assert option.help and not option.hidden, option.name


# -- bad files through the real CLI ---------------------------------------------------

TRIGGER_FILES = {
    "workflows/good.yaml": GOOD,
    "scripts/build.sh": "make\n",
    "data/" + "a" * 40: "x\n",
    "workflows/dates.yaml": workflow("dates", "  - id: a\n    run: x\n    timeout: 2020-02-30\n"),
    "workflows/tags.yaml": workflow(
        "tags", "  - id: a\n    run: x\n    idempotent: !!bool maybe\n", description="!!int abc"
    ),
    "workflows/overflow.yaml": workflow(
        "overflow", "  - id: a\n    run: x\n    timeout: 1" + "0" * 400 + "\n"
    ),
    "workflows/glob.yaml": workflow(
        "glob", "  - id: a\n    run: x\n    inputs: ['data/*a*a*a*a*a*a*a*a*a*a*c']\n"
    ),
}
TRIGGER_PROBLEMS = [
    "workflows/dates.yaml:5: tasks[0].timeout: not a duration: '2020-02-30'"
    " (use e.g. 30s, 10m, 1h30m)",
    "workflows/glob.yaml:5: input 'data/*a*a*a*a*a*a*a*a*a*a*c' of task 'a'"
    " matches no file in the repository",
    "workflows/overflow.yaml:5: tasks[0].timeout: duration is too long:"
    " a number of more than 19 digits (at most 3650d)",
    "workflows/tags.yaml:2: invalid !!int value 'abc'",
    "workflows/tags.yaml:6: invalid !!bool value 'maybe'",
]


@pytest.mark.timeout(120)
def test_validate_and_plan_report_bad_files_one_line_each(repo: GitRepo) -> None:
    """On a real Git repo, validate and plan print each problem on one line and exit 1."""
    repo.commit(TRIGGER_FILES)

    result = podium("validate", str(repo.work))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.splitlines() == TRIGGER_PROBLEMS

    result = podium("plan", "--repo", repo.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    shown = [
        line.strip()
        for line in result.stdout.splitlines()
        if re.match(r"\s*workflows/\S+:\d+: ", line)
    ]
    assert shown == TRIGGER_PROBLEMS, result.stdout
    assert "good" in result.stdout  # the valid workflow is still planned
