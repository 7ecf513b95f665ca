"""Messages and the memory of where they were posted.

A :class:`Message` is what Slack shows (fallback ``text`` plus Block Kit ``blocks``).
The :class:`MessageBook` posts each keyed message at most once — the key and the
returned channel id + ``ts`` are stored with ``store.set_ref`` right after the post,
so a redelivered outbox item or a restarted agent edits the message instead of
posting it again — and skips edits that would not change anything.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, replace
from typing import Any

from podium.secrets import redact
from podium.store import Store

from .api import SlackApi, SlackError

NOTIFIER = "slack"


def _redact_tree(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_tree(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact_tree(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Message:
    text: str
    """The notification / fallback text (also what screen readers read)."""
    blocks: list[dict[str, Any]]

    def redacted(self) -> Message:
        """Every string passed through the core's secret redaction, once more."""
        return Message(redact(self.text), _redact_tree(self.blocks))

    def digest(self) -> str:
        raw = json.dumps([self.text, self.blocks], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Ref:
    """Where a message lives: the channel *id* Slack returned and the message ``ts``."""

    channel: str
    ts: str
    digest: str = ""

    def dumps(self) -> str:
        return json.dumps({"channel": self.channel, "ts": self.ts, "digest": self.digest})

    @classmethod
    def loads(cls, text: str) -> Ref | None:
        try:
            data = json.loads(text)
            return cls(str(data["channel"]), str(data["ts"]), str(data.get("digest") or ""))
        except (ValueError, KeyError, TypeError):
            return None


class MessageBook:
    """Posts keyed messages once and edits them in place (thread-safe)."""

    def __init__(self, store: Store, api: SlackApi) -> None:
        self.store = store
        self.api = api
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def ref(self, key: str) -> Ref | None:
        raw = self.store.get_ref(key)
        return None if raw is None else Ref.loads(raw)

    def remember(self, key: str, ref: Ref) -> None:
        self.store.set_ref(key, NOTIFIER, ref.dumps())

    def post_once(
        self,
        key: str,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> tuple[Ref, bool]:
        """The message's ref, posting it first if it was never posted; True when posted now."""
        with self._lock:
            existing = self.ref(key)
            if existing is not None:
                return existing, False
            msg = message.redacted()
            channel_id, ts = self.api.post(
                channel, msg.text, msg.blocks, thread_ts=thread_ts, broadcast=broadcast
            )
            ref = Ref(channel_id, ts, msg.digest())
            self.remember(key, ref)
            return ref, True

    def update(self, key: str, message: Message, fallback: Ref | None = None) -> bool:
        """Edit the keyed message (``chat.update``) if it exists and would change."""
        with self._lock:
            ref = self.ref(key) or fallback
            if ref is None:
                return False
            msg = message.redacted()
            digest = msg.digest()
            if ref.digest == digest:
                return False
            try:
                self.api.update(ref.channel, ref.ts, msg.text, msg.blocks)
            except SlackError as exc:
                if exc.error in ("message_not_found", "cant_update_message"):
                    return False  # deleted in Slack: nothing left to edit
                raise
            self.remember(key, replace(ref, digest=digest))
            return True


__all__ = ["NOTIFIER", "Message", "MessageBook", "Ref"]
