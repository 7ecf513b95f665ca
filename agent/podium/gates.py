"""Approval gates as they bind a run: who approves, and whether the author may.

A commit cannot lower its own bar. The rules that gate a task come from the workflow as
it was at the last revision applied before the commit under review: its approver list,
its timeout, and the workflow's ``forbid_self_approval``. A task that was not gated there
takes the commit's own gate (adding a gate only raises the bar); a gate the commit removes
still applies to that commit. New rules take effect from the next commit on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from podium.spec.loader import WorkflowDef
from podium.spec.models import TaskBase


@dataclass(frozen=True)
class Gate:
    """The approval a task needs in one run."""

    approvers: tuple[str, ...]
    on_timeout: str = "reject"
    timeout: float | None = None
    message: str | None = None
    forbid_self_approval: bool = False
    rules_revision: str = ""
    """The revision these rules were read from."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["approvers"] = list(self.approvers)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Gate:
        return cls(
            approvers=tuple(data.get("approvers") or ()),
            on_timeout=str(data.get("on_timeout") or "reject"),
            timeout=data.get("timeout"),
            message=data.get("message"),
            forbid_self_approval=bool(data.get("forbid_self_approval")),
            rules_revision=str(data.get("rules_revision") or ""),
        )


def gate_of(wf: WorkflowDef, task: str, forbid_self: bool | None = None) -> Gate | None:
    """The gate ``wf`` itself gives ``task`` (its own forbid_self_approval unless given)."""
    if forbid_self is None:
        forbid_self = bool(wf.spec.forbid_self_approval)
    spec = next((t for t in wf.spec.tasks if t.id == task), None)
    return None if spec is None else gate_of_task(spec, forbid_self, wf.revision)


def gate_of_task(spec: TaskBase, forbid_self: bool, revision: str) -> Gate | None:
    """The gate a task's own ``approval:`` gives it."""
    approval = spec.approval
    if approval is None:
        return None
    return Gate(
        approvers=tuple(approval.approvers),
        on_timeout=approval.on_timeout,
        timeout=approval.timeout,
        message=approval.message,
        forbid_self_approval=forbid_self,
        rules_revision=revision,
    )


def gates_for(
    new: WorkflowDef, applied: WorkflowDef | None, tasks: Iterable[str]
) -> dict[str, Gate]:
    """The gate of each of ``tasks`` for a run of ``new``, given the workflow as it was at the
    last applied revision (``None`` when nothing of it was ever applied)."""
    forbid_self = bool((applied or new).spec.forbid_self_approval)
    gates: dict[str, Gate] = {}
    for task in tasks:
        old = gate_of(applied, task, forbid_self) if applied is not None else None
        gate = old if old is not None else gate_of(new, task, forbid_self)
        if gate is not None:
            gates[task] = gate
    return gates


def gates_from(definition: Mapping[str, Any]) -> dict[str, Gate] | None:
    """The gates frozen in a run's definition (None for runs made before they were)."""
    raw = definition.get("gates")
    if raw is None:
        return None
    return {task: Gate.from_json(data) for task, data in raw.items()}


__all__ = ["Gate", "gate_of", "gate_of_task", "gates_for", "gates_from"]
