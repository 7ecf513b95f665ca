"""Verifying Git push webhooks: GitHub (HMAC-SHA256) and GitLab (shared token).

Verification has two steps so that nothing unauthenticated is read: the headers are
checked first (:func:`check_headers`: a missing, malformed or unconfigured credential is
refused there, before the body), then the body (:func:`check_body`: the GitHub HMAC,
then the payload, JSON or GitHub's form-encoded ``payload`` field).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Verdict:
    status: int
    message: str
    trigger: bool = False
    ref: str | None = None


@dataclass(frozen=True)
class Claim:
    """A request whose headers passed: what its body still has to prove."""

    event: str
    delivery: str | None
    content_type: str
    digest: str | None = None  # GitHub: the HMAC the body must have (lowercase hex)
    key: bytes = field(default=b"", repr=False)


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


def _raw(value: str) -> bytes:
    """A header value as the bytes that were sent (ASGI servers decode them as latin-1)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def check_headers(
    headers: Mapping[str, str], github_secret: str | None, gitlab_token: str | None
) -> Claim | Verdict:
    """Refuse (401) what the headers alone show to be unauthenticated; else a Claim."""
    h = {k.lower(): v for k, v in headers.items()}
    signature = h.get("x-hub-signature-256")
    token = h.get("x-gitlab-token")
    content_type = h.get("content-type", "")
    if signature is not None:
        if not github_secret:
            return Verdict(401, "webhook secret is not configured")
        match = _SIGNATURE.fullmatch(signature.strip())
        if match is None:
            return Verdict(401, "malformed signature")
        return Claim(
            event=h.get("x-github-event", ""),
            delivery=h.get("x-github-delivery"),
            content_type=content_type,
            digest=match.group(1).lower(),
            key=github_secret.encode(),
        )
    if token is not None:
        if not gitlab_token:
            return Verdict(401, "webhook token is not configured")
        if not hmac.compare_digest(gitlab_token.encode(), _raw(token)):
            return Verdict(401, "bad token")
        kind = h.get("x-gitlab-event", "")
        return Claim(
            event={"Push Hook": "push", "Tag Push Hook": "push"}.get(kind, kind),
            delivery=h.get("x-gitlab-event-uuid") or h.get("idempotency-key"),
            content_type=content_type,
        )
    return Verdict(401, "unsigned request")


def payload(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The JSON object a webhook carries (GitHub's form encoding included), else None."""
    media = content_type.split(";", 1)[0].strip().lower()
    text: str | bytes = body
    try:
        if media == _FORM:
            fields = parse_qs(body.decode("ascii"), strict_parsing=True, errors="strict")
            values = fields.get("payload", [])
            if len(values) != 1:
                return None
            text = values[0]
        data = json.loads(text)
    except (ValueError, UnicodeError):
        return None
    return data if isinstance(data, dict) else None


def check_body(claim: Claim, body: bytes, deliveries: DeliveryLog) -> Verdict:
    """Decide what a request whose headers passed asks for, given its body."""
    if claim.digest is not None:
        expected = hmac.new(claim.key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, claim.digest):
            return Verdict(401, "bad signature")
    data = payload(body, claim.content_type)
    if data is None:
        return Verdict(400, "the body is not a JSON object")
    if claim.event == "ping":
        return Verdict(200, "pong")
    if claim.event != "push":
        return Verdict(202, f"ignored event {claim.event or 'unknown'}")
    if claim.delivery and deliveries.seen(claim.delivery):
        return Verdict(200, "duplicate delivery")
    ref = data.get("ref")
    return Verdict(
        202, "reconcile triggered", trigger=True, ref=ref if isinstance(ref, str) else None
    )


def verify(
    headers: Mapping[str, str],
    body: bytes,
    github_secret: str | None,
    gitlab_token: str | None,
    deliveries: DeliveryLog,
) -> Verdict:
    """Both steps at once, for a body already in hand (headers are case-insensitive)."""
    claim = check_headers(headers, github_secret, gitlab_token)
    if isinstance(claim, Verdict):
        return claim
    return check_body(claim, body, deliveries)


def push_matches(ref: str | None, branch: str | None) -> bool:
    """Whether a push to ``ref`` concerns the tracked ``branch`` (unknown either way: yes).

    Tags never match a branch."""
    if branch is None or ref is None:
        return True
    return ref == f"refs/heads/{branch}"


__all__ = [
    "Claim",
    "DeliveryLog",
    "Verdict",
    "check_body",
    "check_headers",
    "payload",
    "push_matches",
    "verify",
]
