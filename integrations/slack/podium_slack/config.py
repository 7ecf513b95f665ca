"""Slack settings, read once from the environment (the only place that reads it).

``SLACK_BOT_TOKEN`` turns the integration on. ``SLACK_SIGNING_SECRET`` enables the
HTTP endpoint (``/slack/events``); ``SLACK_APP_TOKEN`` enables Socket Mode instead
of (or as well as) it. ``SLACK_API_URL`` points the Web API client somewhere else
than ``https://slack.com/api/`` (a proxy, or a local fake in tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from podium.durations import parse_duration
from podium.errors import ConfigError

DEFAULT_API_URL = "https://slack.com/api/"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse_duration(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"invalid setting {name}: expected a duration like 5s, got {raw!r}")
    return value


@dataclass(frozen=True)
class SlackConfig:
    """What the Slack integration needs; tokens are kept out of ``repr``."""

    bot_token: str = field(repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    timeout: float = 5.0
    """Seconds per Web API call; the outbox retries, so this stays short."""
    default_channel: str | None = None
    """Channel for events whose route names none (``SLACK_CHANNEL``)."""
    source_alert_after: float = 120.0
    """How long the Git source must stay unreachable before the channel is alerted."""
    cache_ttl: float = 300.0
    """How long user emails and user-group members are cached."""

    @property
    def http_enabled(self) -> bool:
        return bool(self.signing_secret)

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlackConfig | None:
        """The settings, or None when Slack is not configured (no bot token)."""
        token = env.get("SLACK_BOT_TOKEN", "").strip()
        if not token:
            return None
        api_url = env.get("SLACK_API_URL", "").strip() or DEFAULT_API_URL
        if not api_url.startswith(("http://", "https://")):
            raise ConfigError(f"invalid setting SLACK_API_URL: not an http(s) URL: {api_url!r}")
        return cls(
            bot_token=token,
            signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip() or None,
            app_token=env.get("SLACK_APP_TOKEN", "").strip() or None,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            timeout=_seconds(env, "SLACK_API_TIMEOUT", 5.0) or 5.0,
            default_channel=env.get("SLACK_CHANNEL", "").strip() or None,
            source_alert_after=_seconds(env, "SLACK_SOURCE_ALERT_AFTER", 120.0),
            cache_ttl=_seconds(env, "SLACK_CACHE_TTL", 300.0),
        )


__all__ = ["DEFAULT_API_URL", "SlackConfig"]
