"""Plain records read from the state store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from podium.states import RunStatus, TaskStatus


@dataclass(frozen=True)
class RunRecord:
    id: int
    workflow: str
    revision: str
    status: RunStatus
    trigger: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    definition: dict[str, Any]
    error: str | None = None
    slot: float | None = None
    superseded_by: int | None = None

    @property
    def is_failure(self) -> bool:
        """The run failed (a prune run, which rolls back on purpose, did not)."""
        if self.status is RunStatus.ROLLED_BACK:
            return self.trigger != "prune"
        return self.status in (RunStatus.FAILED, RunStatus.ROLLBACK_FAILED)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        return None if end is None else end - self.started_at


@dataclass(frozen=True)
class RunTaskRecord:
    run_id: int
    task: str
    status: TaskStatus
    fingerprint: str
    spec_hash: str
    inputs_hash: str
    reason: str
    previous: dict[str, Any] | None
    attempts: int
    completed_seq: int | None
    started_at: float | None
    finished_at: float | None
    error: str | None
    not_before: float | None = None


@dataclass(frozen=True)
class AttemptRecord:
    id: int
    run_id: int
    task: str
    number: int
    phase: str
    status: str
    exit_code: int | None
    http_status: int | None
    started_at: float
    finished_at: float | None
    pid: int | None
    log_path: str | None
    output_tail: str | None
    error: str | None


@dataclass(frozen=True)
class ApprovalRecord:
    id: int
    run_id: int
    task: str
    fingerprint: str
    revision: str
    status: str
    approvers: list[str]
    requested_at: float
    deadline: float | None
    on_timeout: str
    author_email: str | None
    decided_by: str | None
    decided_at: float | None
    comment: str | None
    via: str | None
    committer_email: str | None = None
    forbid_self_approval: bool | None = None
    """Four-eyes, as bound when the request was made (from the last applied revision)."""


@dataclass(frozen=True)
class EventRecord:
    id: int
    ts: float
    kind: str
    workflow: str | None
    run_id: int | None
    task: str | None
    actor: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    notifier: str
    target: str | None
    key: str
    attempts: int
    event: EventRecord


def dumps(value: Any) -> str:
    """Canonical JSON for stored columns."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def loads(text: str | None) -> Any:
    """A stored JSON column (None stays None)."""
    return None if text is None else json.loads(text)


def loads_definition(text: str) -> dict[str, Any]:
    """A run's stored definition; a damaged one reads as empty (whoever needs its content
    fails on that run alone, and listings still show the run)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


__all__ = [
    "ApprovalRecord",
    "AttemptRecord",
    "EventRecord",
    "OutboxItem",
    "RunRecord",
    "RunTaskRecord",
    "dumps",
    "loads",
    "loads_definition",
]
