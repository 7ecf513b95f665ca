"""The workflow format as pydantic models: what a workflow file may say.

Unknown keys are refused everywhere, and types are strict: ``idempotent: "yes"`` or
``concurrency: "4"`` is an error, not a guess. The documented short forms stay:
durations as numbers or text (``90``, ``10m``), ``retries: 2``, numbers and booleans
as environment values. Task kinds are not hard-coded: the task model is built from
the kind registry (:mod:`podium.kinds`), one optional field per kind, and a task must
set exactly one of them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    create_model,
    field_validator,
    model_validator,
)

from podium.durations import parse_duration
from podium.kinds import registry
from podium.spec.problems import did_you_mean, show

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


Duration = Annotated[
    float,
    # the schema says what a file may contain (``90`` or ``"10m"``), not the parsed float
    BeforeValidator(parse_duration, json_schema_input_type=float | str),
    PlainSerializer(lambda v: v, return_type=float),
    Field(json_schema_extra={"examples": ["30s", "10m", "1h30m"]}),
]


def _scalar_to_str(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


EnvScalar = Annotated[
    str, BeforeValidator(_scalar_to_str, json_schema_input_type=str | int | float | bool)
]


class OnFailure(StrEnum):
    ROLLBACK = "rollback"
    STOP = "stop"
    CONTINUE = "continue"


class EventKind(StrEnum):
    """Events a notifier can subscribe to (``notify.<notifier>.on``)."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TASK_FAILED = "task_failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    APPROVAL_SUPERSEDED = "approval_superseded"
    APPROVAL_EXPIRED = "approval_expired"
    VALIDATION_FAILED = "validation_failed"
    SOURCE_UNREACHABLE = "source_unreachable"
    SOURCE_RECOVERED = "source_recovered"
    WAITING_DECISION = "waiting_decision"
    CANCELLED = "cancelled"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


# enums are the one lax spot: their values are strings in the file
FailurePolicy = Annotated[OnFailure, Strict(False)]
Event = Annotated[EventKind, Strict(False)]


class SecretRef(_Strict):
    """``{secret: NAME}``: resolved from the agent's environment at run start, never stored."""

    secret: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


def _int_to_retries(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"count": value}
    return value


class RetryPolicy(_Strict):
    """Retries after a failed attempt: ``retries: 2`` or the full mapping."""

    count: int = Field(default=0, ge=0, le=100)
    delay: Duration = 1.0
    backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    max_delay: Duration = 300.0
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)


Retries = Annotated[
    RetryPolicy, BeforeValidator(_int_to_retries, json_schema_input_type=int | RetryPolicy)
]


class ApprovalSpec(_Strict):
    """A human gate before the task starts."""

    approvers: list[str] = Field(min_length=1)
    timeout: Duration | None = None
    on_timeout: Literal["reject", "approve"] = "reject"
    message: str | None = None

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.strip():
                raise ValueError("approver must not be empty")
        return value


class NotifyRoute(_Strict):
    """Where one notifier sends a workflow's events, and which ones."""

    channel: str | None = None
    on: list[Event] = Field(
        default_factory=lambda: [
            EventKind.FAILED,
            EventKind.ROLLED_BACK,
            EventKind.ROLLBACK_FAILED,
            EventKind.APPROVAL_REQUESTED,
        ]
    )
    mention: str | None = None


def _check_relative(value: str) -> str:
    if value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"path {value!r} escapes the repository (absolute paths are refused)")
    parts = [p for p in value.replace("\\", "/").split("/") if p not in ("", ".")]
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise ValueError(f"path {value!r} escapes the repository")
    return value


RepoPath = Annotated[str, AfterValidator(_check_relative)]


class TaskBase(_Strict):
    """Fields every task has, whatever its kind."""

    id: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    needs: list[str] = Field(default_factory=list)
    inputs: list[RepoPath] = Field(default_factory=list)
    env: dict[str, EnvScalar | SecretRef] = Field(default_factory=dict)
    workdir: RepoPath | None = None
    timeout: Duration | None = None
    retries: Retries = Field(default_factory=RetryPolicy)
    rollback: Any = None
    idempotent: bool = True
    approval: ApprovalSpec | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"environment variable name {name!r} is not valid")
        return value

    @field_validator("rollback", mode="before")
    @classmethod
    def _rollback(cls, value: object) -> object:
        return _validate_rollback(value)

    @model_validator(mode="after")
    def _one_kind(self) -> TaskBase:
        set_kinds = [n for n in registry() if getattr(self, n, None) is not None]
        if not set_kinds:
            raise ValueError(
                f"task {self.id!r} has no task kind: set exactly one of {', '.join(registry())}"
            )
        if len(set_kinds) > 1:
            raise ValueError(
                f"task {self.id!r} sets {len(set_kinds)} task kinds"
                f" ({', '.join(set_kinds)}): set exactly one"
            )
        return self

    @property
    def kind(self) -> str:
        """The task kind (the one kind key that is set)."""
        for name in registry():
            if getattr(self, name, None) is not None:
                return name
        raise AssertionError("validated task has no kind")  # pragma: no cover

    @property
    def config(self) -> Any:
        """The kind's configuration value."""
        return getattr(self, self.kind)

    def rollback_action(self) -> tuple[str, Any] | None:
        """``(kind, config)`` of the rollback action, if any."""
        if self.rollback is None:
            return None
        if isinstance(self.rollback, str):
            return ("run", self.rollback)
        kind, value = next(iter(self.rollback.items()))
        return (str(kind), value)


def _validate_rollback(value: object) -> object:
    from pydantic import TypeAdapter

    if value is None or isinstance(value, str):
        if isinstance(value, str) and not value.strip():
            raise ValueError("rollback command must not be empty")
        return value
    if not isinstance(value, dict):
        raise ValueError("rollback must be a shell command or a mapping with one task kind")
    kinds = registry()
    unknown = [k for k in value if k not in kinds]
    if unknown:
        raise ValueError(
            f"rollback: unknown task kind {show(unknown[0])} (one of {sorted(kinds)})"
            + did_you_mean(unknown[0], kinds)
        )
    if len(value) != 1:
        raise ValueError("rollback must name exactly one task kind")
    name, config = next(iter(value.items()))
    return {name: TypeAdapter(kinds[name].config_type).validate_python(config)}


@cache
def task_model() -> type[TaskBase]:
    """The task model: common fields plus one optional field per registered kind."""
    fields: dict[str, Any] = {
        name: (kind.config_type | None, None) for name, kind in registry().items()
    }
    model: type[TaskBase] = create_model("Task", __base__=TaskBase, **fields)
    return model


def _check_cron(value: str) -> str:
    from croniter import croniter  # only files with a schedule pay for it

    if not croniter.is_valid(value):
        raise ValueError(f"invalid cron expression {value!r}")
    return value


Cron = Annotated[str, AfterValidator(_check_cron)]


class WorkflowDefaults(_Strict):
    """Repo-wide defaults in ``podium.yaml``; a workflow's own keys win."""

    on_failure: FailurePolicy | None = None
    concurrency: int | None = Field(default=None, ge=1, le=1000)
    notify: dict[str, NotifyRoute] | None = None
    forbid_self_approval: bool | None = None


class DirectorySpec(_Strict):
    """A static directory of people and groups (used to resolve approvers)."""

    users: dict[str, list[str]] = Field(
        default_factory=dict,
        description="user id -> aliases (emails, handles) that identify the same person",
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group name (without @) -> members"
    )


class RepoConfig(_Strict):
    """``podium.yaml`` at the repository (sub-path) root. Every key is optional."""

    workflows_dir: RepoPath = "workflows"
    defaults: WorkflowDefaults = Field(default_factory=WorkflowDefaults)
    directory: DirectorySpec = Field(default_factory=DirectorySpec)
    operators: list[str] = Field(default_factory=list)
    notify: dict[str, NotifyRoute] = Field(default_factory=dict)
    forbid_self_approval: bool = False
    allow_empty: bool = Field(
        default=False,
        description=(
            "allow a revision with no workflows while tasks are applied"
            " (otherwise such a revision is refused)"
        ),
    )


class WorkflowBase(_Strict):
    """A workflow file's top-level keys; ``tasks`` uses the registry-built task model."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    on_failure: FailurePolicy = OnFailure.ROLLBACK
    concurrency: int = Field(default=4, ge=1, le=1000)
    schedule: Cron | None = None
    params: dict[str, EnvScalar] = Field(default_factory=dict)
    notify: dict[str, NotifyRoute] | None = None
    forbid_self_approval: bool | None = None
    retry_failed: bool = False
    prune: bool = False
    """Run the rollback of tasks removed from Git (else they are only forgotten)."""
    tasks: list[TaskBase] = Field(min_length=1)
    """Typed here for readers; :func:`workflow_model` narrows it to the registry's task model."""

    @field_validator("params")
    @classmethod
    def _param_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"parameter name {name!r} is not a valid environment name")
        return value


@cache
def workflow_model() -> type[WorkflowBase]:
    """The workflow model with ``tasks`` typed by :func:`task_model`."""
    tasks_type: Any = list[task_model()]  # type: ignore[misc]
    model: type[WorkflowBase] = create_model(
        "Workflow",
        __base__=WorkflowBase,
        tasks=(tasks_type, Field(min_length=1)),
    )
    return model


__all__ = [
    "ApprovalSpec",
    "DirectorySpec",
    "Duration",
    "EventKind",
    "NotifyRoute",
    "OnFailure",
    "RepoConfig",
    "RetryPolicy",
    "SecretRef",
    "TaskBase",
    "WorkflowBase",
    "WorkflowDefaults",
    "task_model",
    "workflow_model",
]
