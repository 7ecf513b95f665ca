"""Approve / Reject buttons and the reject dialog.

Every handler acknowledges first (Slack wants an answer within 3 seconds) and then
does the work: the decision goes through the core's :class:`~podium.decisions.Decisions`
(the same checks and audit trail as the CLI), the request message is edited in place,
and a refusal is explained to the clicker alone (an ephemeral message).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from slack_bolt import Ack, App

from podium.directory import is_allowed
from podium.errors import DecisionError, NotFoundError
from podium.log import get_logger
from podium.notify.base import RetryLater

from .api import SlackError
from .approvals import (
    APPROVE_ACTION,
    REASON_ACTION,
    REASON_BLOCK,
    REJECT_ACTION,
    REJECT_VIEW,
    reject_modal,
)
from .deps import Deps
from .messages import Ref
from .text import escape, inline
from .views import approval_view

log = get_logger("podium.slack")


@dataclass(frozen=True)
class Click:
    """Who acted on which request, and where its message is."""

    user: str
    approval_id: int
    channel: str | None
    ts: str | None
    respond: Callable[..., Any] | None = None

    @property
    def message(self) -> Ref | None:
        return Ref(self.channel, self.ts) if self.channel and self.ts else None


def _click(body: dict[str, Any], action: dict[str, Any], respond: Any) -> Click:
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    return Click(
        user=str(body["user"]["id"]),
        approval_id=int(action["value"]),
        channel=channel,
        ts=container.get("message_ts") or (body.get("message") or {}).get("ts"),
        respond=respond,
    )


class Interactions:
    """Listeners for the approval buttons and the reject dialog."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.store = deps.ctx.store

    def register(self, app: App) -> None:
        app.action(APPROVE_ACTION)(self.on_approve)
        app.action(REJECT_ACTION)(self.on_reject)
        app.view(REJECT_VIEW)(self.on_reject_submitted)

    # -- listeners ----------------------------------------------------------------

    def on_approve(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        ack()
        self.decide(_click(body, action, respond), approve=True, comment=None)

    def on_reject(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        ack()
        click = _click(body, action, respond)
        try:
            req = self.store.get_approval(click.approval_id)
            run = self.store.get_run(req.run_id)
        except NotFoundError as exc:
            self.tell(click, f":no_entry: {escape(str(exc))}")
            return
        allowed = is_allowed(click.user, req.approvers, self.deps.directory_for_run(run))
        if req.status != "pending" or not allowed:
            # Decisions refuses it, audits the refusal and says why.
            self.decide(click, approve=False, comment=None)
            return
        modal = reject_modal(approval_view(self.store, req.id), click.channel or "", click.ts or "")
        try:
            self.deps.api.open_view(str(body.get("trigger_id") or ""), modal)
        except (SlackError, RetryLater) as exc:
            log.warning("slack_dialog_failed", approval_id=req.id, error=str(exc))
            self.tell(
                click,
                "Could not open the dialog. Reject with "
                + inline(f"/podium reject {req.run_id} {req.task} REASON"),
            )

    def on_reject_submitted(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = (view.get("state") or {}).get("values") or {}
        reason = str(((values.get(REASON_BLOCK) or {}).get(REASON_ACTION) or {}).get("value") or "")
        if not reason.strip():
            ack(response_action="errors", errors={REASON_BLOCK: "Say why you reject it."})
            return
        ack()
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            approval_id = int(meta["approval_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("slack_dialog_without_request")
            return
        click = Click(
            user=str(body["user"]["id"]),
            approval_id=approval_id,
            channel=meta.get("channel") or None,
            ts=meta.get("ts") or None,
        )
        self.decide(click, approve=False, comment=reason.strip())

    # -- the work after ack ---------------------------------------------------------

    def decide(self, click: Click, approve: bool, comment: str | None) -> None:
        """Record the decision through Decisions; refusals are explained privately."""
        with structlog.contextvars.bound_contextvars(
            approval_id=click.approval_id, actor=click.user
        ):
            try:
                req = self.store.get_approval(click.approval_id)
                self.deps.ctx.decisions.decide(
                    req.run_id,
                    req.task,
                    click.user,
                    approve,
                    comment,
                    via="slack",
                    approval_id=req.id,
                )
            except (DecisionError, NotFoundError) as exc:
                self.tell(click, f":no_entry: {escape(str(exc))}")
                self.refresh(click)
                return
            except Exception:  # never a stack trace in Slack; the log has it
                log.exception("slack_decision_failed")
                self.tell(click, "Podium could not record that decision; see the agent's log.")
                return
            log.info("slack_decision", decision="approved" if approve else "rejected")
            self.refresh(click)
            try:
                self.deps.publisher.refresh_parent(req.run_id)
            except (SlackError, RetryLater) as exc:
                log.warning("slack_update_failed", error=str(exc))

    def refresh(self, click: Click) -> None:
        """Show the request's current state in its message (decided, superseded, expired…)."""
        try:
            self.deps.publisher.refresh_approval(click.approval_id, click.message)
        except (SlackError, RetryLater, NotFoundError) as exc:
            log.warning("slack_update_failed", error=str(exc))

    def tell(self, click: Click, text: str) -> None:
        """An ephemeral note to the clicker only."""
        if click.channel:
            try:
                self.deps.api.ephemeral(click.channel, click.user, text)
                return
            except (SlackError, RetryLater) as exc:
                log.warning("slack_ephemeral_failed", error=str(exc))
        if click.respond is not None:
            try:
                click.respond(text=text, response_type="ephemeral", replace_original=False)
            except Exception as exc:  # the response_url may have expired
                log.warning("slack_respond_failed", error=type(exc).__name__)


__all__ = ["Click", "Interactions"]
