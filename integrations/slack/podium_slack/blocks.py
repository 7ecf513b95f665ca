"""Block Kit for runs: the parent message of a run thread, failure alerts, other alerts.

Pure functions from read models (:mod:`.views`) to :class:`~.messages.Message`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .messages import Message
from .text import (
    code_block,
    context,
    duration,
    emoji,
    escape,
    inline,
    label,
    section,
    short,
)
from .views import FailureView, RevisionView, RollbackView, RunView

TERMINAL = ("succeeded", "failed", "rolled_back", "rollback_failed", "cancelled")
FAILED_RUN = ("failed", "rolled_back", "rollback_failed")
MAX_TASK_LINES = 20
MAX_DETAILED_FAILURES = 4


def revision_line(rev: RevisionView) -> str:
    """```abc1234` Commit subject — Author``"""
    text = inline(short(rev.sha)) if rev.sha else "(no revision)"
    if rev.subject:
        text += f" {escape(rev.subject)}"
    if rev.author:
        text += f" — {escape(rev.author)}"
    return text


def retry_hint(run_id: int) -> str:
    return f"Retry: {inline(f'podium retry {run_id}')} or {inline(f'/podium retry {run_id}')}"


def _task_lines(run: RunView) -> str:
    finished = run.status in TERMINAL
    lines = []
    for t in run.tasks[:MAX_TASK_LINES]:
        line = f"{emoji(t.status)} {inline(t.name)} {label(t.status)}"
        if not finished and t.reason:
            line += f" _({escape(t.reason)})_"
        lines.append(line)
    if len(run.tasks) > MAX_TASK_LINES:
        lines.append(f"…and {len(run.tasks) - MAX_TASK_LINES} more")
    return "\n".join(lines)


def run_message(run: RunView) -> Message:
    """The parent message of a run's thread, showing the run as it is now."""
    icon = emoji(run.status)
    took = duration(run.duration) if run.status in TERMINAL else ""
    head = f"{icon} *{escape(run.workflow)}* · run {run.id} · *{label(run.status)}*"
    if took:
        head += f" in {took}"
    noun = "Tasks" if run.status in TERMINAL else "Outstanding tasks"
    blocks: list[dict[str, Any]] = [
        section(head),
        context(revision_line(run.revision), f"trigger: {escape(run.trigger)}"),
        section(f"*{noun}*\n{_task_lines(run)}" if run.tasks else "_no tasks_"),
    ]
    if run.status in FAILED_RUN:
        blocks.append(context("Details in the thread.", retry_hint(run.id)))
    text = f"{icon} {run.workflow} run {run.id}: {label(run.status)}"
    if took:
        text += f" in {took}"
    return Message(text, blocks)


def _facts(f: FailureView) -> str:
    facts = [f"*Error:* {escape(f.error)}"]
    if f.exit_code is not None:
        facts.append(f"*Exit code:* {f.exit_code}")
    if f.http_status is not None:
        facts.append(f"*HTTP status:* {f.http_status}")
    if f.attempts:
        facts.append(f"*Attempts:* {f.attempts}")
    return "\n".join(facts)


def _failure_blocks(f: FailureView, heading: str) -> list[dict[str, Any]]:
    blocks = [section(f"{heading}\n{_facts(f)}")]
    if f.output_tail.strip():
        blocks.append(section("*Last output*\n" + code_block(f.output_tail)))
    return blocks


_ON_FAILURE = {
    "rollback": "The run stops and rolls back the tasks it completed; the outcome follows here.",
    "stop": "The run stops; nothing is rolled back (`on_failure: stop`).",
    "continue": "Tasks that do not need it carry on (`on_failure: continue`).",
}


def task_failure_message(run: RunView, failure: FailureView, on_failure: str) -> Message:
    """Alert for one task that finally failed (``task_failed``)."""
    heading = (
        f"{emoji(failure.status)} {inline(failure.task)} {label(failure.status)}"
        f" in *{escape(run.workflow)}* run {run.id}"
    )
    blocks = _failure_blocks(failure, heading)
    blocks.append(section(_ON_FAILURE.get(on_failure, f"on_failure: {escape(on_failure)}")))
    blocks.append(context(retry_hint(run.id)))
    text = f"{failure.task} {label(failure.status)} in {run.workflow} run {run.id}: {failure.error}"
    return Message(text, blocks)


def _rollback_text(run: RunView, rollback: RollbackView) -> str:
    if run.status == "failed":
        return "*Rollback:* none (the workflow's `on_failure` is not `rollback`)."
    parts = []
    if rollback.rolled_back:
        parts.append("rolled back " + ", ".join(inline(t) for t in rollback.rolled_back))
    if rollback.failed:
        parts.append("*failed* for " + ", ".join(inline(f.task) for f in rollback.failed))
    if not parts:
        return "*Rollback:* nothing to undo (no task had completed)."
    return "*Rollback:* " + "; ".join(parts) + "."


def run_failure_message(
    run: RunView,
    failures: Sequence[FailureView],
    rollback: RollbackView,
    alerted: Iterable[str] = (),
    mention: str | None = None,
) -> Message:
    """The alert when a run ends badly: what failed, what rollback did, how to retry.

    Tasks in ``alerted`` already had their own alert in the thread: only named here.
    """
    seen = set(alerted)
    where = f"*{escape(run.workflow)}* run {run.id}"
    if run.status == "rollback_failed":
        head = f":rotating_light: *Rollback failed* in {where}: manual repair needed."
    elif run.status == "rolled_back":
        head = f":leftwards_arrow_with_hook: {where} failed and was rolled back."
    else:
        head = f":x: {where} failed."
    if mention:
        head = f"{mention} {head}"
    blocks: list[dict[str, Any]] = [section(head)]
    detailed = 0
    for f in failures:
        heading = f"{emoji(f.status)} {inline(f.task)} {label(f.status)}"
        if f.task in seen or detailed >= MAX_DETAILED_FAILURES:
            blocks.append(section(f"{heading}: {escape(f.error)}"))
            continue
        detailed += 1
        blocks.extend(_failure_blocks(f, heading))
    blocks.append(section(_rollback_text(run, rollback)))
    for f in rollback.failed[:MAX_DETAILED_FAILURES]:
        blocks.extend(_failure_blocks(f, f":rotating_light: rollback of {inline(f.task)} failed"))
    blocks.append(context(retry_hint(run.id)))
    text = f"{run.workflow} run {run.id} {label(run.status)}"
    if mention:
        text = f"{mention} {text}"
    return Message(text, blocks)


def waiting_decision_message(run: RunView, task: str) -> Message:
    """A non-idempotent task was interrupted by an agent restart: a human decides."""
    commands = ", ".join(
        inline(c)
        for c in (
            f"podium retry {run.id}",
            f"podium skip {run.id} {task}",
            f"podium fail {run.id} {task}",
        )
    )
    text = (
        f":question: {inline(task)} in *{escape(run.workflow)}* run {run.id} was interrupted"
        " while it ran and is not idempotent: decide whether to run it again."
    )
    blocks = [section(text), context(f"{commands} (or {inline(f'/podium retry {run.id}')})")]
    return Message(f"{task} in {run.workflow} run {run.id} needs a decision", blocks)


def validation_message(file: str, revision: str, problems: Sequence[str]) -> Message:
    head = (
        f":warning: {inline(file)} is invalid at {inline(short(revision))};"
        " Podium keeps its last good definition."
    )
    body = code_block("\n".join(problems), lines=30)
    return Message(f"{file} is invalid", [section(head), section(body)])


def source_alert_message(source: str, error: str, since: float, mention: str | None) -> Message:
    head = f":rotating_light: *Git source unreachable* for {duration(since)}: {inline(source)}"
    if mention:
        head = f"{mention} {head}"
    blocks = [
        section(head),
        section(code_block(error or "no error message", lines=10)),
        context("Podium keeps the last fetched revision and retries with backoff."),
    ]
    text = f"Git source unreachable: {source}"
    return Message(f"{mention} {text}" if mention else text, blocks)


def source_recovered_message(source: str) -> Message:
    text = f":white_check_mark: Git source reachable again: {inline(source)}"
    return Message(f"Git source reachable again: {source}", [section(text)])


__all__ = [
    "revision_line",
    "run_failure_message",
    "run_message",
    "source_alert_message",
    "source_recovered_message",
    "task_failure_message",
    "validation_message",
    "waiting_decision_message",
]
