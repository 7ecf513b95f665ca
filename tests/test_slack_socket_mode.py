"""Socket Mode: the same listeners over a WebSocket from a local fake Slack.

One connection is shared by the module's tests (closing the builtin client takes ~3 s).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.conftest import MACHINE_ENV
from tests.slack_fake import (
    FakeSlack,
    FakeSocketMode,
    World,
    block_actions,
    slash_fields,
    text_of,
)

pytestmark = pytest.mark.slow

PODIUM_YAML = """\
notify:
  slack: {channel: "#deploys", on: [approval_requested, approval_decided, succeeded]}
"""
DEPLOY = """\
name: deploy
tasks:
  - id: release
    run: echo released
    approval: {approvers: [U0LEAD]}
"""


class Connected:
    def __init__(self, fake: FakeSlack, ws: FakeSocketMode, world: World) -> None:
        self.fake, self.ws, self.world = fake, ws, world


@pytest.fixture(scope="module")
def connected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connected]:
    with pytest.MonkeyPatch.context() as mp, FakeSlack() as fake:
        for name in MACHINE_ENV:  # the autouse fixture is per test; this one per module
            mp.delenv(name, raising=False)
        fake.add_user("U0LEAD", "lead", "lead@example.com")
        ws = FakeSocketMode().start()
        fake.socket_url = ws.url
        env = {"SLACK_APP_TOKEN": fake.app_token, "SLACK_SIGNING_SECRET": ""}
        world = World(
            tmp_path_factory.mktemp("socket"),
            fake,
            {"podium.yaml": PODIUM_YAML, "workflows/deploy.yaml": DEPLOY},
            env=env,
        )
        assert world.integration.start is not None and world.integration.stop is not None
        assert world.integration.routes == ()  # no signing secret: no HTTP endpoint
        world.integration.start()
        try:
            ws.wait_connected()
            yield Connected(fake, ws, world)
        finally:
            world.integration.stop()
            ws.stop()
            world.close()


def test_connects_with_the_app_token(connected: Connected) -> None:
    """apps.connections.open is called with the xapp- token through SLACK_API_URL."""
    [call] = connected.fake.log("apps.connections.open")
    assert call.ok and call.token == connected.fake.app_token


def test_button_click_over_the_socket_is_acked_and_decided(connected: Connected) -> None:
    """A block_actions envelope is acknowledged and the approval goes through Decisions."""
    world, fake = connected.world, connected.fake
    run_id = world.start_run("deploy")
    world.drive()
    world.drain()
    post = fake.wait_for("chat.postMessage", where=lambda c: "podium_approve" in str(c.args))[0]
    message = fake.message(post.body["channel"], post.body["ts"])
    body = block_actions(fake, "U0LEAD", message, "podium_approve")
    payload: dict[str, Any] = json.loads(parse_qs(body)["payload"][0])
    envelope = connected.ws.send("interactive", payload)
    assert connected.ws.wait_ack(envelope) == {"envelope_id": envelope}
    fake.wait_for("chat.update", where=lambda c: "Approved by <@U0LEAD>" in text_of(c.args))
    req = world.store.approvals(run_id=run_id)[0]
    assert (req.status, req.via) == ("approved", "slack")


def test_slash_command_help_travels_back_in_the_ack(connected: Connected) -> None:
    """``/podium help`` is answered in the envelope's ack payload (ephemeral)."""
    fields = slash_fields(connected.fake, "U0LEAD", "help")
    envelope = connected.ws.send("slash_commands", fields, accepts_response_payload=True)
    ack = connected.ws.wait_ack(envelope)
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "/podium retry RUN" in ack["payload"]["text"]


def test_slash_command_answers_through_the_response_url(connected: Connected) -> None:
    """``/podium runs ghost`` is acked at once and answered on the response_url."""
    fields = slash_fields(connected.fake, "U0LEAD", "runs ghost")
    envelope = connected.ws.send("slash_commands", fields, accepts_response_payload=True)
    assert "payload" not in connected.ws.wait_ack(envelope)
    answer = connected.fake.wait_for("response_url")[-1].args
    assert answer == {
        "path": answer["path"],
        "text": "No runs of `ghost` yet.",
        "response_type": "ephemeral",
        "replace_original": False,
    }
