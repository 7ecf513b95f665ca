"""Load and validate the desired state of one revision: ``podium.yaml`` plus workflow files.

Every problem is reported as ``file:line: message`` and all problems of a file are
reported, not only the first. Loading never raises for bad input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agent.kinds import registry
from agent.source.base import Snapshot
from agent.spec import globs
from agent.spec.models import RepoConfig, WorkflowBase, _check_relative, workflow_model
from agent.spec.yamlio import LineMap, parse_yaml

MAX_FILE_BYTES = 1024 * 1024
CONFIG_FILE = "podium.yaml"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, order=True)
class Problem:
    """One validation problem, printed as ``file:line: message``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class WorkflowDef:
    """A validated workflow as found at one revision."""

    spec: WorkflowBase
    file: str
    revision: str
    task_lines: Mapping[str, int]
    inputs: Mapping[str, Mapping[str, str]]
    """task id → {file path: sha256 of its content} for the files its ``inputs`` match."""
    stale: bool = False
    """True when the file is invalid at the newest revision and this is its last good form."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class DesiredState:
    """Everything the planner needs from one revision of the source."""

    revision: str
    config: RepoConfig
    workflows: Mapping[str, WorkflowDef]
    problems: tuple[Problem, ...] = ()
    invalid_files: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    """Workflow file → workflow name for files that validated."""


def _fmt_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], str | None]:
    """Follow ``loc`` through ``data``; skip union tags. Returns (path, missing key)."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
        elif i == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
            return tuple(path), part
    return tuple(path), None


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _is_kind_error(loc: tuple[str | int, ...], msg: str) -> bool:
    """The task model's own "zero or several kinds" error (not e.g. a bad ``rollback``)."""
    on_task = len(loc) == 2 and loc[0] == "tasks" and isinstance(loc[1], int)
    return on_task and ("has no task kind" in msg or "task kinds" in msg)


def _pydantic_problems(file: str, data: Any, lines: LineMap, exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    # one problem per place: a union's alternatives fail at the same path (reported once),
    # but every missing key is a problem of its own
    seen: set[tuple[int, tuple[str | int, ...], str | None]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path, missing = _data_path(data, loc)
        line = lines.line(path)
        key = (line, path, missing)
        if key in seen and err["type"] != "extra_forbidden":
            continue
        seen.add(key)
        if _is_kind_error(loc, err["msg"]):
            continue  # reported by _kind_problems on the raw data
        where = _fmt_path(path)
        if err["type"] == "extra_forbidden":
            message = f"unknown key {path[-1]!r}" + (
                f" in {_fmt_path(path[:-1])}" if len(path) > 1 else ""
            )
        elif err["type"] == "missing" and missing is not None:
            message = f"missing required key {missing!r}" + (f" in {where}" if where else "")
        else:
            message = f"{where}: {_clean(err['msg'])}" if where else _clean(err["msg"])
        problems.append(Problem(file, line, message))
    return problems


def _kind_problems(file: str, data: Any, lines: LineMap) -> list[Problem]:
    """Zero or several task kinds on one task (checked on raw data so it is always reported)."""
    problems: list[Problem] = []
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list):
        return problems
    kinds = registry()
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        found = [k for k in task if k in kinds]
        name = task.get("id", f"#{index + 1}")
        if not found:
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index)),
                    f"task {name!r} has no task kind: set exactly one of {', '.join(kinds)}",
                )
            )
        elif len(found) > 1:
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index, found[1])),
                    f"task {name!r} sets {len(found)} task kinds ({', '.join(found)}):"
                    " set exactly one",
                )
            )
    return problems


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """One dependency cycle as a list of ids (first repeated at the end), or None."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if color.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in color:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = 2
        return None

    for node in graph:
        if node not in color:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def _graph_problems(file: str, data: Any, lines: LineMap) -> list[Problem]:
    """Duplicate ids, unknown or self needs, cycles (on raw data, so always reported)."""
    problems: list[Problem] = []
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list):
        return problems
    ids: dict[str, int] = {}
    needs_of: list[tuple[int, str, list[Any]]] = []
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            continue
        tid = task["id"]
        if tid in ids:
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index, "id")),
                    f"duplicate task id {tid!r} (first at tasks[{ids[tid]}])",
                )
            )
            continue
        ids[tid] = index
        needs = task.get("needs", [])
        needs_of.append((index, tid, needs if isinstance(needs, list) else []))
    graph: dict[str, list[str]] = {}
    for index, tid, needs in needs_of:
        graph[tid] = []
        for pos, need in enumerate(needs):
            if not isinstance(need, str):
                continue
            where = lines.line(("tasks", index, "needs", pos))
            if need == tid:
                problems.append(Problem(file, where, f"task {tid!r} needs itself"))
            elif need not in ids:
                problems.append(Problem(file, where, f"task {tid!r} needs unknown task {need!r}"))
            else:
                graph[tid].append(need)
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(
            Problem(
                file,
                lines.line(("tasks", ids[cycle[0]], "needs")),
                f"dependency cycle: {' -> '.join(cycle)}",
            )
        )
    return problems


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


def _resolve_inputs(
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


def _raw_path_problems(
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


def _apply_defaults(spec: WorkflowBase, config: RepoConfig) -> WorkflowBase:
    update: dict[str, Any] = {}
    d = config.defaults
    given = spec.model_fields_set
    if "on_failure" not in given and d.on_failure is not None:
        update["on_failure"] = d.on_failure
    if "concurrency" not in given and d.concurrency is not None:
        update["concurrency"] = d.concurrency
    if "notify" not in given:
        update["notify"] = d.notify if d.notify is not None else dict(config.notify)
    if "forbid_self_approval" not in given:
        update["forbid_self_approval"] = (
            d.forbid_self_approval
            if d.forbid_self_approval is not None
            else config.forbid_self_approval
        )
    return spec.model_copy(update=update) if update else spec


def read_text(snapshot: Snapshot, path: str) -> tuple[str | None, Problem | None]:
    """A file's text, or a problem when it is too large or not UTF-8."""
    size = snapshot.size(path)
    if size > MAX_FILE_BYTES:
        return None, Problem(
            path, 1, f"file is {size} bytes, over the {MAX_FILE_BYTES} byte (1 MiB) limit"
        )
    try:
        return snapshot.read(path).decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, Problem(path, 1, f"file is not UTF-8 text ({exc.reason})")


def load_config(snapshot: Snapshot) -> tuple[RepoConfig, list[Problem]]:
    """``podium.yaml`` (optional) → config; defaults when missing or invalid."""
    if not snapshot.exists(CONFIG_FILE):
        return RepoConfig(), []
    text, problem = read_text(snapshot, CONFIG_FILE)
    if text is None:
        return RepoConfig(), [problem] if problem else []
    parsed = parse_yaml(text)
    problems = [Problem(CONFIG_FILE, p.line, p.message) for p in parsed.problems]
    if parsed.data is None and not problems:
        return RepoConfig(), []
    if parsed.data is None:
        return RepoConfig(), problems
    if not isinstance(parsed.data, dict):
        return RepoConfig(), [Problem(CONFIG_FILE, 1, "podium.yaml must be a mapping")]
    try:
        config = RepoConfig.model_validate(parsed.data)
    except ValidationError as exc:
        return RepoConfig(), problems + _pydantic_problems(
            CONFIG_FILE, parsed.data, parsed.lines, exc
        )
    return config, problems


def load_workflow(
    snapshot: Snapshot, path: str, config: RepoConfig, all_files: list[str] | None = None
) -> tuple[WorkflowDef | None, list[Problem]]:
    """Validate one workflow file; returns the definition (if valid) and all its problems."""
    text, problem = read_text(snapshot, path)
    if text is None:
        return None, [problem] if problem else []
    parsed = parse_yaml(text)
    problems = [Problem(path, p.line, p.message) for p in parsed.problems]
    data = parsed.data
    if data is None:
        if not problems:
            problems.append(Problem(path, 1, "workflow file is empty"))
        return None, problems
    if not isinstance(data, dict):
        return None, [*problems, Problem(path, 1, "a workflow file must be a mapping")]
    problems += _kind_problems(path, data, parsed.lines)
    problems += _graph_problems(path, data, parsed.lines)
    files = all_files if all_files is not None else snapshot.files()
    try:
        spec = workflow_model().model_validate(data)
    except ValidationError as exc:
        problems += _pydantic_problems(path, data, parsed.lines, exc)
        problems += _raw_path_problems(path, data, parsed.lines, files)
        if not problems:  # never reject a file without saying why
            problems.append(Problem(path, 1, f"invalid workflow: {exc.error_count()} error(s)"))
        return None, _dedupe(problems)
    inputs, input_problems = _resolve_inputs(path, spec, parsed.lines, snapshot, files)
    problems += input_problems
    if problems:
        return None, _dedupe(problems)
    task_lines = {t.id: parsed.lines.line(("tasks", i)) for i, t in enumerate(spec.tasks)}
    spec = _apply_defaults(spec, config)
    return WorkflowDef(spec, path, snapshot.revision, task_lines, inputs), []


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[int, str]] = set()
    out: list[Problem] = []
    for p in problems:
        key = (p.line, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return sorted(out, key=lambda p: (p.file, p.line))


def workflow_files(all_files: list[str], config: RepoConfig) -> list[str]:
    """Workflow files: ``*.yaml``/``*.yml`` under the workflows directory."""
    prefix = globs.normalize(config.workflows_dir)
    prefix = prefix + "/" if prefix else ""
    return [f for f in all_files if f.startswith(prefix) and f.endswith(YAML_SUFFIXES)]


def load_snapshot(
    snapshot: Snapshot,
    last_good: Mapping[str, WorkflowDef] | None = None,
    last_good_config: RepoConfig | None = None,
) -> DesiredState:
    """Load every workflow of a revision.

    ``last_good`` maps a workflow file to its last valid definition: a file that
    fails validation now keeps that definition (marked ``stale``). An invalid
    ``podium.yaml`` keeps ``last_good_config`` (when given) instead of defaults.
    """
    config, problems = load_config(snapshot)
    if problems and last_good_config is not None:
        config = last_good_config
    all_files = FileIndex(snapshot.files())
    prefetch = getattr(snapshot, "prefetch", None)
    if prefetch is not None:  # one batch read instead of a round trip per file
        prefetch(workflow_files(all_files, config), MAX_FILE_BYTES)
    workflows: dict[str, WorkflowDef] = {}
    files: dict[str, str] = {}
    invalid: list[str] = []
    name_lines: dict[str, str] = {}
    for path in workflow_files(all_files, config):
        wf, file_problems = load_workflow(snapshot, path, config, all_files)
        if wf is not None and wf.name in workflows:
            first = name_lines[wf.name]
            file_problems = [
                Problem(
                    path,
                    _name_line(snapshot, path),
                    f"duplicate workflow name {wf.name!r} (also in {first})",
                )
            ]
            wf = None
        problems += file_problems
        if wf is None:
            invalid.append(path)
            kept = (last_good or {}).get(path)
            if kept is not None and kept.name not in workflows:
                workflows[kept.name] = WorkflowDef(
                    kept.spec, kept.file, kept.revision, kept.task_lines, kept.inputs, stale=True
                )
                name_lines[kept.name] = path
            continue
        workflows[wf.name] = wf
        files[path] = wf.name
        name_lines[wf.name] = path
    return DesiredState(
        revision=snapshot.revision,
        config=config,
        workflows=workflows,
        problems=tuple(sorted(problems)),
        invalid_files=tuple(invalid),
        files=files,
    )


def _name_line(snapshot: Snapshot, path: str) -> int:
    text, _ = read_text(snapshot, path)
    if text is None:
        return 1
    parsed = parse_yaml(text)
    return parsed.lines.line(("name",))


__all__ = [
    "CONFIG_FILE",
    "MAX_FILE_BYTES",
    "DesiredState",
    "Problem",
    "WorkflowDef",
    "load_config",
    "load_snapshot",
    "load_workflow",
    "workflow_files",
]
