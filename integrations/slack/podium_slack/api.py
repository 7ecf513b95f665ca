"""The Slack Web API boundary: the few calls Podium makes, with errors translated.

``slack_sdk`` exceptions stop here. A rate limit (HTTP 429) becomes
:class:`~podium.notify.base.RetryLater` carrying ``Retry-After``; everything else
(HTTP 5xx, timeouts, refused connections, ``ok: false``) becomes :class:`SlackError`,
which says whether trying again can help.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.web import SlackResponse

from podium.errors import TransientError
from podium.notify.base import RetryLater

from .config import SlackConfig

# ``ok: false`` errors that a retry can cure without anybody changing anything.
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Credentials problems: keep retrying (never drop), an operator must fix the token.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


class SlackError(TransientError):
    """A Slack Web API call failed (the message never contains a token)."""

    def __init__(self, method: str, error: str, status: int | None = None) -> None:
        where = f"HTTP {status}" if status and status != 200 else "ok=false"
        super().__init__(f"slack {method} failed: {error} ({where})")
        self.method = method
        self.error = error
        self.status = status

    @property
    def permanent(self) -> bool:
        """True for answers that will not change on retry (bad channel, bad blocks…)."""
        return (
            self.status == 200
            and self.error not in _TRANSIENT_ERRORS
            and self.error not in AUTH_ERRORS
        )


def web_client(config: SlackConfig, *, retries: bool) -> WebClient:
    """A client for ``SLACK_API_URL`` with a short timeout.

    ``retries=False`` (notifier sends): no slack_sdk retry handlers at all, the outbox
    retries with backoff. ``retries=True`` (interactive follow-ups after ``ack``): the
    default connection-error retry plus one retry after a 429.
    """
    client = WebClient(
        token=config.bot_token,
        base_url=config.api_url,
        timeout=max(1, round(config.timeout)),
        retry_handlers=None if retries else [],
    )
    if retries:
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    return client


def _retry_after(response: SlackResponse) -> float:
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    raw = headers.get("retry-after")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


class SlackApi:
    """Typed wrappers over the Web API methods Podium uses."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _call(self, method: str, fn: Callable[..., SlackResponse], **kwargs: Any) -> SlackResponse:
        try:
            return fn(**kwargs)
        except SlackApiError as exc:
            response = exc.response
            status = response.status_code
            data = response.data if isinstance(response.data, dict) else {}
            error = str(data.get("error") or "unknown_error")
            if status == 429 or error == "ratelimited":
                raise RetryLater(_retry_after(response), f"slack {method} rate limited") from None
            raise SlackError(method, error, status) from None
        except (SlackClientError, urllib.error.URLError, TimeoutError) as exc:
            raise SlackError(method, f"unreachable: {type(exc).__name__}") from None
        except OSError as exc:  # connection reset, refused, DNS
            raise SlackError(method, f"unreachable: {type(exc).__name__}") from None

    # -- messages ---------------------------------------------------------------

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> tuple[str, str]:
        """Post a message; returns the channel *id* and the message ``ts``."""
        args: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            args["thread_ts"] = thread_ts
            if broadcast:
                args["reply_broadcast"] = True
        resp = self._call("chat.postMessage", self.client.chat_postMessage, **args)
        return str(resp["channel"]), str(resp["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self._call(
            "chat.update", self.client.chat_update, channel=channel, ts=ts, text=text, blocks=blocks
        )

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        self._call(
            "chat.postEphemeral",
            self.client.chat_postEphemeral,
            channel=channel,
            user=user,
            text=text,
        )

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._call("views.open", self.client.views_open, trigger_id=trigger_id, view=view)

    # -- people -----------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any]:
        resp = self._call("users.info", self.client.users_info, user=user_id)
        return dict(resp["user"])

    def user_by_email(self, email: str) -> dict[str, Any]:
        resp = self._call("users.lookupByEmail", self.client.users_lookupByEmail, email=email)
        return dict(resp["user"])

    def usergroups(self) -> list[dict[str, Any]]:
        resp = self._call("usergroups.list", self.client.usergroups_list)
        return [dict(g) for g in resp.get("usergroups") or []]

    def usergroup_members(self, group_id: str) -> list[str]:
        resp = self._call(
            "usergroups.users.list", self.client.usergroups_users_list, usergroup=group_id
        )
        return [str(u) for u in resp.get("users") or []]


__all__ = ["AUTH_ERRORS", "SlackApi", "SlackError", "web_client"]
