"""Plan rendering: terraform-style text, a stable JSON document, pull-request markdown."""

from __future__ import annotations

import json
from typing import Any

from podium.planner import Plan, Reason, WorkflowPlan

SYMBOL = {Reason.NEW: "+", Reason.SCHEDULED: "⟳"}


def _symbol(reason: Reason) -> str:
    return SYMBOL.get(reason, "~")


def plan_document(plan: Plan, source: str) -> dict[str, Any]:
    """The stable machine-readable plan (``--format json``)."""
    return {
        "format_version": 1,
        "source": source,
        "revision": plan.revision,
        "outstanding": plan.outstanding_count,
        "workflows": [
            {
                "name": w.name,
                "file": w.file,
                "revision": w.revision,
                "stale": w.stale,
                "active_run": w.active_run,
                "scheduled_slot": w.slot,
                "blocked": None
                if w.blocked_by is None
                else {
                    "task": w.blocked_task,
                    "run_id": w.blocked_by.run_id,
                    "fingerprint": w.blocked_by.fingerprint,
                },
                "tasks": [
                    {
                        "id": t.id,
                        "action": "create" if t.reason is Reason.NEW else "update",
                        "reason": str(t.reason),
                        "fingerprint": t.fingerprint,
                        "previous": t.previous,
                        "needs_approval": t.needs_approval,
                    }
                    for t in w.outstanding
                ],
                "up_to_date": list(w.up_to_date),
                "removed": list(w.removed),
            }
            for w in plan.workflows
        ],
        "removed_workflows": [{"name": n, "tasks": list(t)} for n, t in plan.removed_workflows],
        "problems": [{"file": p.file, "line": p.line, "message": p.message} for p in plan.problems],
    }


def plan_json(plan: Plan, source: str) -> str:
    return json.dumps(plan_document(plan, source), indent=2, sort_keys=False)


def _notes(w: WorkflowPlan) -> list[str]:
    notes = []
    if w.stale:
        notes.append(
            f"file invalid at this revision: keeping last good definition ({w.revision[:7]})"
        )
    if w.blocked_by is not None:
        notes.append(
            f"blocked: task {w.blocked_task} failed at this fingerprint in run"
            f" {w.blocked_by.run_id} (podium retry {w.blocked_by.run_id})"
        )
    if w.active_run is not None:
        notes.append(f"run {w.active_run} in progress")
    return notes


def plan_text(plan: Plan, source: str) -> str:
    lines = [f"Podium plan for {source} at {plan.revision[:12]}", ""]
    for w in plan.workflows:
        if not w.outstanding and not w.removed and not _notes(w):
            lines.append(f"  {w.name}: up to date ({len(w.up_to_date)} tasks)")
            continue
        lines.append(f"  {w.name}  ({w.file})")
        width = max((len(t.id) for t in w.outstanding), default=4)
        for t in w.outstanding:
            gate = "  [needs approval]" if t.needs_approval else ""
            lines.append(f"    {_symbol(t.reason)} {t.id.ljust(width)}  {t.reason}{gate}")
        for r in w.removed:
            lines.append(f"    - {r.ljust(width)}  removed")
        if w.up_to_date:
            lines.append(f"    {len(w.up_to_date)} up to date")
        lines.extend(f"    ! {n}" for n in _notes(w))
    for name, tasks in plan.removed_workflows:
        lines.append(f"  - {name}: workflow removed ({len(tasks)} tasks forgotten)")
    if plan.problems:
        lines += ["", "Problems:"] + [f"  {p}" for p in plan.problems]
    n = plan.outstanding_count
    nwf = sum(1 for w in plan.workflows if w.outstanding)
    removed = sum(len(w.removed) for w in plan.workflows) + sum(
        len(t) for _, t in plan.removed_workflows
    )
    lines.append("")
    if n or removed:
        lines.append(f"Plan: {n} task(s) to run in {nwf} workflow(s), {removed} to forget.")
    else:
        lines.append("No changes. Everything is up to date.")
    return "\n".join(lines)


def plan_markdown(plan: Plan, source: str) -> str:
    n = plan.outstanding_count
    out = [f"### Podium plan for `{plan.revision[:12]}`", ""]
    out.append(
        f"**{n} task(s) to run** in {sum(1 for w in plan.workflows if w.outstanding)} workflow(s)."
        if n
        else "**No changes.** Everything is up to date."
    )
    for w in plan.workflows:
        if not w.outstanding and not w.removed and not _notes(w):
            continue
        out += [
            "",
            f"#### `{w.name}` ({w.file})",
            "",
            "| | task | reason | approval |",
            "|---|---|---|---|",
        ]
        for t in w.outstanding:
            out.append(
                f"| {_symbol(t.reason)} | `{t.id}` | {t.reason} |"
                f" {'required' if t.needs_approval else ''} |"
            )
        for r in w.removed:
            out.append(f"| - | `{r}` | removed | |")
        if w.up_to_date:
            out += ["", f"{len(w.up_to_date)} task(s) up to date."]
        out += [f"> {note}" for note in _notes(w)]
    if plan.problems:
        out += ["", "#### Problems", ""] + [f"- `{p}`" for p in plan.problems]
    return "\n".join(out) + "\n"


__all__ = ["plan_document", "plan_json", "plan_markdown", "plan_text"]
