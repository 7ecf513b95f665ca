"""The bolt App and its two transports: the HTTP endpoint and Socket Mode.

One URL, ``/slack/events``, takes events, interactivity and slash commands.
Requests are signature-checked by bolt (``v0`` HMAC, five-minute replay window)
before any listener runs. Socket Mode (``SLACK_APP_TOKEN``) needs no public URL.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode.builtin import SocketModeHandler
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from podium.http.body import CLOSE, BodyRefused, read_body
from podium.log import get_logger

from .config import SlackConfig

log = get_logger("podium.slack")

EVENTS_PATH = "/slack/events"
MAX_BODY = 1024 * 1024
REPLAY_WINDOW = 300  # seconds, as bolt's SignatureVerifier
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class _BoltLog(logging.Handler):
    """bolt's log lines go through Podium's own logging (its format, its redaction), less
    the notice that the token in SLACK_BOT_TOKEN is unused: the client given carries it."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("As you gave `client` as well"):
            return
        get_logger("podium.slack.bolt").log(record.levelno, "slack_bolt", message=message)


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("podium.slack.bolt")
    if not any(isinstance(h, _BoltLog) for h in logger.handlers):
        logger.addHandler(_BoltLog())
        logger.propagate = False
    return logger


def bolt_app(config: SlackConfig, client: WebClient) -> App:
    """The bolt App, verifying signatures; ``auth.test`` waits for the first request."""
    return App(
        client=client,
        signing_secret=config.signing_secret or "",
        token_verification_enabled=False,  # Slack may be down when the agent starts
        process_before_response=False,  # ack first; listeners keep working after it
        name="podium",
        logger=_bolt_logger(),
    )


def _plausible_signature(headers: Mapping[str, str]) -> bool:
    """False when a signature header bolt would check is malformed or out of its window.

    bolt itself answers 500 to a non-numeric timestamp or a non-ASCII signature; both
    are refused here as the 401 bolt gives any other bad signature. Absent headers are
    left to bolt (Slack's ``ssl_check`` comes unsigned)."""
    stamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if stamp is not None:
        if not _TIMESTAMP.fullmatch(stamp):
            return False
        if abs(time.time() - int(stamp)) > REPLAY_WINDOW:
            return False
    return signature is None or _SIGNATURE.fullmatch(signature) is not None


class ThreadedSlackRequestHandler(SlackRequestHandler):
    """bolt's Starlette adapter, with ``dispatch`` moved off the event loop.

    The stock handler calls the blocking ``App.dispatch`` on the event loop, which
    would stall the agent's health and metrics endpoints while bolt waits for
    ``auth.test`` or for an ``ack``.
    """

    async def handle(
        self, req: Request, addition_context_properties: dict[str, Any] | None = None
    ) -> Response:
        if req.method != "POST":
            return await super().handle(req, addition_context_properties)
        if not _plausible_signature(req.headers):  # refused before the body is read
            return JSONResponse({"error": "invalid request"}, status_code=401, headers=CLOSE)
        try:
            body = await read_body(req, MAX_BODY)
        except BodyRefused as exc:
            return exc.response()
        try:
            bolt_request = to_bolt_request(req, body, addition_context_properties)
        except (UnicodeError, ValueError, AttributeError, TypeError):
            # bolt parses the body before it checks the signature: garbage is refused here
            return PlainTextResponse("malformed request", status_code=400)
        bolt_response = await run_in_threadpool(self.app.dispatch, bolt_request)
        return to_starlette_response(bolt_response)


def http_routes(app: App) -> list[BaseRoute]:
    """``POST /slack/events`` for the agent's Starlette app."""
    handler = ThreadedSlackRequestHandler(app)

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    return [Route(EVENTS_PATH, slack_events, methods=["POST"])]


class SocketMode:
    """Connects in the background (and keeps trying) so that start() never blocks."""

    def __init__(self, app: App, app_token: str, max_delay: float = 60.0) -> None:
        self.app = app
        self._token = app_token
        self.max_delay = max_delay
        self.handler: SocketModeHandler | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._connect, name="podium-slack-socket", daemon=True
        )
        self._thread.start()

    def _connect(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            handler = SocketModeHandler(self.app, app_token=self._token)
            try:
                handler.connect()  # type: ignore[no-untyped-call]
            except Exception as exc:  # Slack unreachable or token refused: try again later
                log.warning(
                    "slack_socket_mode_connect_failed", error=type(exc).__name__, retry_in=delay
                )
                handler.client.close()
                self._stop.wait(delay)
                delay = min(delay * 2, self.max_delay)
                continue
            self.handler = handler
            self._connected.set()
            log.info("slack_socket_mode_connected")
            return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.handler is not None:
            self.handler.close()  # type: ignore[no-untyped-call]
            self.handler = None
        self._connected.clear()


__all__ = ["EVENTS_PATH", "SocketMode", "ThreadedSlackRequestHandler", "bolt_app", "http_routes"]
