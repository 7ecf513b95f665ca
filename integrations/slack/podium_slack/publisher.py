"""Keeps Slack in step with the store: one thread per run, one message per approval.

Used by the notifier (events from the outbox) and by the interactive handlers
(button clicks, slash commands), so both render the same messages the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from podium.errors import NotFoundError
from podium.store import Store

from .approvals import approval_message
from .blocks import TERMINAL, run_message
from .directory import SlackPeople
from .messages import Message, MessageBook, Ref
from .views import approval_view, run_view


def run_key(run_id: int) -> str:
    return f"slack:run:{run_id}"


def approval_key(approval_id: int) -> str:
    return f"slack:approval:{approval_id}"


class Publisher:
    """Posts and edits the messages of runs and approvals."""

    def __init__(self, store: Store, book: MessageBook, people: SlackPeople) -> None:
        self.store = store
        self.book = book
        self.people = people
        self._open: dict[int, str] = {}
        """Run id → the status its parent message shows, while that is not final."""
        self._open_lock = threading.Lock()

    def _shown(self, run_id: int, status: str) -> None:
        with self._open_lock:
            if status in TERMINAL:
                self._open.pop(run_id, None)
            else:
                self._open[run_id] = status

    # -- run threads ------------------------------------------------------------

    def parent(self, run_id: int, channel: str) -> Ref:
        """The run's parent message: posted once, then edited to show the run as it is."""
        key = run_key(run_id)
        with self.book.lock:
            view = run_view(self.store, run_id)
            message = run_message(view)
            ref, created = self.book.post_once(key, channel, message)
            if not created:
                self.book.update(key, message)
            self._shown(run_id, view.status)
            return ref

    def refresh_parent(self, run_id: int) -> None:
        """Edit the parent message if there is one (never posts)."""
        key = run_key(run_id)
        with self.book.lock:
            if self.book.ref(key) is None:
                return
            view = run_view(self.store, run_id)
            self.book.update(key, run_message(view))
            self._shown(run_id, view.status)

    def watch_recent(self, limit: int = 50) -> None:
        """After a restart: keep an eye on parents of runs that are not finished."""
        for run in self.store.list_runs(limit=limit, active_only=True):
            if self.book.ref(run_key(run.id)) is not None:
                with self._open_lock:
                    self._open.setdefault(run.id, "")

    def sweep(self) -> int:
        """Edit parents whose run changed status since they were shown; how many changed.

        Events a route does not list (say ``succeeded``) never reach the notifier, so
        without this a thread could keep saying "running" after the run finished.
        """
        with self._open_lock:
            shown = dict(self._open)
        changed = 0
        for run_id, status in shown.items():
            try:
                now = str(self.store.get_run(run_id).status)
            except NotFoundError:
                with self._open_lock:
                    self._open.pop(run_id, None)
                continue
            if now != status:
                self.refresh_parent(run_id)
                self.refresh_approvals([run_id])
                changed += 1
        return changed

    def reply(
        self, key: str, run_id: int, channel: str, message: Message, *, broadcast: bool = False
    ) -> Ref:
        """Post ``message`` once into the run's thread (``broadcast``: also to the channel)."""
        parent = self.parent(run_id, channel)
        ref, _ = self.book.post_once(
            key, parent.channel, message, thread_ts=parent.ts, broadcast=broadcast
        )
        return ref

    # -- approvals --------------------------------------------------------------

    def approval_message(self, approval_id: int) -> Message:
        view = approval_view(self.store, approval_id)
        approvers = ", ".join(self.people.mention(a) for a in view.approvers) or "nobody"
        return approval_message(view, approvers)

    def approval(self, approval_id: int, channel: str) -> Ref:
        """The approval request: a reply in the run's thread, also shown in the channel."""
        key = approval_key(approval_id)
        run_id = self.store.get_approval(approval_id).run_id
        message = self.approval_message(approval_id)
        with self.book.lock:
            parent = self.parent(run_id, channel)
            ref, created = self.book.post_once(
                key, parent.channel, message, thread_ts=parent.ts, broadcast=True
            )
            if not created:
                self.book.update(key, message)
            return ref

    def refresh_approvals(self, run_ids: Iterable[int]) -> None:
        """Edit the approval messages of these runs that no longer show their state."""
        for run_id in run_ids:
            for req in self.store.approvals(run_id=run_id):
                if self.book.ref(approval_key(req.id)) is not None:
                    self.refresh_approval(req.id)

    def refresh_approval(self, approval_id: int, fallback: Ref | None = None) -> bool:
        """Edit the approval message in place to show its current state."""
        return self.book.update(
            approval_key(approval_id), self.approval_message(approval_id), fallback
        )


__all__ = ["Publisher", "approval_key", "run_key"]
