"""The ``http`` kind: one request with httpx, judged by its status code.

The URL, header values and string values of the body may reference the task's
environment as ``${NAME}`` (nothing else is expanded), so parameters and secrets
reach the request without being stored in it. The response's status line and the
first :data:`BODY_LIMIT` bytes of its body go through the redacting
:class:`~podium.runners.output.OutputSink`. httpx errors become outcomes here.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from podium.runners.base import Outcome, OutcomeStatus, TaskContext
from podium.runners.output import OutputSink
from podium.spec.kindconfig import HttpSpec

BODY_LIMIT = 64 * 1024
"""Bytes of the response body kept in the log."""
DEFAULT_TIMEOUT = 30.0
"""Seconds allowed for a request when the task sets no timeout."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnknownVariableError(LookupError):
    """A ``${NAME}`` reference names nothing in the task's environment."""

    def __init__(self, name: str) -> None:
        super().__init__(f"${{{name}}} is not in the task's environment")
        self.name = name


def expand(text: str, env: Mapping[str, str]) -> str:
    """Replace every ``${NAME}`` in ``text`` with ``env[NAME]``; unknown names raise."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise UnknownVariableError(name)
        return env[name]

    return _VARIABLE.sub(value, text)


def expand_json(value: Any, env: Mapping[str, str]) -> Any:
    """:func:`expand` applied to every string value (not key) of a JSON document."""
    if isinstance(value, str):
        return expand(value, env)
    if isinstance(value, list):
        return [expand_json(item, env) for item in value]
    if isinstance(value, dict):
        return {key: expand_json(item, env) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class _Request:
    """An :class:`HttpSpec` with its ``${NAME}`` references expanded."""

    method: str
    url: str
    headers: dict[str, str]
    json_body: Any
    body: str | None


@dataclass(frozen=True)
class _Result:
    """What a request produced, before it becomes an :class:`Outcome`."""

    status: OutcomeStatus
    http_status: int | None = None
    error: str | None = None


def _build(spec: HttpSpec, env: Mapping[str, str]) -> _Request:
    """Expand the spec's references against the task's environment."""
    return _Request(
        method=spec.method,
        url=expand(spec.url, env),
        headers={name: expand(value, env) for name, value in spec.headers.items()},
        json_body=expand_json(spec.json_body, env),
        body=None if spec.body is None else expand(spec.body, env),
    )


class HttpRunner:
    """Makes the request of an ``http:`` task; a fresh client (no shared cookies) per run."""

    def __init__(self) -> None:
        self._ssl_context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def run(self, config: HttpSpec, ctx: TaskContext) -> Outcome:
        """Run one attempt of an ``http:`` task."""
        started = time.monotonic()
        if ctx.cancel.is_set():
            return Outcome(OutcomeStatus.CANCELLED, error="cancelled before start")
        try:
            sink = OutputSink.for_context(ctx)
        except OSError as exc:
            reason = f"cannot open log file {ctx.log_path}: {exc.strerror or exc}"
            return Outcome(OutcomeStatus.FAILED, error=reason, duration=time.monotonic() - started)
        with sink:
            sink.write_text(f"{config.method} {config.url}\n")
            result = self._attempt(config, ctx, sink, started)
            if result.error is not None:
                sink.note(result.error)
        return Outcome(
            result.status,
            http_status=result.http_status,
            error=None if result.error is None else _one_line(ctx.redact(result.error)),
            output_tail=sink.tail(),
            duration=time.monotonic() - started,
        )

    def _attempt(
        self, spec: HttpSpec, ctx: TaskContext, sink: OutputSink, started: float
    ) -> _Result:
        """Expand, send and judge the request; every failure is a result, not an exception."""
        if spec.json_body is not None and spec.body is not None:
            return _Result(OutcomeStatus.FAILED, error="an http task sets either json or body")
        try:
            request = _build(spec, ctx.env)
        except UnknownVariableError as exc:
            return _Result(OutcomeStatus.FAILED, error=f"cannot build request: {exc}")
        timeout = ctx.timeout or DEFAULT_TIMEOUT
        try:
            return self._send(request, spec, ctx, sink, started + timeout)
        except httpx.TimeoutException as exc:
            error = f"request timed out after {timeout:g}s ({type(exc).__name__})"
            return _Result(OutcomeStatus.TIMED_OUT, error=error)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, TypeError) as exc:
            return _Result(OutcomeStatus.FAILED, error=f"request failed: {_describe(exc)}")

    def _send(
        self,
        request: _Request,
        spec: HttpSpec,
        ctx: TaskContext,
        sink: OutputSink,
        deadline: float,
    ) -> _Result:
        """Send the request and stream up to :data:`BODY_LIMIT` bytes of the answer."""
        timeout = max(0.001, deadline - time.monotonic())
        with (
            httpx.Client(verify=self._ssl(), timeout=timeout) as client,
            client.stream(
                request.method,
                request.url,
                headers=request.headers,
                json=request.json_body,
                content=request.body,
                follow_redirects=spec.follow_redirects,
            ) as response,
        ):
            code = response.status_code
            sink.write_text(f"{response.http_version} {code} {response.reason_phrase}\n")
            stopped = _read_body(response, sink, ctx, deadline)
        if stopped is not None:
            return _Result(stopped.status, code, stopped.error)
        if code in spec.expect:
            return _Result(OutcomeStatus.SUCCEEDED, code)
        expected = ", ".join(str(status) for status in spec.expect)
        return _Result(OutcomeStatus.FAILED, code, f"HTTP status {code}, expected {expected}")

    def _ssl(self) -> ssl.SSLContext:
        """One TLS context per runner: building it is the slow part of a client."""
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            return self._ssl_context


def _read_body(
    response: httpx.Response, sink: OutputSink, ctx: TaskContext, deadline: float
) -> _Result | None:
    """Copy the body to the sink; a result when the deadline or a cancellation cut it."""
    kept = 0
    for chunk in response.iter_bytes():
        sink.write(chunk[: BODY_LIMIT - kept])
        kept += len(chunk)
        if kept >= BODY_LIMIT:
            sink.note(f"response body truncated to {BODY_LIMIT} bytes")
            return None
        if time.monotonic() > deadline:
            return _Result(OutcomeStatus.TIMED_OUT, error="timed out reading the response body")
        if ctx.cancel.is_set():
            return _Result(OutcomeStatus.CANCELLED, error="cancelled")
    return None


def _describe(exc: Exception) -> str:
    """``ConnectError: [Errno 111] Connection refused`` (the class says what went wrong)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = [
    "BODY_LIMIT",
    "DEFAULT_TIMEOUT",
    "HttpRunner",
    "UnknownVariableError",
    "expand",
    "expand_json",
]
