"""``podium validate`` and ``podium schema``: checking workflow files without a state store.

``validate`` takes Podium roots (directories holding ``podium.yaml`` or a ``workflows/``
directory) and single files, as a pre-commit hook passes them: each file is checked
with the ``podium.yaml`` of the root it belongs to, the nearest directory above it
that is a Podium root.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from podium.cli.app import CONTEXT, emit_json

if TYPE_CHECKING:
    from podium.spec.loader import DesiredState

_CONFIG = "podium.yaml"
_WORKFLOWS = "workflows"


class _WorkingTree:
    """A :class:`~podium.source.base.Snapshot` of a directory as it is on disk.

    Files are listed once and read only when the loader asks (a pre-commit hook runs on
    every commit: nothing else is read). ``.git`` directories and symbolic links are
    left out, as they are not part of what a commit holds.
    """

    revision = "working-tree"

    def __init__(self, root: Path) -> None:
        self._root = root
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for name in filenames:
                full = Path(dirpath, name)
                if not full.is_symlink() and full.is_file():
                    found.append(full.relative_to(root).as_posix())
        self._files = sorted(found)
        self._set = frozenset(self._files)

    def files(self) -> list[str]:
        return list(self._files)

    def read(self, path: str) -> bytes:
        return (self._root / path).read_bytes()

    def digest(self, path: str) -> str:
        with (self._root / path).open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    def size(self, path: str) -> int:
        return (self._root / path).stat().st_size

    def exists(self, path: str) -> bool:
        return path in self._set


def _is_root(directory: Path) -> bool:
    return (directory / _CONFIG).is_file() or (directory / _WORKFLOWS).is_dir()


def _root_of(file: Path) -> Path | None:
    """The nearest directory above ``file`` that is a Podium root (not past a Git top)."""
    for directory in file.parents:
        if _is_root(directory):
            return directory
        if (directory / ".git").exists():
            return None
    return None


@dataclass
class _Root:
    """One Podium root to check: all of it, or some of its files."""

    path: Path
    shown: str
    """The root as the user would write it ("." for the current directory)."""
    files: dict[str, str] | None = field(default_factory=dict)
    """Path in the root → the file as given; ``None`` for every file of the root."""


def _shown(path: Path, given: str) -> str:
    if os.path.isabs(given):
        return str(path)
    return os.path.relpath(path)


def _targets(paths: tuple[str, ...]) -> tuple[list[_Root], list[str]]:
    """Roots to check, in the order given, and one error line per unusable path."""
    roots: dict[Path, _Root] = {}
    errors: list[str] = []
    for given in paths:
        path = Path(os.path.abspath(given))
        if path.is_dir():
            if not _is_root(path):
                errors.append(
                    f"{given}: not a Podium root (no {_CONFIG} and no {_WORKFLOWS}/ directory)"
                )
                continue
            roots.setdefault(path, _Root(path, _shown(path, given))).files = None
        elif path.is_file():
            root = _root_of(path)
            if root is None:
                errors.append(
                    f"{given}: not inside a Podium root (no directory above it holds"
                    f" {_CONFIG} or a {_WORKFLOWS}/ directory)"
                )
                continue
            target = roots.setdefault(root, _Root(root, _shown(root, given)))
            if target.files is not None:
                target.files[path.relative_to(root).as_posix()] = given
        else:
            errors.append(f"{given}: no such file or directory")
    return list(roots.values()), errors


@dataclass
class _Report:
    problems: list[dict[str, Any]] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _check_root(target: _Root, report: _Report, relative: bool) -> None:
    """Load the root and add the problems of what was asked for to ``report``."""
    from podium.spec.loader import CONFIG_FILE, load_snapshot, workflow_files

    tree = _WorkingTree(target.path)
    state: DesiredState = load_snapshot(tree)
    wanted = target.files
    if wanted is not None and CONFIG_FILE in wanted:
        wanted = None  # podium.yaml changes how every workflow file reads
    if wanted is not None:
        known = set(workflow_files(tree.files(), state.config))
        for rel, given in wanted.items():
            if rel not in known:
                where = _dir_shown(state.config.workflows_dir)
                report.errors.append(
                    f"{given}: not a workflow file (workflow files are *.yaml and *.yml"
                    f" under {where})"
                )
    for problem in state.problems:
        if wanted is None or problem.file in wanted or problem.file == CONFIG_FILE:
            file = problem.file
            if not relative and target.shown != ".":
                file = os.path.normpath(os.path.join(target.shown, file))
            report.problems.append({"file": file, "line": problem.line, "message": problem.message})
    report.workflows += [
        name for file, name in state.files.items() if wanted is None or file in wanted
    ]


def _dir_shown(workflows_dir: str) -> str:
    """``workflows/`` as podium.yaml names it, for a message."""
    from podium.spec.globs import normalize

    return (normalize(workflows_dir) or ".") + "/"


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the verdict as one JSON document (valid, workflows, problems, errors).",
)
def validate(paths: tuple[str, ...], as_json: bool) -> None:
    """Validate podium.yaml and workflow files; exit 1 on any problem.

    Each PATH is a Podium root (a directory holding podium.yaml or a workflows/
    directory), whose every workflow file is checked, or a workflow file, checked with
    the podium.yaml of the nearest Podium root above it (as a pre-commit hook passes
    them). A podium.yaml given as a file checks its whole root. Without PATH, the
    current directory. Every problem is printed as file:line: message.
    """
    targets, errors = _targets(paths or (".",))
    report = _Report(errors=errors)
    relative = len(paths or (".",)) == 1 and targets != [] and targets[0].files is None
    for target in targets:
        _check_root(target, report, relative)
    failed = bool(report.problems or report.errors)
    if as_json:
        emit_json(
            {
                "valid": not failed,
                "workflows": sorted(report.workflows),
                "problems": report.problems,
                "errors": report.errors,
            }
        )
    else:
        for problem in report.problems:
            click.echo(f"{problem['file']}:{problem['line']}: {problem['message']}")
        for error in report.errors:
            click.echo(f"podium: error: {error}", err=True)
        if report.problems:
            click.echo(f"{len(report.problems)} problem(s) found", err=True)
        elif not report.errors:
            click.echo(f"{len(report.workflows)} workflow(s) valid")
    sys.exit(1 if failed else 0)


@click.command(context_settings=CONTEXT)
@click.option(
    "--config",
    "which",
    flag_value="config",
    help="Print the schema of podium.yaml instead of the workflow files' one.",
)
@click.option(
    "--workflow",
    "which",
    flag_value="workflow",
    default=True,
    help="Print the schema of workflow files (the default).",
)
def schema(which: str) -> None:
    """Print the JSON Schema of workflow files (for editors)."""
    from podium.spec.schema import config_schema, workflow_schema

    emit_json(config_schema() if which == "config" else workflow_schema())


__all__ = ["schema", "validate"]
