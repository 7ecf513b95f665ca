"""The task-kind registry: a plugin point fed by the ``podium.task_kinds`` entry points.

A kind is a :class:`TaskKind`: its YAML key, the type its value must have (a
pydantic-compatible annotation) and where its runner lives (imported only when a
task of that kind actually runs, so validation stays fast). A package adds a kind
by declaring an entry point in the ``podium.task_kinds`` group that names a
``TaskKind`` object; the core needs no change.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from podium.log import get_logger
from podium.spec.kindconfig import HttpSpec, PythonTarget, ShellCommand

if TYPE_CHECKING:
    from podium.runners.base import Runner

log = get_logger(__name__)

ENTRY_POINT_GROUP = "podium.task_kinds"


def _describe_shell(config: Any) -> str:
    return str(config)


def _describe_http(config: Any) -> str:
    return f"{config.method} {config.url}"


def _describe_python(config: Any) -> str:
    return f"python {config}"


@dataclass(frozen=True)
class TaskKind:
    """One task kind: YAML key, value type, and lazily imported runner."""

    name: str
    config_type: Any
    runner: str
    """``module:attribute`` of a zero-argument callable returning a :class:`Runner`."""
    describe: Callable[[Any], str] = _describe_shell
    shell: bool = False
    """True when the value is shell text (the only kind whose text a shell reads)."""

    def load_runner(self) -> Runner:
        module_name, _, attr = self.runner.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        runner: Runner = factory()
        return runner


RUN = TaskKind("run", ShellCommand, "podium.runners.shell:ShellRunner", _describe_shell, True)
HTTP = TaskKind("http", HttpSpec, "podium.runners.http:HttpRunner", _describe_http)
PYTHON = TaskKind("python", PythonTarget, "podium.runners.python:PythonRunner", _describe_python)
BUILTIN = (RUN, HTTP, PYTHON)


@cache
def registry() -> dict[str, TaskKind]:
    """All task kinds: built-ins first, then plugins from entry points."""
    kinds = {k.name: k for k in BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in kinds and ep.value.startswith("podium.kinds:"):
            continue
        try:
            kind = ep.load()
        except Exception as exc:  # a broken plugin must not take the agent down
            log.warning("task_kind_plugin_failed", entry_point=ep.name, error=str(exc))
            continue
        if isinstance(kind, TaskKind):
            kinds[kind.name] = kind
        else:
            log.warning("task_kind_plugin_invalid", entry_point=ep.name)
    return kinds


@cache
def runner_for(name: str) -> Runner:
    """The runner for a kind, imported on first use and then shared."""
    return registry()[name].load_runner()


__all__ = ["BUILTIN", "HTTP", "PYTHON", "RUN", "TaskKind", "registry", "runner_for"]
