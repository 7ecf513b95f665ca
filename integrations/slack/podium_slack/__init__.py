"""Slack for Podium: run threads, failure alerts, approval buttons, ``/podium``.

Loaded by the agent through the ``podium.integrations`` entry point
(``slack = "podium_slack:setup"``). Configured from the environment:
``SLACK_BOT_TOKEN`` (required), ``SLACK_SIGNING_SECRET`` (HTTP endpoint
``/slack/events``), ``SLACK_APP_TOKEN`` (Socket Mode), ``SLACK_API_URL``.
Without a bot token the agent carries on with console notifications and CLI
approvals.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from podium.integration import Integration, IntegrationContext
from podium.log import get_logger

from .config import SlackConfig

log = get_logger("podium.slack")

NOT_CONFIGURED = "slack not configured: console notifications and CLI approvals"
_said = threading.Event()


def setup(ctx: IntegrationContext, env: Mapping[str, str] | None = None) -> Integration | None:
    """The Slack integration, or None (logged once) when Slack is not configured."""
    config = SlackConfig.from_env(os.environ if env is None else env)
    if config is None:
        if not _said.is_set():
            _said.set()
            log.info(NOT_CONFIGURED)
        return None
    from podium.source.git import mask_url

    from .wiring import build

    integration = build(ctx, config)
    log.info(
        "slack_configured",
        api_url=mask_url(config.api_url),
        http=config.http_enabled,
        socket_mode=config.socket_mode,
    )
    if not config.http_enabled and not config.socket_mode:
        log.warning(
            "slack_interactivity_disabled",
            hint="set SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)",
        )
    elif config.http_enabled and not config.socket_mode and not _listening(ctx):
        log.warning(
            "slack_clicks_cannot_arrive",
            hint="SLACK_SIGNING_SECRET is set but the agent serves no HTTP face: buttons and"
            " slash commands cannot reach /slack/events; start it with --listen (behind"
            " HTTPS) or use Socket Mode (SLACK_APP_TOKEN)",
        )
    return integration


def _listening(ctx: IntegrationContext) -> bool:
    """Whether the agent serves HTTP (unknown settings: assume it does)."""
    settings = ctx.settings
    return settings is None or bool(getattr(settings, "listen", None))


__all__ = ["NOT_CONFIGURED", "SlackConfig", "setup"]
