"""Load and validate the desired state of one revision: ``podium.yaml`` plus workflow files.

Every problem is reported as ``file:line: message`` and all problems of a file are
reported, not only the first. Loading never raises for bad input: a file that takes
longer than :data:`LOAD_BUDGET_SECONDS` to load, or that trips anything unexpected,
is a problem of that file, and the other files load as usual. Only a failure to read
the source itself (:class:`~podium.errors.SourceError`) passes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import ValidationError

from podium.errors import SourceError
from podium.source.base import Snapshot
from podium.spec import globs
from podium.spec.deadline import Deadline, LoadTimeout
from podium.spec.models import RepoConfig, WorkflowBase, workflow_model
from podium.spec.paths import FileIndex, raw_path_problems, resolve_inputs
from podium.spec.problems import Problem, graph_problems, kind_problems, pydantic_problems
from podium.spec.schema import config_schema, workflow_schema
from podium.spec.yamlio import parse_yaml

MAX_FILE_BYTES = 1024 * 1024
CONFIG_FILE = "podium.yaml"
YAML_SUFFIXES = (".yaml", ".yml")
LOAD_BUDGET_SECONDS = 5.0
"""Time one file may take to load; past it the file is a problem ("took too long")."""

_workflow_schema = cache(workflow_schema)
_config_schema = cache(config_schema)


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


def _unexpected(path: str, exc: Exception) -> Problem:
    """A problem for whatever went wrong that the checks did not foresee."""
    message = " ".join(str(exc).split())
    if len(message) > 200:
        message = message[:197] + "..."
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return Problem(path, 1, f"file could not be loaded ({detail})")


def load_config(snapshot: Snapshot) -> tuple[RepoConfig, list[Problem]]:
    """``podium.yaml`` (optional) → config; defaults when missing or invalid."""
    if not snapshot.exists(CONFIG_FILE):
        return RepoConfig(), []
    deadline = Deadline(LOAD_BUDGET_SECONDS)
    try:
        return _load_config(snapshot, deadline)
    except LoadTimeout:
        return RepoConfig(), [Problem(CONFIG_FILE, 1, deadline.message())]
    except SourceError:
        raise
    except Exception as exc:  # defence in depth: never raise for a bad file
        return RepoConfig(), [_unexpected(CONFIG_FILE, exc)]


def _load_config(snapshot: Snapshot, deadline: Deadline) -> tuple[RepoConfig, list[Problem]]:
    text, problem = read_text(snapshot, CONFIG_FILE)
    if text is None:
        return RepoConfig(), [problem] if problem else []
    deadline.enter("parsing YAML")
    parsed = parse_yaml(text, deadline.check)
    problems = [Problem(CONFIG_FILE, p.line, p.message) for p in parsed.problems]
    if parsed.data is None and not problems:
        return RepoConfig(), []
    if parsed.data is None:
        return RepoConfig(), problems
    if not isinstance(parsed.data, dict):
        return RepoConfig(), [Problem(CONFIG_FILE, 1, "podium.yaml must be a mapping")]
    deadline.enter("validating")
    try:
        config = RepoConfig.model_validate(parsed.data)
    except ValidationError as exc:
        return RepoConfig(), problems + pydantic_problems(
            CONFIG_FILE,
            parsed.data,
            parsed.lines,
            exc,
            _config_schema,
            deadline.check,
            parsed.invalid,
        )
    return config, problems


def load_workflow(
    snapshot: Snapshot, path: str, config: RepoConfig, all_files: list[str] | None = None
) -> tuple[WorkflowDef | None, list[Problem]]:
    """Validate one workflow file; returns the definition (if valid) and all its problems.

    Never raises for a bad file (only a :class:`~podium.errors.SourceError` from reading
    the snapshot passes through).
    """
    deadline = Deadline(LOAD_BUDGET_SECONDS)
    try:
        return _load_workflow(snapshot, path, config, all_files, deadline)
    except LoadTimeout:
        return None, [Problem(path, 1, deadline.message())]
    except SourceError:
        raise
    except Exception as exc:  # defence in depth: never raise for a bad file
        return None, [_unexpected(path, exc)]


def _load_workflow(
    snapshot: Snapshot,
    path: str,
    config: RepoConfig,
    all_files: list[str] | None,
    deadline: Deadline,
) -> tuple[WorkflowDef | None, list[Problem]]:
    text, problem = read_text(snapshot, path)
    if text is None:
        return None, [problem] if problem else []
    deadline.enter("parsing YAML")
    parsed = parse_yaml(text, deadline.check)
    problems = [Problem(path, p.line, p.message) for p in parsed.problems]
    data = parsed.data
    if data is None:
        if not problems:
            problems.append(Problem(path, 1, "workflow file is empty"))
        return None, problems
    if not isinstance(data, dict):
        return None, [*problems, Problem(path, 1, "a workflow file must be a mapping")]
    deadline.enter("checking tasks and needs")
    problems += kind_problems(path, data, parsed.lines)
    problems += graph_problems(path, data, parsed.lines, deadline.check)
    files = all_files if all_files is not None else snapshot.files()
    deadline.enter("validating")
    try:
        spec = workflow_model().model_validate(data)
    except ValidationError as exc:
        problems += pydantic_problems(
            path, data, parsed.lines, exc, _workflow_schema, deadline.check, parsed.invalid
        )
        deadline.enter("matching inputs")
        problems += raw_path_problems(path, data, parsed.lines, files, deadline.check)
        if not problems:  # never reject a file without saying why
            problems.append(Problem(path, 1, f"invalid workflow: {exc.error_count()} error(s)"))
        return None, _dedupe(problems)
    deadline.enter("matching inputs")
    inputs, input_problems = resolve_inputs(
        path, spec, parsed.lines, snapshot, files, deadline.check
    )
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
    """Line of ``name:`` in a file that loaded (so parsing it again is quick and safe)."""
    text, _ = read_text(snapshot, path)
    if text is None:
        return 1
    parsed = parse_yaml(text)
    return parsed.lines.line(("name",))


__all__ = [
    "CONFIG_FILE",
    "LOAD_BUDGET_SECONDS",
    "MAX_FILE_BYTES",
    "DesiredState",
    "Problem",
    "WorkflowDef",
    "load_config",
    "load_snapshot",
    "load_workflow",
    "workflow_files",
]
