"""Approval buttons, the reject dialog and request signing, against an in-process Podium
(real store, engine and Decisions) served by uvicorn, with a fake Slack Web API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.slack_fake import (
    FakeSlack,
    World,
    block_actions,
    buttons,
    post_signed,
    sign,
    text_of,
    view_submission,
)

PODIUM_YAML = """\
operators: ["@sre"]
directory:
  users: {U0STATIC: [static@example.com]}
notify:
  slack:
    channel: "#deploys"
    on: [started, succeeded, failed, task_failed, rolled_back, rollback_failed,
         approval_requested, approval_decided, approval_superseded, approval_expired]
"""
DEPLOY = """\
name: deploy
forbid_self_approval: true
tasks:
  - id: build
    run: echo built
    rollback: echo unbuilt
  - id: release
    needs: [build]
    run: echo released
    approval: {{approvers: ["@sre", lead@example.com, static@example.com], timeout: {timeout}}}
"""
LEAD, ADA, BOB = "U0LEAD", "U0ADA", "U0BOB"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_user(LEAD, "lead", "lead@example.com")
        slack.add_user(ADA, "ada", "ada@example.com")  # authored the commit
        slack.add_user(BOB, "bob", "bob@example.com")
        slack.add_user("U0STATIC", "static", None)  # no email scope: static directory only
        slack.add_usergroup("S0SRE", "sre", [ADA])
        yield slack


class Scene:
    """A run of ``deploy`` waiting for approval of ``release``, its message in the fake."""

    def __init__(self, tmp_path: Path, fake: FakeSlack, timeout: str = "1h") -> None:
        self.fake = fake
        self.world = World(
            tmp_path,
            fake,
            {"podium.yaml": PODIUM_YAML, "workflows/deploy.yaml": DEPLOY.format(timeout=timeout)},
        )
        self.url = self.world.serve() + "/slack/events"
        self.run_id = self.world.start_run("deploy")
        self.world.drive()
        self.world.drain()
        self.approval_id = self.world.approval_id(self.run_id, "release")
        call = fake.wait_for("chat.postMessage", where=lambda c: "podium_approve" in str(c.args))
        self.channel, self.ts = call[0].body["channel"], call[0].body["ts"]

    @property
    def message(self) -> dict[str, Any]:
        return self.fake.message(self.channel, self.ts)

    def click(self, user: str, action: str = "podium_approve", **kw: Any) -> int:
        body = block_actions(self.fake, user, self.message, action)
        return post_signed(self.url, body, **kw).status_code

    def status(self) -> str:
        return self.world.store.get_approval(self.approval_id).status

    def ephemeral_to(self, user: str) -> str:
        calls = self.fake.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == user)
        assert calls[0].args["channel"] == self.channel
        return str(calls[0].args["text"])

    def refusals(self) -> list[tuple[str | None, str]]:
        events = self.world.store.events(kind="decision_refused")
        return [(e.actor, e.data["via"]) for e in events]


@pytest.fixture
def scene(tmp_path: Path, fake: FakeSlack) -> Iterator[Scene]:
    s = Scene(tmp_path, fake)
    yield s
    s.world.close()


def test_request_message_has_everything_an_approver_needs(scene: Scene) -> None:
    """The request shows task, command, revision, reason, approvers, deadline, buttons."""
    text = text_of(scene.message)
    for needle in ("`release`", "*deploy*", "echo released", "`c0ffee0` Ship it — Ada Author"):
        assert needle in text
    assert "<!subteam^S0SRE>" in text and f"<@{LEAD}>" in text and "static@example.com" in text
    assert "<!date^" in text and "(then reject)" in text
    found = buttons(scene.message)
    assert found["podium_approve"]["value"] == str(scene.approval_id)
    assert found["podium_approve"]["style"] == "primary"
    assert found["podium_reject"]["style"] == "danger"


def test_approver_click_approves_and_edits_the_message_in_place(scene: Scene) -> None:
    """An approver's click is recorded via Slack and the same message shows who and when."""
    assert scene.click(LEAD) == 200
    update = scene.fake.wait_for("chat.update", where=lambda c: c.args["ts"] == scene.ts)[0]
    assert update.args["channel"] == scene.channel
    text = text_of(scene.message)
    assert f"Approved by <@{LEAD}>" in text and "<!date^" in text
    assert not buttons(scene.message)
    req = scene.world.store.get_approval(scene.approval_id)
    assert (req.status, req.decided_by, req.via) == ("approved", LEAD, "slack")


def test_static_directory_alias_counts_when_slack_has_no_email(scene: Scene) -> None:
    """A user whose email Slack does not reveal is still an approver through podium.yaml."""
    assert scene.click("U0STATIC") == 200
    scene.fake.wait_for("chat.update", where=lambda c: "Approved by <@U0STATIC>" in text_of(c.args))
    assert scene.status() == "approved"


def test_non_approver_click_is_refused_privately_and_audited(scene: Scene) -> None:
    """A click by someone who is not an approver changes nothing; only they are told why."""
    assert scene.click(BOB) == 200
    assert "not an approver" in scene.ephemeral_to(BOB)
    assert scene.status() == "pending"
    assert scene.refusals() == [(BOB, "slack")]
    assert buttons(scene.message)  # still open for the real approvers


def test_self_approval_is_refused_by_the_four_eyes_rule(scene: Scene) -> None:
    """The commit's author (same Slack email) may not approve their own change."""
    assert scene.click(ADA) == 200
    note = scene.ephemeral_to(ADA)
    assert "four-eyes" in note and "ada@example.com" in note
    assert scene.status() == "pending"
    assert scene.refusals() == [(ADA, "slack")]


def test_superseded_request_says_so_and_refuses_clicks(scene: Scene) -> None:
    """A request superseded by a new revision is edited to say so; a click is refused."""
    store = scene.world.store
    with store.tx():
        store.decide_approval(scene.approval_id, "superseded", None, "superseded by abcdef1", "git")
        store.emit(
            "approval_superseded",
            workflow="deploy",
            run_id=scene.run_id,
            task="release",
            data={"approval_id": scene.approval_id, "revision": "abcdef1"},
            routes=[("slack", "#deploys")],
        )
    scene.world.drain()
    assert "Superseded" in text_of(scene.message) and "`abcdef1`" in text_of(scene.message)
    assert not buttons(scene.message)
    old = block_actions(
        scene.fake, LEAD, {**scene.message, "blocks": _with_buttons(scene)}, "podium_approve"
    )
    assert post_signed(scene.url, old).status_code == 200
    assert "superseded" in scene.ephemeral_to(LEAD)
    assert scene.status() == "superseded"
    assert scene.refusals() == [(LEAD, "slack")]


def _with_buttons(scene: Scene) -> list[dict[str, Any]]:
    """The blocks as an approver still sees them in a stale client (buttons included)."""
    first = scene.fake.log("chat.postMessage", where=lambda c: c.body.get("ts") == scene.ts)[0]
    return list(first.args["blocks"])


def test_expired_request_says_so_and_refuses_clicks(tmp_path: Path, fake: FakeSlack) -> None:
    """A request whose deadline passed is edited to say it expired; a late click is refused."""
    scene = Scene(tmp_path, fake, timeout="300ms")
    try:
        stale_blocks = list(scene.message["blocks"])
        time.sleep(0.4)
        scene.world.drive()
        scene.world.drain()
        assert "Expired" in text_of(scene.message)
        late = block_actions(
            fake, LEAD, {**scene.message, "blocks": stale_blocks}, "podium_approve"
        )
        assert post_signed(scene.url, late).status_code == 200
        assert "expired" in scene.ephemeral_to(LEAD)
        assert scene.status() == "rejected"
    finally:
        scene.world.close()


def test_reject_asks_for_a_reason_then_records_it(scene: Scene) -> None:
    """Reject opens a modal (views.open); submitting it rejects with the typed reason."""
    assert scene.click(LEAD, "podium_reject") == 200
    scene.fake.wait_for("views.open")
    opened = scene.fake.views[-1]
    assert opened["callback_id"] == "podium_reject_reason"
    assert scene.status() == "pending"  # nothing decided by the click alone
    body = view_submission(LEAD, opened, {"reason": "  wrong artefact  "})
    response = post_signed(scene.url, body)
    assert response.status_code == 200 and response.content == b""  # the modal closes
    scene.fake.wait_for("chat.update", where=lambda c: "wrong artefact" in text_of(c.args))
    req = scene.world.store.get_approval(scene.approval_id)
    assert (req.status, req.comment, req.decided_by) == ("rejected", "wrong artefact", LEAD)
    assert f"Rejected by <@{LEAD}>" in text_of(scene.message)


def test_reject_dialog_without_a_reason_shows_an_error_in_the_dialog(scene: Scene) -> None:
    """Submitting an empty reason keeps the modal open with an error on the field."""
    scene.click(LEAD, "podium_reject")
    scene.fake.wait_for("views.open")
    response = post_signed(scene.url, view_submission(LEAD, scene.fake.views[-1], {"reason": " "}))
    assert response.status_code == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"reason": "Say why you reject it."},
    }
    assert scene.status() == "pending"


def test_reject_by_a_non_approver_is_refused_without_a_dialog(scene: Scene) -> None:
    """A non-approver's Reject gets the refusal at once (audited), not a dialog."""
    assert scene.click(BOB, "podium_reject") == 200
    assert "not an approver" in scene.ephemeral_to(BOB)
    assert not scene.fake.log("views.open")
    assert scene.status() == "pending"
    assert scene.refusals() == [(BOB, "slack")]


@pytest.mark.parametrize(
    ("secret", "skew"),
    [
        ("not-the-signing-secret", 0),  # wrong secret
        (None, -310),  # stale: just outside the 5-minute replay window
        (None, -600),
        (None, +310),  # from the future
    ],
)
def test_bad_signatures_are_refused_with_401_and_change_nothing(
    scene: Scene, secret: str | None, skew: int
) -> None:
    """Wrong secret or a timestamp outside the 5-minute window: 401, no decision, no call."""
    before = len(scene.fake.calls)
    kwargs: dict[str, Any] = {"ts": int(time.time()) + skew}
    if secret is not None:
        kwargs["secret"] = secret
    assert scene.click(LEAD, **kwargs) == 401
    time.sleep(0.2)
    assert scene.status() == "pending"
    assert scene.world.store.events(kind="approval_decided") == []
    assert scene.fake.calls[before:] == []


def test_timestamp_inside_the_window_is_accepted(scene: Scene) -> None:
    """A request signed 290 s ago (clock skew, slow network) is still accepted."""
    assert scene.click(LEAD, ts=int(time.time()) - 290) == 200
    scene.fake.wait_for("chat.update", where=lambda c: "Approved by" in text_of(c.args))


def test_tampered_or_unsigned_requests_are_refused(scene: Scene) -> None:
    """A body changed after signing, or one without signature headers, gets 401."""
    body = block_actions(scene.fake, LEAD, scene.message, "podium_approve")
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    import httpx

    tampered = body.replace("U0LEAD", "U0BOB0")
    assert httpx.post(scene.url, content=tampered, headers=headers).status_code == 401
    plain = {"Content-Type": "application/x-www-form-urlencoded"}
    assert httpx.post(scene.url, content=body, headers=plain).status_code == 401
    assert scene.status() == "pending"


def test_url_verification_answers_the_challenge_only_when_signed(scene: Scene) -> None:
    """Slack's endpoint check gets its challenge back if signed, 401 otherwise."""
    body = json.dumps({"token": "x", "challenge": "3eZbrw1aB", "type": "url_verification"})
    signed = post_signed(scene.url, body, content_type="application/json")
    assert signed.status_code == 200 and signed.json() == {"challenge": "3eZbrw1aB"}
    forged = post_signed(scene.url, body, content_type="application/json", secret="nope")
    assert forged.status_code == 401
