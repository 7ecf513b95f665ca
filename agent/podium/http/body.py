"""Reading a request body within a size cap, as it streams."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

CLOSE = {"Connection": "close"}


class BodyRefused(Exception):
    """The body was not read: too large, or its length is malformed, or the client left."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        """A plain-text answer that also closes the connection (the rest is not read)."""
        return PlainTextResponse(self.message, status_code=self.status, headers=CLOSE)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes: refused (413) as soon as more is declared or sent."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.strip().isdigit()):
            raise BodyRefused(400, "bad content-length")
        if int(declared) > limit:
            raise BodyRefused(413, "payload too large")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyRefused(413, "payload too large")
    except ClientDisconnect:
        raise BodyRefused(400, "client disconnected") from None
    return bytes(body)


__all__ = ["CLOSE", "BodyRefused", "read_body"]
