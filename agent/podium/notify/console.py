"""The console notifier: events as short human lines on stderr."""

from __future__ import annotations

import sys
from typing import TextIO

from podium.durations import format_duration
from podium.secrets import redact
from podium.store.records import OutboxItem

ICONS = {
    "started": "▶",
    "succeeded": "✓",
    "failed": "✗",
    "task_failed": "✗",
    "rolled_back": "↺",
    "rolling_back": "↺",
    "rollback_failed": "‼",
    "task_rollback_failed": "‼",
    "approval_requested": "?",
    "approval_decided": "•",
    "approval_superseded": "~",
    "approval_expired": "⌛",
    "validation_failed": "!",
    "source_unreachable": "!",
    "source_recovered": "✓",
    "waiting_decision": "?",
    "cancelled": "-",
    "empty_revision_refused": "!",
}


def describe(item: OutboxItem) -> str:
    """One line for an event."""
    e = item.event
    d = e.data
    where = e.workflow or ""
    if e.run_id is not None:
        where += f" run {e.run_id}"
    if e.task:
        where += f" task {e.task}"
    where = where.strip() or _subject(e.kind, d)
    text = f"{ICONS.get(e.kind, '·')} {e.kind.replace('_', ' ')}: {where}"
    if e.kind == "task_failed":
        text += f" — {d.get('error')}"
        if d.get("attempts"):
            n = int(d["attempts"])
            text += f" after {n} attempt{'' if n == 1 else 's'}"
    elif e.kind in ("succeeded", "failed", "rolled_back", "rollback_failed") and d.get("duration"):
        text += f" in {format_duration(float(d['duration']))}"
    elif e.kind == "approval_requested":
        text += (
            f" — approvers: {', '.join(d.get('approvers', []))};"
            f" podium approve {e.run_id} {e.task} --by WHO"
        )
    elif e.kind == "approval_decided":
        text += f" — {d.get('decision')} by {e.actor}"
    elif e.kind == "validation_failed":
        text += "\n  " + "\n  ".join(d.get("problems", []))
    elif e.kind == "source_unreachable" or e.kind == "empty_revision_refused":
        text += f" — {d.get('error')}"
    elif e.kind == "waiting_decision":
        text += f" — podium retry {e.run_id} | podium skip/fail {e.run_id} {e.task}"
    return redact(text)


def _subject(kind: str, data: dict[str, object]) -> str:
    """What an event without a workflow is about (a file, the source, a revision)."""
    for key in ("file", "source", "revision"):
        if data.get(key):
            return str(data[key])
    return kind.replace("_", " ")


class ConsoleNotifier:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, item: OutboxItem) -> None:
        stream = self.stream or sys.stderr
        print(describe(item), file=stream, flush=True)


__all__ = ["ConsoleNotifier", "describe"]
