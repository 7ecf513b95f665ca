"""Slack ``mrkdwn`` helpers: escaping, code blocks, dates, status emoji.

Everything that came from outside (commit subjects, task output, reasons, errors)
goes through :func:`escape` so that a ``<!channel>`` in a task's output can never
ping anybody, and through :func:`podium.secrets.redact` when a message is sent.
"""

from __future__ import annotations

import re
import time
from typing import Any

from podium.durations import format_duration

MAX_SECTION = 3000
"""Slack's limit for a section block's text."""
MAX_OUTPUT_CHARS = 2400
MAX_OUTPUT_LINES = 25

STATUS_EMOJI = {
    "pending": ":large_blue_circle:",
    "running": ":hourglass_flowing_sand:",
    "waiting_approval": ":raised_hand:",
    "waiting_decision": ":question:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "timed_out": ":alarm_clock:",
    "skipped": ":fast_forward:",
    "cancelled": ":no_entry_sign:",
    "interrupted": ":warning:",
    "rolling_back": ":leftwards_arrow_with_hook:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "rollback_failed": ":rotating_light:",
}

_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def emoji(status: str) -> str:
    return STATUS_EMOJI.get(status, ":white_circle:")


def label(status: str) -> str:
    """``rolled_back`` → ``rolled back``."""
    return status.replace("_", " ")


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control sequences."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def tail(text: str, lines: int = MAX_OUTPUT_LINES, chars: int = MAX_OUTPUT_CHARS) -> str:
    """The last ``lines`` lines of ``text``, at most ``chars`` characters, marked when cut."""
    every = text.rstrip("\n").splitlines()
    kept = every[-lines:]
    out = "\n".join(kept)
    cut = len(kept) < len(every)
    if len(out) > chars:
        out, cut = out[-chars:], True
    return "…\n" + out if cut else out


def code_block(text: str, lines: int = MAX_OUTPUT_LINES, chars: int = MAX_OUTPUT_CHARS) -> str:
    """A size-limited, escaped ``` block (a ``` inside the text cannot close it early)."""
    body = tail(text, lines, chars) or " "
    body = escape(body).replace("```", "`\u200b``")
    return f"```{body}```"


def inline(text: str) -> str:
    """Inline code (backticks inside are dropped)."""
    return "`" + escape(text.replace("`", "'")) + "`"


def short(sha: str | None) -> str:
    return (sha or "")[:7]


def when(ts: float | None, fmt: str = "{date_short_pretty} {time}") -> str:
    """A Slack date token: shown in each reader's time zone, UTC text as fallback."""
    if ts is None:
        return "never"
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
    return f"<!date^{int(ts)}^{fmt}|{fallback}>"


def duration(seconds: float | None) -> str:
    return "" if seconds is None else format_duration(max(0.0, seconds))


def person(name: str | None) -> str:
    """A Slack user id as a mention, anything else (email, ``cli``) as escaped text."""
    if not name:
        return "somebody"
    if _ID.match(name):
        return f"<@{name}>"
    return escape(name)


def is_user_id(name: str) -> bool:
    return bool(_ID.match(name))


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def context(*parts: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": clip(p, MAX_SECTION)} for p in parts if p][:10]
    return {"type": "context", "elements": elements or [{"type": "mrkdwn", "text": " "}]}


def plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


__all__ = [
    "MAX_SECTION",
    "STATUS_EMOJI",
    "clip",
    "code_block",
    "context",
    "duration",
    "emoji",
    "escape",
    "inline",
    "is_user_id",
    "label",
    "person",
    "plain",
    "section",
    "short",
    "tail",
    "when",
]
