"""Plan rendering: terraform-style text, a stable JSON document, pull-request markdown."""

from __future__ import annotations

import json
from typing import Any

from podium.planner import Plan, Reason, WorkflowPlan

SYMBOL = {Reason.NEW: "+", Reason.SCHEDULED: "⟳"}


def _symbol(reason: Reason) -> str:
    return SYMBOL.get(reason, "~")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 task``, ``2 tasks`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def _removal(w: WorkflowPlan) -> str:
    return "removed (rollback)" if w.prune else "removed (forget)"


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
                "held": None
                if w.held_by is None
                else {
                    "task": w.held_task,
                    "run_id": w.held_by.run_id,
                    "fingerprint": w.held_by.fingerprint,
                    "phase": w.held_by.phase,
                    "reason": w.held_by.reason,
                },
                "prune": w.prune,
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
        "to_roll_back": plan.to_roll_back,
        "to_forget": plan.to_forget,
        "removed_workflows": [{"name": n, "tasks": list(t)} for n, t in plan.removed_workflows],
        "problems": [{"file": p.file, "line": p.line, "message": p.message} for p in plan.problems],
    }


def plan_json(plan: Plan, source: str) -> str:
    return json.dumps(plan_document(plan, source), indent=2, sort_keys=False)


def notes(w: WorkflowPlan) -> list[str]:
    notes = []
    if w.stale:
        notes.append(
            f"file invalid at this revision: keeping last good definition ({w.revision[:7]})"
        )
    if w.held_by is not None:
        run = w.held_by.run_id
        notes.append(
            f"held: task {w.held_task} ({w.held_by.phase}) was interrupted in run {run} and"
            f" is not idempotent: podium retry {run}, or podium skip|fail {run} {w.held_task}"
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
        if not w.outstanding and not w.removed and not notes(w):
            lines.append(f"  {w.name}: up to date ({plural(len(w.up_to_date), 'task')})")
            continue
        lines.append(f"  {w.name}  ({w.file})")
        width = max((len(t.id) for t in w.outstanding), default=4)
        for t in w.outstanding:
            gate = "  [needs approval]" if t.needs_approval else ""
            lines.append(f"    {_symbol(t.reason)} {t.id.ljust(width)}  {t.reason}{gate}")
        for r in w.removed:
            lines.append(f"    - {r.ljust(width)}  {_removal(w)}")
        if w.up_to_date:
            lines.append(f"    {len(w.up_to_date)} up to date")
        lines.extend(f"    ! {n}" for n in notes(w))
    for name, tasks in plan.removed_workflows:
        lines.append(f"  - {name}: workflow removed ({plural(len(tasks), 'task')} forgotten)")
    if plan.problems:
        lines += ["", "Problems:"] + [f"  {p}" for p in plan.problems]
    lines += ["", summary(plan)]
    return "\n".join(lines)


def summary(plan: Plan) -> str:
    """The plan's last line: what a reconcile would do, or why it cannot say."""
    n = plan.outstanding_count
    nwf = sum(1 for w in plan.workflows if w.outstanding)
    if n or plan.to_roll_back or plan.to_forget:
        line = (
            f"Plan: {plural(n, 'task')} to run in {plural(nwf, 'workflow')},"
            f" {plan.to_roll_back} to roll back, {plan.to_forget} to forget."
        )
    elif plan.problems:
        line = "No changes to the valid workflows."
    else:
        return "No changes. Everything is up to date."
    if plan.problems:
        line += f" {plural(len(plan.problems), 'problem')} to fix first (see above)."
    return line


def plan_markdown(plan: Plan, source: str) -> str:
    n = plan.outstanding_count
    out = [f"### Podium plan for `{plan.revision[:12]}`", ""]
    nwf = sum(1 for w in plan.workflows if w.outstanding)
    if n or plan.to_roll_back or plan.to_forget:
        out.append(
            f"**{plural(n, 'task')} to run** in {plural(nwf, 'workflow')},"
            f" {plan.to_roll_back} to roll back, {plan.to_forget} to forget."
        )
    elif plan.problems:
        out.append(
            f"**No changes** to the valid workflows; {plural(len(plan.problems), 'problem')}."
        )
    else:
        out.append("**No changes.** Everything is up to date.")
    for w in plan.workflows:
        if not w.outstanding and not w.removed and not notes(w):
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
            out.append(f"| - | `{r}` | {_removal(w)} | |")
        if w.up_to_date:
            out += ["", f"{plural(len(w.up_to_date), 'task')} up to date."]
        out += [f"> {note}" for note in notes(w)]
    if plan.problems:
        out += ["", "#### Problems", ""] + [f"- `{p}`" for p in plan.problems]
    return "\n".join(out) + "\n"


__all__ = ["notes", "plan_document", "plan_json", "plan_markdown", "plan_text", "plural", "summary"]
