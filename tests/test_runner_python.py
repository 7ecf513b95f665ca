"""Tests for the python runner: module:function called in a supervised subprocess."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from podium.runners.base import OutcomeStatus, TaskContext
from podium.runners.python import PythonRunner

MODULE = """
import os
import time


def ok():
    print("greeting:", os.environ["GREETING"])


def boom():
    raise RuntimeError("kaboom")


def refuse():
    return False


def code():
    return 3


def agree():
    return True


def slow():
    time.sleep(30)
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout holding a ``jobs`` module with task functions."""
    root = tmp_path / "checkout"
    (root / "jobs").mkdir(parents=True)
    (root / "jobs" / "__init__.py").write_text("")
    (root / "jobs" / "tasks.py").write_text(textwrap.dedent(MODULE))
    return root


def make_ctx(cwd: Path, **overrides: Any) -> TaskContext:
    """A context running in ``cwd`` with GREETING set."""
    values: dict[str, Any] = {
        "run_id": 1,
        "workflow": "wf",
        "task_id": "py",
        "attempt": 1,
        "cwd": cwd,
        "repo_root": cwd,
        "env": {"GREETING": "hello"},
        "log_path": cwd.parent / "logs" / "py.log",
        "grace": 0.3,
    }
    values.update(overrides)
    return TaskContext(**values)


def test_function_returning_none_succeeds_and_sees_env(checkout: Path) -> None:
    """A function returning None succeeds; the task env is in os.environ."""
    outcome = PythonRunner().run("jobs.tasks:ok", make_ctx(checkout))
    assert outcome.status is OutcomeStatus.SUCCEEDED
    assert outcome.exit_code == 0
    assert outcome.output_tail == "greeting: hello"


def test_function_returning_true_succeeds(checkout: Path) -> None:
    """A function returning True succeeds."""
    assert PythonRunner().run("jobs.tasks:agree", make_ctx(checkout)).ok


def test_exception_fails_with_traceback_in_tail(checkout: Path) -> None:
    """An exception fails the task with its traceback in the tail."""
    outcome = PythonRunner().run("jobs.tasks:boom", make_ctx(checkout))
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.exit_code == 1
    assert "Traceback" in outcome.output_tail
    assert "RuntimeError: kaboom" in outcome.output_tail


def test_returning_false_or_nonzero_fails(checkout: Path) -> None:
    """A function returning False or a non-zero int fails with exit code 1."""
    for target in ("jobs.tasks:refuse", "jobs.tasks:code"):
        outcome = PythonRunner().run(target, make_ctx(checkout))
        assert outcome.status is OutcomeStatus.FAILED
        assert outcome.exit_code == 1


def test_timeout_kills_the_function(checkout: Path) -> None:
    """A function running past the timeout is killed and reports TIMED_OUT."""
    start = time.monotonic()
    outcome = PythonRunner().run("jobs.tasks:slow", make_ctx(checkout, timeout=0.5))
    assert outcome.status is OutcomeStatus.TIMED_OUT
    assert time.monotonic() - start < 3


def test_missing_module_fails(checkout: Path) -> None:
    """An unimportable module fails with the import error in the tail."""
    outcome = PythonRunner().run("jobs.nothing:ok", make_ctx(checkout))
    assert outcome.status is OutcomeStatus.FAILED
    assert "ModuleNotFoundError" in outcome.output_tail


def test_target_is_never_run_as_code(checkout: Path) -> None:
    """A target string carrying code is looked up as a name, never executed."""
    target = "jobs.tasks:ok\nopen('pwned', 'w')"
    outcome = PythonRunner().run(target, make_ctx(checkout))
    assert outcome.status is OutcomeStatus.FAILED
    assert not (checkout / "pwned").exists()


def test_existing_pythonpath_is_kept_after_checkout(checkout: Path, tmp_path: Path) -> None:
    """The checkout comes first on PYTHONPATH; an existing PYTHONPATH still works."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "helper.py").write_text("def run():\n    print('helper ran')\n")
    ctx = make_ctx(checkout, env={"PYTHONPATH": str(extra)})
    outcome = PythonRunner().run("helper:run", ctx)
    assert outcome.ok
    assert outcome.output_tail == "helper ran"
