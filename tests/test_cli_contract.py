"""The command line's contract: exit codes, one-line errors, help text, read-only commands."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tests.gitrepo import GitRepo, workflow
from tests.test_cli_engine import PODIUM, podium

WF = "workflows/w.yaml"


def podium_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI run from ``cwd`` with no data dir or state chosen by the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PODIUM_DATA_DIR", "PODIUM_STATE")}
    return subprocess.run(
        [str(PODIUM), *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """Assert the command failed with ``code`` and exactly one line on stderr; return it."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in done.stderr
    return lines[0]


def test_bare_podium_prints_help_and_succeeds() -> None:
    """`podium` alone prints the help (commands and exit codes) and exits 0, as git does."""
    done = podium()
    assert done.returncode == 0, done.stderr
    assert "Commands:" in done.stdout and "reconcile" in done.stdout
    assert "64 usage error" in done.stdout


def test_usage_errors_never_share_a_code_with_outstanding_work() -> None:
    """A bad flag or argument exits 64 with one line, never 2 (plan's 'outstanding')."""
    for args in (
        ("plan", "--bogus"),
        ("reconcile", "--repo"),
        ("show", "not-a-number"),
        ("--bogus",),
        ("nosuchcommand",),
    ):
        line = one_line_error(podium(*args), code=64)
        assert line.startswith("podium: usage error:"), line
    assert one_line_error(podium("plan", "--repo", ""), code=64).endswith("--help)")


def test_version_and_log_level_after_the_command() -> None:
    """-V/--version print the version; --log-level also works after the command name."""
    for flag in ("-V", "--version"):
        done = podium(flag)
        assert done.returncode == 0 and done.stdout.startswith("podium, version ")
    examples = str(Path(__file__).resolve().parent.parent / "examples-repo")
    done = podium("validate", examples, "--log-level", "error", "--log-format", "json")
    assert done.returncode == 0, done.stderr


def test_every_option_has_help_its_default_and_its_environment_variable() -> None:
    """Help text on every option of every command; env vars shown where an option has one."""
    from podium.cli import cli

    ctx = click.Context(cli, info_name="podium")
    missing = []
    for name, command in cli.commands.items():
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            if not param.help:
                missing.append(f"{name} {param.opts[0]}: no help")
            if param.envvar and not (param.show_envvar or "env" in param.help):
                missing.append(f"{name} {param.opts[0]}: env var not shown")
        help_text = command.get_help(click.Context(command, info_name=name, parent=ctx))
        assert "--log-level" in help_text, name
    assert not missing, missing
    assert "[env: PODIUM_REPO]" in podium("agent", "--help").stdout.replace("\n", " ")


def test_read_only_commands_never_create_a_state_store(tmp_path: Path) -> None:
    """runs, show, logs, status say there is no state, exit 1, and create nothing."""
    for args in (("runs",), ("show", "1"), ("logs", "1", "t"), ("status",)):
        line = one_line_error(podium_in(tmp_path, *args))
        assert "no state store at" in line, line
    assert not (tmp_path / ".podium").exists()


def test_messages_name_what_is_missing(repo: GitRepo, data_dir: Path) -> None:
    """`logs 99 TASK` says there is no run 99; `runs -w nosuch` says there is no such workflow."""
    repo.commit({WF: workflow("w", "  - {id: a, run: 'true'}\n")})
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    assert one_line_error(podium("logs", "99", "a")) == "podium: error: no run 99"
    assert "no workflow named 'nosuch'" in one_line_error(podium("runs", "-w", "nosuch"))
    assert podium("runs", "-w", "w").returncode == 0


def test_show_lists_tasks_in_run_order_with_attempts_and_events(
    repo: GitRepo, data_dir: Path
) -> None:
    """`show RUN` prints tasks in the order they ran, every attempt, and the run's events."""
    repo.commit(
        {
            WF: workflow(
                "w",
                "  - {id: zlast, needs: [afirst], run: 'true'}\n"
                "  - {id: afirst, run: 'exit 0', retries: {count: 1, delay: 0s}}\n",
            )
        }
    )
    assert podium("reconcile", "--repo", repo.url).returncode == 0
    text = podium("show", "1").stdout
    assert text.index("afirst") < text.index("zlast")
    assert "attempt" in text and "phase" in text
    assert "started" in text and "succeeded" in text
    doc = json.loads(podium("show", "1", "--json").stdout)
    assert [t["id"] for t in doc["task_details"]] == ["afirst", "zlast"]


def test_an_empty_repo_setting_is_an_error(tmp_path: Path) -> None:
    """`--repo ""` and an empty PODIUM_REPO are one-line errors for every command."""
    assert "--repo" in one_line_error(podium_in(tmp_path, "plan", "--repo", ""), code=64)
    env = {**os.environ, "PODIUM_REPO": ""}
    done = subprocess.run(
        [str(PODIUM), "agent", "--print-config"], capture_output=True, text=True, env=env
    )
    assert "repo" in one_line_error(done)
    done = subprocess.run([str(PODIUM), "plan"], capture_output=True, text=True, env=env)
    assert "--repo" in one_line_error(done, code=64)


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``chattr +i`` for the duration (skips where the filesystem or user cannot)."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=False)


@contextlib.contextmanager
def read_only_mount(path: Path) -> Iterator[None]:
    """A read-only bind mount of ``path`` onto itself (skips where mounting is not allowed)."""
    ok = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if ok.returncode != 0:
        pytest.skip("bind mounts are not allowed here")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_odd_state_locations_are_one_line_errors(repo: GitRepo, tmp_path: Path) -> None:
    """A state path through a file, an unusable data dir, a read-only place: one line, exit 1."""
    repo.commit({WF: workflow("w", "  - {id: a, run: 'true'}\n")})
    source = ("--repo", repo.url)
    cases = [
        ("--state", "/etc/passwd/state.db"),
        ("--data-dir", "/etc/passwd"),
        ("--state", "/proc/podium/state.db"),
    ]
    for flag, value in cases:
        for command in ("reconcile", "plan"):
            line = one_line_error(podium(command, *source, flag, value))
            assert value.split("/state.db")[0] in line, line
    locked = tmp_path / "locked"
    locked.mkdir()
    with immutable(locked):
        line = one_line_error(podium("reconcile", *source, "--state", f"{locked}/x/state.db"))
        assert "cannot create" in line
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only_mount(ro):
        line = one_line_error(podium("reconcile", *source, "--state", f"{ro}/state.db"))
        assert "state store" in line
    state = tmp_path / "state.db"
    assert podium("reconcile", *source, "--state", str(state)).returncode == 0
    with immutable(state):
        line = one_line_error(podium("reconcile", *source, "--state", str(state)))
        assert "read-only" in line
        assert podium("runs", "--state", str(state)).returncode == 0, "reading still works"


def test_uncommitted_workflow_changes_are_pointed_out(tmp_path: Path) -> None:
    """plan and reconcile on a work tree with edited workflow files say Git's commit counts."""
    from tests.gitrepo import git

    work = tmp_path / "work"
    git("init", "-q", "-b", "main", str(work))
    (work / "workflows").mkdir()
    (work / WF).write_text(workflow("w", "  - {id: a, run: 'true'}\n"))
    git("add", "-A", cwd=work)
    git("commit", "-qm", "first", cwd=work)
    clean = podium("plan", "--repo", str(work))
    assert "uncommitted" not in clean.stderr
    (work / WF).write_text(workflow("w", "  - {id: a, run: 'false'}\n"))
    for command in ("plan", "reconcile"):
        done = podium(command, "--repo", str(work))
        assert "uncommitted changes to workflows/w.yaml" in done.stderr, done.stderr
    assert podium("runs", "--json").returncode == 0
