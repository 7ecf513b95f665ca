"""Verifying Git push webhooks: GitHub (HMAC-SHA256) and GitLab (shared token)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    status: int
    message: str
    trigger: bool = False
    ref: str | None = None


class DeliveryLog:
    """Recently seen delivery ids, so a replayed delivery triggers nothing."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def seen(self, delivery: str) -> bool:
        if delivery in self._seen:
            return True
        self._seen[delivery] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return False


def _ref(body: bytes) -> str | None:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return None
    ref = data.get("ref") if isinstance(data, dict) else None
    return ref if isinstance(ref, str) else None


def verify(
    headers: Mapping[str, str],
    body: bytes,
    github_secret: str | None,
    gitlab_token: str | None,
    deliveries: DeliveryLog,
) -> Verdict:
    """Decide what to do with a webhook request (headers are case-insensitive)."""
    h = {k.lower(): v for k, v in headers.items()}
    signature = h.get("x-hub-signature-256")
    token = h.get("x-gitlab-token")
    if signature is not None:
        if not github_secret:
            return Verdict(401, "webhook secret is not configured")
        expected = "sha256=" + hmac.new(github_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.strip()):
            return Verdict(401, "bad signature")
        event = h.get("x-github-event", "")
        delivery = h.get("x-github-delivery")
    elif token is not None:
        if not gitlab_token:
            return Verdict(401, "webhook token is not configured")
        if not hmac.compare_digest(gitlab_token.encode(), token.encode()):
            return Verdict(401, "bad token")
        event = {"Push Hook": "push", "Tag Push Hook": "push"}.get(h.get("x-gitlab-event", ""), "")
        delivery = h.get("x-gitlab-event-uuid") or h.get("idempotency-key")
    else:
        return Verdict(401, "unsigned request")
    if event == "ping":
        return Verdict(200, "pong")
    if event != "push":
        return Verdict(202, f"ignored event {event or 'unknown'}")
    if delivery and deliveries.seen(delivery):
        return Verdict(200, "duplicate delivery")
    return Verdict(202, "reconcile triggered", trigger=True, ref=_ref(body))


__all__ = ["DeliveryLog", "Verdict", "verify"]
