"""The agent's HTTP face in-process: webhook verification, health and readiness."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from podium.http.app import build_app
from podium.http.webhooks import DeliveryLog, verify
from podium.metrics import Metrics
from podium.store import Store, open_store


class FakeAgent:
    """A stand-in for the daemon exposing what the HTTP face calls."""

    def __init__(self, store: Store, ready: bool = True) -> None:
        self.metrics = Metrics(store)
        self.requests: list[str] = []
        self._ready = ready

    def readiness(self) -> dict[str, Any]:
        return {"source": self._ready, "store": True}

    def request_reconcile(self, reason: str) -> None:
        self.requests.append(reason)

    def webhook_credentials(self) -> tuple[str | None, str | None]:
        return ("s3cret", None)

    def tracked_branch(self) -> str | None:
        return "main"


def _signed(body: bytes, secret: str = "s3cret") -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={mac}", "X-GitHub-Event": "push"}


def test_github_signature_is_required_and_checked(tmp_path: Path) -> None:
    """Unsigned, wrongly signed and tampered pushes get 401 and trigger nothing."""
    agent = FakeAgent(open_store(tmp_path / "s.db"))
    client = TestClient(build_app(agent))
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    assert client.post("/webhooks/git", content=body).status_code == 401
    assert (
        client.post("/webhooks/git", content=body, headers=_signed(body, "wrong")).status_code
        == 401
    )
    assert (
        client.post("/webhooks/git", content=body + b" ", headers=_signed(body)).status_code == 401
    )
    assert agent.requests == []
    assert client.post("/webhooks/git", content=body, headers=_signed(body)).status_code == 202
    assert agent.requests == ["webhook"]


def test_push_to_another_branch_and_replays_do_not_trigger(tmp_path: Path) -> None:
    """A push to an untracked branch is ignored; a replayed delivery id triggers once."""
    agent = FakeAgent(open_store(tmp_path / "s.db"))
    client = TestClient(build_app(agent))
    other = json.dumps({"ref": "refs/heads/feature"}).encode()
    assert client.post("/webhooks/git", content=other, headers=_signed(other)).status_code == 202
    assert agent.requests == []
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    headers = {**_signed(body), "X-GitHub-Delivery": "abc"}
    client.post("/webhooks/git", content=body, headers=headers)
    client.post("/webhooks/git", content=body, headers=headers)
    assert agent.requests == ["webhook"]


def test_ping_and_other_events_do_not_trigger() -> None:
    """GitHub's ping is answered; events other than push are ignored."""
    body = b"{}"
    sig = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    ping = verify(
        {"X-Hub-Signature-256": sig, "X-GitHub-Event": "ping"}, body, "k", None, DeliveryLog()
    )
    assert (ping.status, ping.trigger) == (200, False)
    issue = verify(
        {"X-Hub-Signature-256": sig, "X-GitHub-Event": "issues"}, body, "k", None, DeliveryLog()
    )
    assert (issue.status, issue.trigger) == (202, False)


def test_health_and_readiness(tmp_path: Path) -> None:
    """/healthz is always 200; /readyz is 503 until the source has been fetched."""
    store = open_store(tmp_path / "s.db")
    client = TestClient(build_app(FakeAgent(store, ready=False)))
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    assert TestClient(build_app(FakeAgent(store))).get("/readyz").status_code == 200
