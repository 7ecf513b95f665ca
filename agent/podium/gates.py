"""Approval gates as they bind a run: who approves, and whether the author may.

A commit cannot lower its own bar. The rules that gate a task come from the workflow as
it was at the last revision applied before the commit under review: its approver list,
its timeout, and the workflow's ``forbid_self_approval``. A task that was not gated there
takes the commit's own gate (adding a gate only raises the bar); a gate the commit removes
still applies to that commit. New rules take effect from the next commit on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
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


@dataclass(frozen=True)
class Rules:
    """A workflow's approval rules at one revision: what gates the commit after it."""

    revision: str
    forbid_self_approval: bool
    gates: Mapping[str, Gate]

    @classmethod
    def of(cls, wf: WorkflowDef) -> Rules:
        forbid_self = bool(wf.spec.forbid_self_approval)
        gates = {t.id: gate_of_task(t, forbid_self, wf.revision) for t in wf.spec.tasks}
        return cls(wf.revision, forbid_self, {t: g for t, g in gates.items() if g is not None})

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "forbid_self_approval": self.forbid_self_approval,
            "gates": {t: g.to_json() for t, g in self.gates.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rules:
        return cls(
            str(data["revision"]),
            bool(data["forbid_self_approval"]),
            {t: Gate.from_json(g) for t, g in data["gates"].items()},
        )


def gates_for(new: WorkflowDef, applied: Rules | None, tasks: Iterable[str]) -> dict[str, Gate]:
    """The gate of each of ``tasks`` for a run of ``new``, given the rules of the last
    applied revision (``None`` when nothing of the workflow was ever applied)."""
    current = Rules.of(new)
    forbid_self = (applied or current).forbid_self_approval
    gates: dict[str, Gate] = {}
    for task in tasks:
        gate = applied.gates.get(task) if applied is not None else None
        if gate is None:
            gate = current.gates.get(task)
        if gate is not None:
            gates[task] = replace(gate, forbid_self_approval=forbid_self)
    return gates


def gates_from(definition: Mapping[str, Any]) -> dict[str, Gate] | None:
    """The gates frozen in a run's definition (None for runs made before they were)."""
    raw = definition.get("gates")
    if raw is None:
        return None
    return {task: Gate.from_json(data) for task, data in raw.items()}


__all__ = ["Gate", "Rules", "gate_of", "gate_of_task", "gates_for", "gates_from"]
