"""The files a workflow refers to: ``inputs`` globs resolved and hashed, ``workdir`` and
paths checked to stay inside the checkout and match something."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podium.source.base import Snapshot
from podium.spec import globs
from podium.spec.models import WorkflowBase, _check_relative
from podium.spec.problems import Problem, show
from podium.spec.yamlio import LineMap


class FileIndex(list[str]):
    """A snapshot's file list with a set for lookups and a cache of content digests."""

    def __init__(self, files: list[str]) -> None:
        super().__init__(files)
        self.as_set = frozenset(files)
        self.digests: dict[str, str] = {}
        self.matches: dict[str, list[str]] = {}
        """glob → the files it matches (many tasks share their globs)."""

    def match(self, pattern: str, check: Callable[[], None] | None = None) -> list[str]:
        """:func:`podium.spec.globs.match` over these files, remembered per glob."""
        found = self.matches.get(pattern)
        if found is None:
            found = self.matches[pattern] = globs.match(pattern, self, self.as_set, check)
        return list(found)

    def digest(self, snapshot: Snapshot, path: str) -> str:
        found = self.digests.get(path)
        if found is None:
            found = self.digests[path] = snapshot.digest(path)
        return found


def _digest(snapshot: Snapshot, path: str, files: list[str]) -> str:
    if isinstance(files, FileIndex):
        return files.digest(snapshot, path)
    return snapshot.digest(path)


def _path_problems(
    file: str,
    index: int,
    tid: object,
    inputs: list[tuple[int, str]],
    workdir: str | None,
    lines: LineMap,
    all_files: list[str],
    check: Callable[[], None] | None = None,
) -> tuple[list[str], list[Problem]]:
    """Files the ``(position, glob)`` inputs of one task match, and path problems.

    A glob that matches nothing or is not a glob, and a workdir that is not a directory
    of the repository, are problems. ``check`` (a deadline) is called as files are gone
    through.
    """
    problems: list[Problem] = []
    matched_files: list[str] = []
    for pos, pattern in inputs:
        where = lines.line(("tasks", index, "inputs", pos))
        try:
            if isinstance(all_files, FileIndex):
                matched = all_files.match(pattern, check)
            else:
                matched = globs.match(pattern, all_files, None, check)
        except ValueError as exc:
            problems.append(Problem(file, where, f"input of task {show(tid)}: {exc}"))
            continue
        if not matched:
            problems.append(
                Problem(
                    file,
                    where,
                    f"input {show(pattern)} of task {show(tid)} matches no file in the repository",
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
                    f"workdir {show(workdir)} of task {show(tid)} is not a directory"
                    " in the repository",
                )
            )
    return matched_files, problems


def resolve_inputs(
    file: str,
    spec: WorkflowBase,
    lines: LineMap,
    snapshot: Snapshot,
    all_files: list[str],
    check: Callable[[], None] | None = None,
) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    """Each task's input files with their content digests, and the path problems.

    ``check`` (a deadline) bounds the matching; hashing the matched files is not
    checked: it reads the repository's own content once per revision.
    """
    problems: list[Problem] = []
    matched: dict[str, list[str]] = {}
    for index, task in enumerate(spec.tasks):
        if check is not None:
            check()
        matched[task.id], task_problems = _path_problems(
            file,
            index,
            task.id,
            list(enumerate(task.inputs)),
            task.workdir,
            lines,
            all_files,
            check,
        )
        problems += task_problems
    if problems:
        return {}, problems
    resolved = {
        tid: {path: _digest(snapshot, path, all_files) for path in paths}
        for tid, paths in matched.items()
    }
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
    file: str,
    data: dict[Any, Any],
    lines: LineMap,
    all_files: list[str],
    check: Callable[[], None] | None = None,
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
            check,
        )[1]
    return problems


__all__ = ["FileIndex", "raw_path_problems", "resolve_inputs"]
