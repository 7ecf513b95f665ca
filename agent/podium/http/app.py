"""The agent's ASGI app: health, readiness, metrics, Git webhooks, integration mounts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from podium.http.body import CLOSE, BodyRefused, read_body
from podium.http.throttle import RecentPayloads, Throttle
from podium.http.webhooks import DeliveryLog, Verdict, check_body, check_headers, push_matches
from podium.metrics import Metrics

WEBHOOK_MAX_BODY = 25 * 1024 * 1024  # GitHub's own cap on a delivery
WEBHOOK_READERS = 2  # webhook bodies read at once (bounds memory under a flood)
TRIGGER_PERIOD = 1.0
TRIGGER_BURST = 10


class AgentFace(Protocol):
    """What the HTTP face needs from the running agent."""

    metrics: Metrics

    def readiness(self) -> dict[str, Any]: ...

    def request_reconcile(self, reason: str) -> None: ...

    def webhook_credentials(self) -> tuple[str | None, str | None]:
        """(GitHub HMAC secret, GitLab token)."""
        ...

    def tracked_branch(self) -> str | None: ...


def build_app(
    face: AgentFace,
    extra_routes: Sequence[BaseRoute] = (),
    *,
    max_body: int = WEBHOOK_MAX_BODY,
    trigger_period: float = TRIGGER_PERIOD,
    trigger_burst: int = TRIGGER_BURST,
) -> Starlette:
    """The face's routes; ``max_body`` caps a webhook's body; webhooks trigger reconciles at
    once up to ``trigger_burst`` in a row, then one per ``trigger_period`` (the ones in
    between are coalesced, not lost)."""
    deliveries = DeliveryLog()
    payloads = RecentPayloads()
    throttle = Throttle(lambda: face.request_reconcile("webhook"), trigger_period, trigger_burst)
    readers = asyncio.Semaphore(WEBHOOK_READERS)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        checks = face.readiness()
        ready = all(bool(v) for k, v in checks.items() if k in ("source", "store"))
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    async def metrics(_request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(face.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def answer(outcome: str, status: int, message: str, close: bool = False) -> Response:
        face.metrics.webhooks.labels(outcome).inc()
        key = "error" if status >= 400 else "message"
        return JSONResponse({key: message}, status_code=status, headers=CLOSE if close else None)

    async def git_webhook(request: Request) -> Response:
        github, gitlab = face.webhook_credentials()
        claim = check_headers(request.headers, github, gitlab)
        if isinstance(claim, Verdict):  # refused on its headers: the body is never read
            return answer("refused", claim.status, claim.message, close=True)
        try:
            async with readers:
                body = await read_body(request, max_body)
        except BodyRefused as exc:
            return answer("refused", exc.status, exc.message, close=True)
        verdict = check_body(claim, body, deliveries)
        if verdict.status >= 400:
            return answer("refused", verdict.status, verdict.message)
        if not verdict.trigger:
            return answer("ignored", verdict.status, verdict.message)
        branch = await run_in_threadpool(face.tracked_branch)
        if not push_matches(verdict.ref, branch):
            return answer("ignored", 202, f"ignored push to {verdict.ref}")
        if payloads.seen(body):  # the same push again, under a new or no delivery id
            return answer("coalesced", 202, "this push was delivered already")
        if throttle():
            return answer("triggered", 202, verdict.message)
        return answer("coalesced", 202, "coalesced with a reconcile already due")

    async def not_allowed(_request: Request) -> Response:
        return PlainTextResponse("method not allowed", status_code=405)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/webhooks/git", git_webhook, methods=["POST"]),
        *extra_routes,
    ]
    return Starlette(routes=routes)


__all__ = ["WEBHOOK_MAX_BODY", "AgentFace", "build_app"]
