"""The agent's ASGI app: health, readiness, metrics, Git webhooks, integration mounts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from podium.http.webhooks import DeliveryLog, verify
from podium.metrics import Metrics


class AgentFace(Protocol):
    """What the HTTP face needs from the running agent."""

    metrics: Metrics

    def readiness(self) -> dict[str, Any]: ...

    def request_reconcile(self, reason: str) -> None: ...

    def webhook_credentials(self) -> tuple[str | None, str | None]:
        """(GitHub HMAC secret, GitLab token)."""
        ...

    def tracked_branch(self) -> str | None: ...


def build_app(face: AgentFace, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    deliveries = DeliveryLog()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        checks = face.readiness()
        ready = all(bool(v) for k, v in checks.items() if k in ("source", "store"))
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    async def metrics(_request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(face.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def git_webhook(request: Request) -> Response:
        body = await request.body()
        github, gitlab = face.webhook_credentials()
        verdict = verify(request.headers, body, github, gitlab, deliveries)
        if verdict.trigger:
            branch = face.tracked_branch()
            if branch and verdict.ref and verdict.ref not in (f"refs/heads/{branch}", branch):
                face.metrics.webhooks.labels("ignored").inc()
                return JSONResponse({"message": f"ignored push to {verdict.ref}"}, 202)
            face.request_reconcile("webhook")
        outcome = (
            "refused" if verdict.status == 401 else "triggered" if verdict.trigger else "ignored"
        )
        face.metrics.webhooks.labels(outcome).inc()
        if verdict.status == 401:
            return JSONResponse({"error": verdict.message}, status_code=401)
        return JSONResponse({"message": verdict.message}, status_code=verdict.status)

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


__all__ = ["AgentFace", "build_app"]
