"""The files a workflow refers to: ``inputs`` globs resolved and hashed, ``workdir`` and
paths checked to stay inside the checkout and match something."""

from __future__ import annotations

import hashlib
from typing import Any

from podium.source.base import Snapshot
from podium.spec import globs
from podium.spec.models import WorkflowBase, _check_relative
from podium.spec.problems import Problem
from podium.spec.yamlio import LineMap


class FileIndex(list[str]):
    """A snapshot's file list with a set for lookups and a cache of content digests."""

    def __init__(self, files: list[str]) -> None:
        super().__init__(files)
        self.as_set = frozenset(files)
        self.digests: dict[str, str] = {}

    def digest(self, snapshot: Snapshot, path: str) -> str:
        found = self.digests.get(path)
        if found is None:
            found = self.digests[path] = hashlib.sha256(snapshot.read(path)).hexdigest()
        return found


def _digest(snapshot: Snapshot, path: str, files: list[str]) -> str:
    if isinstance(files, FileIndex):
        return files.digest(snapshot, path)
    return hashlib.sha256(snapshot.read(path)).hexdigest()


def _path_problems(
    file: str,
    index: int,
    tid: object,
    inputs: list[tuple[int, str]],
    workdir: str | None,
    lines: LineMap,
    all_files: list[str],
) -> tuple[list[str], list[Problem]]:
    """Files the ``(position, glob)`` inputs of one task match, and path problems.

    A glob that matches nothing or is not a glob, and a workdir that is not a directory
    of the repository, are problems.
    """
    problems: list[Problem] = []
    matched_files: list[str] = []
    for pos, pattern in inputs:
        where = lines.line(("tasks", index, "inputs", pos))
        try:
            matched = globs.match(pattern, all_files, getattr(all_files, "as_set", None))
        except ValueError as exc:
            problems.append(Problem(file, where, f"input of task {tid!r}: {exc}"))
            continue
        if not matched:
            problems.append(
                Problem(
                    file,
                    where,
                    f"input {pattern!r} of task {tid!r} matches no file in the repository",
                )
            )
        matched_files += matched
    if workdir is not None:
        wd = globs.normalize(workdir)
        listed = getattr(all_files, "as_set", all_files)
        if wd and wd not in listed and not any(f.startswith(wd + "/") for f in all_files):
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index, "workdir")),
                    f"workdir {workdir!r} of task {tid!r} is not a directory in the repository",
                )
            )
    return matched_files, problems


def resolve_inputs(
    file: str, spec: WorkflowBase, lines: LineMap, snapshot: Snapshot, all_files: list[str]
) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    problems: list[Problem] = []
    resolved: dict[str, dict[str, str]] = {}
    for index, task in enumerate(spec.tasks):
        matched, task_problems = _path_problems(
            file, index, task.id, list(enumerate(task.inputs)), task.workdir, lines, all_files
        )
        problems += task_problems
        resolved[task.id] = {path: _digest(snapshot, path, all_files) for path in matched}
    return resolved, problems


def _inside(value: object) -> bool:
    """A string path that stays inside the repository (others have their own problem)."""
    if not isinstance(value, str):
        return False
    try:
        _check_relative(value)
    except ValueError:
        return False
    return True


def raw_path_problems(
    file: str, data: dict[Any, Any], lines: LineMap, all_files: list[str]
) -> list[Problem]:
    """Input and workdir problems of a file that failed validation, so all are reported."""
    problems: list[Problem] = []
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        return problems
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        raw_inputs = task.get("inputs")
        inputs = [
            (pos, item)
            for pos, item in enumerate(raw_inputs if isinstance(raw_inputs, list) else [])
            if _inside(item)
        ]
        workdir = task.get("workdir")
        problems += _path_problems(
            file,
            index,
            task.get("id", f"#{index + 1}"),
            inputs,
            workdir if _inside(workdir) else None,
            lines,
            all_files,
        )[1]
    return problems


__all__ = ["FileIndex", "raw_path_problems", "resolve_inputs"]
