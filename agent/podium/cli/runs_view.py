"""Tables and documents for ``runs``, ``show``, ``logs`` and ``status``."""

from __future__ import annotations

import codecs
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from podium.durations import format_duration
from podium.errors import NotFoundError
from podium.store import Store
from podium.store.records import RunRecord

STYLE = {
    "succeeded": "green",
    "failed": "red",
    "rolled_back": "yellow",
    "rollback_failed": "bold red",
    "running": "cyan",
    "waiting_approval": "magenta",
    "waiting_decision": "magenta",
    "cancelled": "dim",
    "pending": "dim",
    "timed_out": "red",
    "skipped": "dim",
    "interrupted": "magenta",
    "rolling_back": "yellow",
}


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def run_summary_rows(store: Store, runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        counts = store.task_status_counts(r.id)
        rows.append(
            {
                "id": r.id,
                "workflow": r.workflow,
                "revision": r.revision,
                "status": str(r.status),
                "trigger": r.trigger,
                "created_at": r.created_at,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "duration": r.duration,
                "tasks": counts,
                "error": r.error,
            }
        )
    return rows


def summary_table(store: Store, runs: Sequence[RunRecord]) -> None:
    from rich.table import Table

    table = Table("run", "workflow", "revision", "status", "tasks", "duration", "started")
    for row in run_summary_rows(store, runs):
        style = STYLE.get(row["status"], "")
        tasks = ", ".join(f"{n} {s}" for s, n in sorted(row["tasks"].items()))
        table.add_row(
            str(row["id"]),
            row["workflow"],
            row["revision"][:7],
            f"[{style}]{row['status']}[/]" if style else row["status"],
            tasks,
            format_duration(row["duration"]) if row["duration"] is not None else "",
            _when(row["started_at"]),
        )
    _console().print(table)


def _run_order(run: RunRecord, tasks: dict[str, Any]) -> list[str]:
    """Tasks in the order they ran (started first, by start time), then those that did
    not start, in the workflow's order."""
    defined = [t.get("id") for t in (run.definition.get("spec") or {}).get("tasks") or []]
    position = {name: i for i, name in enumerate(defined)}
    return sorted(
        tasks,
        key=lambda n: (
            tasks[n].started_at is None,
            tasks[n].started_at or 0.0,
            position.get(n, len(position)),
        ),
    )


def run_detail(store: Store, run_id: int) -> dict[str, Any]:
    run = store.get_run(run_id)
    stored = store.run_tasks(run_id)
    tasks = {name: stored[name] for name in _run_order(run, stored)}
    return {
        **run_summary_rows(store, [run])[0],
        "file": run.definition.get("file"),
        "task_details": [
            {
                "id": t.task,
                "status": str(t.status),
                "reason": t.reason,
                "fingerprint": t.fingerprint,
                "attempts": t.attempts,
                "error": t.error,
                "completed_seq": t.completed_seq,
            }
            for t in tasks.values()
        ],
        "attempts": [
            {
                "task": a.task,
                "number": a.number,
                "phase": a.phase,
                "status": a.status,
                "exit_code": a.exit_code,
                "http_status": a.http_status,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "error": a.error,
                "log_path": a.log_path,
                "output_tail": a.output_tail,
            }
            for a in store.attempts(run_id)
        ],
        "approvals": [
            {
                "id": a.id,
                "task": a.task,
                "status": a.status,
                "approvers": a.approvers,
                "fingerprint": a.fingerprint,
                "requested_at": a.requested_at,
                "deadline": a.deadline,
                "decided_by": a.decided_by,
                "decided_at": a.decided_at,
                "comment": a.comment,
                "via": a.via,
            }
            for a in store.approvals(run_id=run_id)
        ],
        "events": [
            {"ts": e.ts, "kind": e.kind, "task": e.task, "actor": e.actor, "data": e.data}
            for e in store.events(run_id=run_id)
        ],
    }


def show_run(store: Store, run_id: int) -> None:
    from rich.table import Table

    d = run_detail(store, run_id)
    console = _console()
    style = STYLE.get(d["status"], "")
    dur = format_duration(d["duration"]) if d["duration"] is not None else "-"
    console.print(
        f"Run {d['id']}  {d['workflow']}  [{style}]{d['status']}[/]  revision {d['revision'][:12]}"
        f"  trigger {d['trigger']}  duration {dur}"
    )
    if d["error"]:
        console.print(f"  {d['error']}")
    table = Table("task", "status", "reason", "attempts", "error")
    for t in d["task_details"]:
        st = STYLE.get(t["status"], "")
        table.add_row(
            t["id"],
            f"[{st}]{t['status']}[/]" if st else t["status"],
            t["reason"],
            str(t["attempts"]),
            t["error"] or "",
        )
    console.print(table)
    if d["attempts"]:
        tt = Table("task", "phase", "attempt", "status", "exit", "duration", "started", "error")
        for a in d["attempts"]:
            st = STYLE.get(a["status"], "")
            took = (
                format_duration(a["finished_at"] - a["started_at"])
                if a["finished_at"] is not None
                else ""
            )
            exit_code = a["exit_code"] if a["exit_code"] is not None else a["http_status"]
            tt.add_row(
                a["task"],
                a["phase"],
                str(a["number"]),
                f"[{st}]{a['status']}[/]" if st else a["status"],
                "" if exit_code is None else str(exit_code),
                took,
                _when(a["started_at"]),
                a["error"] or "",
            )
        console.print(tt)
    if d["approvals"]:
        at = Table("approval", "task", "status", "approvers", "decided by", "comment")
        for a in d["approvals"]:
            at.add_row(
                str(a["id"]),
                a["task"],
                a["status"],
                ", ".join(a["approvers"]),
                a["decided_by"] or "",
                a["comment"] or "",
            )
        console.print(at)
    if d["events"]:
        et = Table("time", "event", "task", "by", "details")
        for e in d["events"]:
            details = ", ".join(
                f"{k}={v}"
                for k, v in sorted(e["data"].items())
                if k not in ("tasks", "output_tail") and v not in (None, "", [], {})
            )
            et.add_row(_when(e["ts"]), e["kind"], e["task"] or "", e["actor"] or "", details)
        console.print(et)


def print_logs(
    store: Store,
    run_id: int,
    task: str,
    attempt: int | None,
    phase: str,
    follow: bool,
    as_json: bool,
) -> None:
    store.get_run(run_id)  # "no run N" before "no task T"
    store.get_run_task(run_id, task)
    attempts = [a for a in store.attempts(run_id, task) if a.phase == phase]
    if attempt is not None:
        attempts = [a for a in attempts if a.number == attempt]
    if not attempts:
        raise NotFoundError(
            f"run {run_id} task {task} has no {phase} attempt"
            + (f" {attempt}" if attempt is not None else "")
        )
    chosen = attempts[-1]
    path = Path(chosen.log_path or "")
    if as_json:
        text = path.read_text(errors="replace") if path.is_file() else ""
        click.echo(
            json.dumps(
                {
                    "run_id": run_id,
                    "task": task,
                    "attempt": chosen.number,
                    "status": chosen.status,
                    "log": text,
                }
            )
        )
        return
    offset = 0
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # chunks split characters
    while True:
        # status first: once it says finished, the read below sees the complete file
        current = store.get_attempt(chosen.id)
        if path.is_file():
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
                offset += len(chunk)
                if chunk:
                    sys.stdout.write(decoder.decode(chunk))
                    sys.stdout.flush()
        if not follow or current.status != "running":
            if not path.is_file() and current.output_tail:
                click.echo(current.output_tail)
            return
        time.sleep(0.2)


def status_rows(store: Store) -> list[dict[str, Any]]:
    """Per workflow: its condition as the last reconcile pass planned it (outstanding count
    included), with the live status of its last run laid over it."""
    from podium.states import RUN_TERMINAL, RunStatus

    files = store.files_all()
    problems_by_wf: dict[str, list[str]] = {}
    orphan_problems: list[str] = []
    for row in files.values():
        if row["problems"]:
            if row.get("workflow"):
                problems_by_wf.setdefault(row["workflow"], []).extend(row["problems"])
            else:
                orphan_problems.extend(row["problems"])
    out = []
    applied_revisions = _applied_revisions(store)
    failures = store.failures_all()
    holds = store.holds_all()
    for name, wf in sorted(store.workflow_rows().items()):
        last = store.last_run(name)
        errors = problems_by_wf.get(name, [])
        ready, reason, message = wf["status"], wf["reason"], wf["message"] or ""
        if ready is None:  # no pass has planned it since this store was made or upgraded
            ready, reason = "Ready", "Succeeded"
            if any(w == name for (w, _t) in holds):
                ready, reason = "Stalled", "WaitingDecision"
            elif any(w == name for (w, _t) in failures):
                ready, reason = "Stalled", "TaskFailed"
        if errors:
            ready, reason = "Stalled", "ValidationFailed"
        elif last is not None and last.status not in RUN_TERMINAL and reason != "InternalError":
            ready = "Reconciling"
            reason = {
                RunStatus.WAITING_DECISION: "WaitingDecision",
                RunStatus.WAITING_APPROVAL: "WaitingApproval",
            }.get(last.status, "Progressing")
        elif last is not None and last.status is RunStatus.ROLLBACK_FAILED and ready != "Stalled":
            ready, reason = "Stalled", "RollbackFailed"
        out.append(
            {
                "workflow": name,
                "file": wf["file"],
                "ready": ready,
                "reason": reason,
                "message": message,
                "applied_revision": applied_revisions.get(name),
                "last_run": None
                if last is None
                else {
                    "id": last.id,
                    "status": str(last.status),
                    "revision": last.revision,
                    "finished_at": last.finished_at,
                },
                "outstanding": wf["outstanding"] or 0,
                "validation_errors": errors,
            }
        )
    if orphan_problems:
        out.append(
            {
                "workflow": None,
                "file": None,
                "ready": "Stalled",
                "reason": "ValidationFailed",
                "message": "",
                "applied_revision": None,
                "last_run": None,
                "outstanding": 0,
                "validation_errors": orphan_problems,
            }
        )
    return out


def _applied_revisions(store: Store) -> dict[str, str]:
    """Per workflow, the revision of its most recently applied task (one read)."""
    newest: dict[str, tuple[float, str]] = {}
    for (workflow, _task), applied in store.applied_all().items():
        if workflow not in newest or applied.applied_at > newest[workflow][0]:
            newest[workflow] = (applied.applied_at, applied.revision)
    return {w: rev for w, (_at, rev) in newest.items()}


def print_status(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not rows:
        click.echo("No workflows known yet: run `podium reconcile` first.")
        return
    table = Table("workflow", "ready", "reason", "applied", "last run", "outstanding", "errors")
    stalled = [r for r in rows if r["ready"] == "Stalled" and r.get("message")]
    for r in rows:
        last = r["last_run"]
        table.add_row(
            r["workflow"] or "(invalid file)",
            r["ready"],
            r["reason"],
            (r["applied_revision"] or "")[:7],
            "" if last is None else f"{last['id']} {last['status']}",
            str(r["outstanding"]),
            str(len(r["validation_errors"])),
        )
    console = _console()
    console.print(table)
    for r in stalled:
        console.print(f"{r['workflow']}: {r['message']}", markup=False, highlight=False)
    for r in rows:
        for e in r["validation_errors"]:
            console.print(f"[red]{e}[/]", markup=True, highlight=False)
