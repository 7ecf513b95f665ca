"""The Slack notifier: outbox events → run threads, alerts and approval messages.

``send`` is called by the outbox drain. It raises :class:`RetryLater` on a rate
limit and :class:`SlackError` when Slack is down (the outbox retries with backoff);
a message is never posted twice, because every post is keyed (see
:class:`~.messages.MessageBook`) and every edit re-renders from the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from podium.errors import NotFoundError
from podium.log import get_logger
from podium.notify.base import RetryLater
from podium.store import Store
from podium.store.records import EventRecord, OutboxItem

from .api import SlackError
from .blocks import (
    run_failure_message,
    source_alert_message,
    source_recovered_message,
    task_failure_message,
    validation_message,
    waiting_decision_message,
)
from .config import SlackConfig
from .directory import SlackPeople
from .messages import NOTIFIER
from .publisher import Publisher, approval_key
from .text import escape
from .views import FailureView, failures_view, rollback_view, run_view

log = get_logger("podium.slack")

MAX_PERMANENT_ATTEMPTS = 6
"""An ``ok: false`` answer that retrying cannot cure (unknown channel…) is dropped after this."""
DEFAULT_MENTION = "<!here>"
SOURCE_OPEN = "slack:source:open"

_SPECIAL = {
    "here": "<!here>",
    "@here": "<!here>",
    "!here": "<!here>",
    "channel": "<!channel>",
    "@channel": "<!channel>",
    "!channel": "<!channel>",
    "everyone": "<!everyone>",
    "@everyone": "<!everyone>",
}


def failure_key(run_id: int, task: str) -> str:
    return f"slack:failure:{run_id}:{task}"


class SlackNotifier:
    """Delivers one outbox item to Slack."""

    name = NOTIFIER

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        people: SlackPeople,
        config: SlackConfig,
        repo_config: Callable[[], Any] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.book = publisher.book
        self.people = people
        self.config = config
        self.repo_config = repo_config
        self.clock = clock
        self._handlers: dict[str, Callable[[EventRecord, str], None]] = {
            "failed": self._run_failed,
            "rolled_back": self._run_failed,
            "rollback_failed": self._run_failed,
            "task_failed": self._task_failed,
            "approval_requested": self._approval_requested,
            "approval_decided": self._approval_changed,
            "approval_superseded": self._approval_changed,
            "approval_expired": self._approval_changed,
            "waiting_decision": self._waiting_decision,
            "validation_failed": self._validation_failed,
            "source_unreachable": self._source_unreachable,
            "source_recovered": self._source_recovered,
        }

    def send(self, item: OutboxItem) -> None:
        event = item.event
        channel = item.target or self.config.default_channel
        if not channel:
            log.warning("slack_route_without_channel", kind=event.kind, key=item.key)
            return
        handler = self._handlers.get(event.kind)
        try:
            if handler is not None:
                handler(event, channel)
            elif event.run_id is not None:  # started, succeeded, anything else about a run
                self.publisher.parent(event.run_id, channel)
            if event.run_id is not None:  # e.g. a request that expired, when that is not routed
                self.publisher.refresh_approvals([event.run_id])
        except SlackError as exc:
            if exc.permanent and item.attempts + 1 >= MAX_PERMANENT_ATTEMPTS:
                log.error(
                    "slack_notification_dropped", kind=event.kind, key=item.key, error=exc.error
                )
                return
            raise
        except NotFoundError as exc:  # the run or request is gone (store pruned): nothing to say
            log.warning("slack_notification_skipped", kind=event.kind, error=str(exc))

    # -- mentions ---------------------------------------------------------------

    def mention(self, run_id: int | None) -> str | None:
        """The loud mention of the route (``notify.slack.mention``), ``<!here>`` by default."""
        value: Any = None
        if run_id is not None:
            definition = self.store.get_run(run_id).definition
            notify = (definition.get("spec") or {}).get("notify") or {}
            value = (notify.get(NOTIFIER) or {}).get("mention")
        else:
            config = self.repo_config()
            route = (getattr(config, "notify", None) or {}).get(NOTIFIER)
            value = getattr(route, "mention", None)
        if value is None:
            return DEFAULT_MENTION
        text = str(value).strip()
        if text.lower() in ("", "none", "off", "false", "no"):
            return None
        if text.lower() in _SPECIAL:
            return _SPECIAL[text.lower()]
        if text.startswith("<") and text.endswith(">"):
            return text
        return self.people.mention(text) or escape(text)

    # -- runs -------------------------------------------------------------------

    def _run_failed(self, event: EventRecord, channel: str) -> None:
        run_id = _run_id(event)
        self.publisher.parent(run_id, channel)
        run = run_view(self.store, run_id)
        failures = failures_view(self.store, run_id)
        alerted = [f.task for f in failures if self.book.ref(failure_key(run_id, f.task))]
        loud = run.status == "rollback_failed"
        message = run_failure_message(
            run,
            failures,
            rollback_view(self.store, run_id),
            alerted,
            mention=self.mention(run_id) if loud else None,
        )
        self.publisher.reply(f"slack:run-end:{run_id}", run_id, channel, message, broadcast=loud)

    def _task_failed(self, event: EventRecord, channel: str) -> None:
        run_id, task = _run_id(event), event.task or "?"
        d = event.data
        try:
            status = str(self.store.get_run_task(run_id, task).status)
        except NotFoundError:
            status = "failed"
        failure = FailureView(
            task=task,
            status=status if status in ("failed", "timed_out") else "failed",
            error=str(d.get("error") or "failed"),
            exit_code=d.get("exit_code"),
            http_status=d.get("http_status"),
            attempts=int(d.get("attempts") or 0),
            output_tail=str(d.get("output_tail") or ""),
        )
        run = run_view(self.store, run_id)
        message = task_failure_message(run, failure, str(d.get("on_failure") or ""))
        self.publisher.reply(failure_key(run_id, task), run_id, channel, message)

    def _waiting_decision(self, event: EventRecord, channel: str) -> None:
        run_id = _run_id(event)
        message = waiting_decision_message(run_view(self.store, run_id), event.task or "?")
        self.publisher.reply(f"slack:event:{event.id}", run_id, channel, message, broadcast=True)

    # -- approvals --------------------------------------------------------------

    def _approval_requested(self, event: EventRecord, channel: str) -> None:
        approval_id = int(event.data["approval_id"])
        self.publisher.approval(approval_id, channel)
        if event.workflow:  # a request it replaces says so, even if supersedes are not routed
            recent = self.store.list_runs(event.workflow, limit=5)
            self.publisher.refresh_approvals(r.id for r in recent if r.id != event.run_id)

    def _approval_changed(self, event: EventRecord, channel: str) -> None:
        approval_id = event.data.get("approval_id")
        if approval_id is not None and self.book.ref(approval_key(int(approval_id))):
            self.publisher.refresh_approval(int(approval_id))
        if event.run_id is not None:
            self.publisher.parent(event.run_id, channel)

    # -- repository-wide alerts ---------------------------------------------------

    def _validation_failed(self, event: EventRecord, channel: str) -> None:
        d = event.data
        message = validation_message(
            str(d.get("file") or "?"), str(d.get("revision") or ""), list(d.get("problems") or [])
        )
        self.book.post_once(f"slack:event:{event.id}", channel, message)

    def _source_unreachable(self, event: EventRecord, channel: str) -> None:
        """Alert loudly, but only when the outage outlasts ``source_alert_after``."""
        waited = self.clock() - event.ts
        if waited < self.config.source_alert_after:
            raise RetryLater(self.config.source_alert_after - waited, "source outage grace")
        recovered = self.store.events(kind="source_recovered", limit=1_000_000)
        if any(e.id > event.id for e in recovered):
            log.info("source_outage_was_short", seconds=round(waited, 1))
            return
        d = event.data
        message = source_alert_message(
            str(d.get("source") or "?"), str(d.get("error") or ""), waited, self.mention(None)
        )
        ref, _ = self.book.post_once(f"slack:source:{event.id}", channel, message)
        self.book.remember(SOURCE_OPEN, ref)

    def _source_recovered(self, event: EventRecord, channel: str) -> None:
        alert = self.book.ref(SOURCE_OPEN)
        if alert is None:
            return  # no alert went out: recovering is not news
        message = source_recovered_message(str(event.data.get("source") or "?"))
        self.book.post_once(
            f"slack:event:{event.id}", alert.channel, message, thread_ts=alert.ts, broadcast=True
        )
        self.store.set_ref(SOURCE_OPEN, NOTIFIER, "{}")


def _run_id(event: EventRecord) -> int:
    if event.run_id is None:
        raise NotFoundError(f"event {event.kind} names no run")
    return event.run_id


__all__ = ["MAX_PERMANENT_ATTEMPTS", "SlackNotifier", "failure_key"]
