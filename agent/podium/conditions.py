"""A workflow's condition (Ready, Reconciling, Stalled) as a plan sees it, written once at
the end of a pass for ``podium status``."""

from __future__ import annotations

from collections.abc import Mapping

from podium.planner import Plan, WorkflowPlan
from podium.store import Store


def workflow_condition(
    wp: WorkflowPlan, invalid: bool, refusal: str | None = None
) -> tuple[str, str, str]:
    """(Ready | Reconciling | Stalled, reason, message) of a workflow as its plan says."""
    if refusal is not None:
        return "Stalled", "EmptyRevisionRefused", refusal
    if invalid or wp.stale:
        return "Stalled", "ValidationFailed", f"{wp.file} is invalid at this revision"
    if wp.held_by is not None:
        return (
            "Stalled",
            "WaitingDecision",
            f"task {wp.held_task} was interrupted in run {wp.held_by.run_id}: retry, skip or"
            f" fail it (podium retry {wp.held_by.run_id})",
        )
    if wp.blocked_by is not None:
        return (
            "Stalled",
            "TaskFailed",
            f"task {wp.blocked_task} failed at this fingerprint in run {wp.blocked_by.run_id}"
            f" (podium retry {wp.blocked_by.run_id})",
        )
    if wp.active_run is not None or wp.outstanding:
        return "Reconciling", "Progressing", ""
    return "Ready", "Succeeded", ""


def record_conditions(
    store: Store, the_plan: Plan, stalled: Mapping[str, str], refusal: str | None = None
) -> None:
    """Write each workflow's condition and outstanding count as ``the_plan`` sees it
    (``stalled``: workflows an unexpected error stalled, with why); only changes are
    written."""
    problems = {p.file for p in the_plan.problems}
    rows = store.workflow_rows()
    with store.tx():
        for wp in the_plan.workflows:
            status = workflow_condition(wp, wp.file in problems, refusal)
            if wp.name in stalled:
                status = ("Stalled", "InternalError", stalled[wp.name])
            row = rows.get(wp.name)
            if row is None:
                continue
            current = (row["status"], row["reason"], row["message"], row["outstanding"])
            if current != (*status, len(wp.outstanding)):
                store.set_workflow_status(wp.name, *status, len(wp.outstanding))


__all__ = ["record_conditions", "workflow_condition"]
