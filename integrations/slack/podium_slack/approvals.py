"""Block Kit for approval requests: the message with its buttons, and the reject dialog."""

from __future__ import annotations

import json
from typing import Any

from .blocks import revision_line
from .messages import Message
from .text import clip, code_block, context, escape, inline, person, plain, section, short, when
from .views import ApprovalView

APPROVE_ACTION = "podium_approve"
REJECT_ACTION = "podium_reject"
REJECT_VIEW = "podium_reject_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
MAX_REASON = 500


def outcome(a: ApprovalView) -> str:
    """One line saying how the request ended (empty while it is pending)."""
    at = when(a.decided_at)
    if a.decided_by == "timeout":
        result = "approved" if a.status == "approved" else "rejected"
        return f":hourglass: Expired {at}: {result} automatically (on timeout: {a.on_timeout})."
    if a.status == "approved":
        text = f":white_check_mark: Approved by {person(a.decided_by)} {at}"
        return text + (f": {escape(a.comment)}" if a.comment else ".")
    if a.status == "rejected":
        return (
            f":no_entry: Rejected by {person(a.decided_by)} {at}:"
            f" {escape(a.comment or 'no reason given')}"
        )
    if a.status == "superseded":
        rev = (a.comment or "").removeprefix("superseded by ").strip()
        newer = f" ({inline(short(rev))})" if rev else ""
        return (
            f":fast_forward: Superseded {at}: a newer revision{newer} changed this task,"
            " so it needs a new approval."
        )
    if a.status == "cancelled":
        return f":no_entry_sign: Cancelled {at}: {escape(a.comment or 'the run ended')}."
    return "" if a.status == "pending" else f"Request {escape(a.status)}."


def approval_message(a: ApprovalView, approvers: str) -> Message:
    """The request: what will run, why, who may decide, until when — and the buttons."""
    pending = a.status == "pending"
    title = ":raised_hand: *Approval needed*" if pending else ":raised_hand: Approval request"
    where = f"{inline(a.task)} in *{escape(a.workflow)}* run {a.run_id}"
    deadline = "none"
    if a.deadline is not None:
        deadline = f"{when(a.deadline)} (then {escape(a.on_timeout)})"
    blocks: list[dict[str, Any]] = [
        section(f"{title}: {where}"),
        section("*Will run*\n" + code_block(a.action, lines=10, chars=1500)),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": clip(f"*Revision*\n{revision_line(a.revision)}", 2000)},
                {"type": "mrkdwn", "text": clip(f"*Why*\n{escape(a.reason or 'n/a')}", 2000)},
                {"type": "mrkdwn", "text": clip(f"*Who may approve*\n{approvers}", 2000)},
                {"type": "mrkdwn", "text": f"*Deadline*\n{deadline}"},
            ],
        },
    ]
    if a.message:
        blocks.append(section(escape(a.message)))
    if pending:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"podium_approval:{a.id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE_ACTION,
                        "text": plain("Approve"),
                        "style": "primary",
                        "value": str(a.id),
                    },
                    {
                        "type": "button",
                        "action_id": REJECT_ACTION,
                        "text": plain("Reject"),
                        "style": "danger",
                        "value": str(a.id),
                    },
                ],
            }
        )
    else:
        blocks.append(context(outcome(a)))
    text = f"Approval needed: {a.workflow}/{a.task} in run {a.run_id}"
    if not pending:
        text = f"Approval of {a.workflow}/{a.task} in run {a.run_id}: {a.status}"
    return Message(text, blocks)


def reject_modal(a: ApprovalView, channel: str, ts: str) -> dict[str, Any]:
    """The dialog asking for a reason; the message to update travels in private_metadata."""
    return {
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": json.dumps({"approval_id": a.id, "channel": channel, "ts": ts}),
        "title": plain("Reject", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(f"Reject {inline(a.task)} in *{escape(a.workflow)}* run {a.run_id}?"),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": plain("Reason (shown in the channel and kept in the audit log)", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": MAX_REASON,
                },
            },
        ],
    }


__all__ = [
    "APPROVE_ACTION",
    "REASON_ACTION",
    "REASON_BLOCK",
    "REJECT_ACTION",
    "REJECT_VIEW",
    "approval_message",
    "outcome",
    "reject_modal",
]
