"""Loading the Slack integration: settings, what it plugs into the agent, the manifest."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest
import yaml
from structlog.testing import capture_logs

import podium_slack as slack
from podium.decisions import Decisions
from podium.errors import ConfigError
from podium.integration import IntegrationContext, load_integrations
from podium.store import open_store
from podium_slack.config import SlackConfig
from tests.slack_fake import BOT_TOKEN, FakeSlack, World

MANIFEST = Path(slack.__file__).parent / "manifest.yaml"


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IntegrationContext]:
    store = open_store(tmp_path / "state.db")
    yield IntegrationContext(
        store=store,
        decisions=Decisions(store),
        request_reconcile=lambda _reason: None,
        plan_text=lambda _wf: "",
        status_rows=list,
        repo_config=lambda: None,
    )
    store.close()


def test_without_a_bot_token_setup_returns_none_and_says_so_once(
    ctx: IntegrationContext,
) -> None:
    """No SLACK_BOT_TOKEN: not an error; one log line says what still works."""
    slack._said.clear()
    with capture_logs() as logs:
        assert slack.setup(ctx, env={}) is None
        assert slack.setup(ctx, env={"SLACK_SIGNING_SECRET": "x"}) is None
    assert [e["event"] for e in logs] == [
        "slack not configured: console notifications and CLI approvals"
    ]


def test_http_mode_plugs_in_a_notifier_a_route_and_a_directory(ctx: IntegrationContext) -> None:
    """Token and signing secret: notifier, POST /slack/events, directory, start/stop."""
    integration = slack.setup(
        ctx, env={"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s3cret"}
    )
    assert integration is not None
    assert integration.name == "slack" and list(integration.notifiers) == ["slack"]
    [route] = integration.routes
    assert route.path == "/slack/events" and route.methods == {"POST"}  # type: ignore[attr-defined]
    assert integration.directory is not None
    assert integration.start is not None and integration.stop is not None
    integration.start()
    integration.stop()


def test_socket_mode_and_notification_only_setups(ctx: IntegrationContext) -> None:
    """An app token means Socket Mode without a route; a bot token alone only notifies."""
    socket = slack.setup(ctx, env={"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-1"})
    assert socket is not None and socket.routes == ()
    with capture_logs() as logs:
        bare = slack.setup(ctx, env={"SLACK_BOT_TOKEN": BOT_TOKEN})
    assert bare is not None and bare.routes == ()
    assert "slack_interactivity_disabled" in [e["event"] for e in logs]


def test_the_agent_loads_it_through_the_entry_point(
    ctx: IntegrationContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``podium.integrations`` names ``podium_slack:setup``; the loader enables it."""
    [ep] = [e for e in entry_points(group="podium.integrations") if e.name == "slack"]
    assert ep.value == "podium_slack:setup"
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    assert [i.name for i in load_integrations(ctx)] == ["slack"]


def test_settings_are_read_and_checked() -> None:
    """Settings are normalised and checked; tokens never show in repr."""
    config = SlackConfig.from_env(
        {
            "SLACK_BOT_TOKEN": " xoxb-secret ",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
            "SLACK_API_TIMEOUT": "2s",
            "SLACK_SOURCE_ALERT_AFTER": "10m",
        }
    )
    assert config is not None
    assert config.bot_token == "xoxb-secret" and config.api_url == "http://127.0.0.1:9/api/"
    assert config.timeout == 2.0 and config.source_alert_after == 600.0
    assert "xoxb" not in repr(config)
    with pytest.raises(ConfigError, match="SLACK_API_URL"):
        SlackConfig.from_env({"SLACK_BOT_TOKEN": "x", "SLACK_API_URL": "slack.com"})
    with pytest.raises(ConfigError, match="SLACK_API_TIMEOUT"):
        SlackConfig.from_env({"SLACK_BOT_TOKEN": "x", "SLACK_API_TIMEOUT": "soon"})


def test_manifest_is_ready_to_paste() -> None:
    """The manifest names Podium, the bot scopes, /podium and interactivity on one URL."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["display_information"]["name"] == "Podium"
    assert manifest["oauth_config"]["scopes"]["bot"] == [
        "chat:write",
        "chat:write.public",
        "commands",
        "users:read",
        "users:read.email",
        "usergroups:read",
    ]
    url = "https://podium.example.com/slack/events"
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/podium" and command["url"] == url
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": url}
    assert manifest["settings"]["socket_mode_enabled"] is False


def test_oversized_requests_are_refused_before_bolt(
    tmp_path: Path, ctx: IntegrationContext
) -> None:
    """A body over 1 MiB gets 413 without being read into bolt."""
    with FakeSlack() as fake:
        world = World(
            tmp_path / "w",
            fake,
            {"workflows/w.yaml": "name: w\ntasks:\n  - {id: a, run: 'true'}\n"},
        )
        try:
            url = world.serve() + "/slack/events"
            response = httpx.post(url, content=b"x" * (1024 * 1024 + 1))
            assert response.status_code == 413
        finally:
            world.close()


def test_a_signing_secret_without_an_http_face_is_warned_about(
    ctx: IntegrationContext, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """No --listen and no Socket Mode: a warning that clicks cannot arrive; no raw bolt lines."""
    from types import SimpleNamespace

    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s3cret"}
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # where bolt itself looks for a token
    for listen, warned in ((None, True), ("127.0.0.1:8080", False)):
        ctx.settings = SimpleNamespace(listen=listen)
        with capture_logs() as logs:
            assert slack.setup(ctx, env=env) is not None
        events = [e["event"] for e in logs]
        assert ("slack_clicks_cannot_arrive" in events) is warned, events
    assert "As you gave `client` as well" not in "".join(capfd.readouterr())
