"""Tests for the http runner against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from podium.runners.base import OutcomeStatus, TaskContext
from podium.runners.http import BODY_LIMIT, HttpRunner, expand
from podium.spec.kindconfig import HttpSpec


@dataclass
class Recorded:
    """What the server saw of one request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """A running test server: its base URL and the requests it received."""

    url: str
    requests: list[Recorded] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _RecordingServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.recorded.append(
            Recorded(self.command, self.path, dict(self.headers.items()), body)
        )
        status, payload = _route(self.path)
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    recorded: list[Recorded]


def _route(path: str) -> tuple[int, bytes]:
    if path.startswith("/fail"):
        return 500, b"boom"
    if path.startswith("/secret"):
        return 200, b'{"token": "s3cr3t-value"}'
    if path.startswith("/slow"):
        time.sleep(2)
        return 200, b"late"
    if path.startswith("/big"):
        return 200, b"z" * (BODY_LIMIT * 3)
    return 200, b"hello"


@pytest.fixture
def server() -> Iterator[Server]:
    """A threaded HTTP server on an ephemeral port of 127.0.0.1."""
    httpd = _RecordingServer(("127.0.0.1", 0), _Handler)
    httpd.recorded = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd.recorded)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def make_ctx(tmp_path: Path, **overrides: Any) -> TaskContext:
    """A context logging under ``tmp_path``."""
    values: dict[str, Any] = {
        "run_id": 1,
        "workflow": "wf",
        "task_id": "call",
        "attempt": 1,
        "cwd": tmp_path,
        "repo_root": tmp_path,
        "env": {},
        "log_path": tmp_path / "logs" / "call.log",
    }
    values.update(overrides)
    return TaskContext(**values)


def spec(**fields: Any) -> HttpSpec:
    """A validated http task config."""
    return HttpSpec.model_validate(fields)


def test_expected_status_succeeds(server: Server, tmp_path: Path) -> None:
    """A 200 response (in expect) succeeds; status line and body go to the log."""
    ctx = make_ctx(tmp_path)
    outcome = HttpRunner().run(spec(url=f"{server.url}/ok"), ctx)
    assert outcome.status is OutcomeStatus.SUCCEEDED
    assert outcome.http_status == 200
    log = ctx.log_path.read_text()
    assert "200 OK" in log
    assert log.endswith("hello")


def test_unexpected_status_fails(server: Server, tmp_path: Path) -> None:
    """A 500 response fails, with http_status 500 and a one-line error."""
    outcome = HttpRunner().run(spec(url=f"{server.url}/fail"), make_ctx(tmp_path))
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.http_status == 500
    assert outcome.error is not None
    assert "500" in outcome.error
    assert "\n" not in outcome.error


def test_custom_expect_accepts_other_statuses(server: Server, tmp_path: Path) -> None:
    """A status listed in expect counts as success even when it is an error code."""
    outcome = HttpRunner().run(spec(url=f"{server.url}/fail", expect=[500]), make_ctx(tmp_path))
    assert outcome.ok


def test_connection_refused_fails_cleanly(tmp_path: Path) -> None:
    """A refused connection is a failed outcome with an error, not an exception."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = HttpRunner().run(spec(url=f"http://127.0.0.1:{port}/"), make_ctx(tmp_path))
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.http_status is None
    assert outcome.error is not None
    assert "ConnectError" in outcome.error


def test_slow_server_times_out(server: Server, tmp_path: Path) -> None:
    """A server slower than the task timeout gives TIMED_OUT."""
    ctx = make_ctx(tmp_path, timeout=0.3)
    start = time.monotonic()
    outcome = HttpRunner().run(spec(url=f"{server.url}/slow"), ctx)
    assert outcome.status is OutcomeStatus.TIMED_OUT
    assert time.monotonic() - start < 1.5


def test_variables_are_expanded_from_env(server: Server, tmp_path: Path) -> None:
    """${NAME} in url, header values and JSON strings is filled from the task env."""
    env = {"WHERE": "ok/deploy", "TOKEN": "abc", "VERSION": "1.2"}
    config = spec(
        method="POST",
        url=f"{server.url}/${{WHERE}}?v=${{VERSION}}",
        headers={"Authorization": "Bearer ${TOKEN}"},
        json={"version": "${VERSION}", "tags": ["v${VERSION}", 3], "${KEY}": True},
    )
    outcome = HttpRunner().run(config, make_ctx(tmp_path, env=env))
    assert outcome.ok
    request = server.requests[-1]
    assert request.path == "/ok/deploy?v=1.2"
    assert request.headers["Authorization"] == "Bearer abc"
    assert json.loads(request.body) == {"version": "1.2", "tags": ["v1.2", 3], "${KEY}": True}


def test_body_string_is_expanded(server: Server, tmp_path: Path) -> None:
    """A raw body string is expanded and sent as is."""
    config = spec(method="PUT", url=f"{server.url}/ok", body="name=${NAME}")
    outcome = HttpRunner().run(config, make_ctx(tmp_path, env={"NAME": "podium"}))
    assert outcome.ok
    assert server.requests[-1].body == b"name=podium"


def test_unknown_variable_fails_without_request(server: Server, tmp_path: Path) -> None:
    """A ${NAME} missing from the env fails clearly and sends nothing."""
    config = spec(url=f"{server.url}/ok", headers={"X-Key": "${MISSING}"})
    outcome = HttpRunner().run(config, make_ctx(tmp_path))
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.error is not None
    assert "${MISSING}" in outcome.error
    assert server.requests == []


def test_only_braced_references_expand() -> None:
    """Only ${NAME} is expanded; $NAME and other syntax stay literal."""
    assert expand("$A ${A} {A} $${A}", {"A": "x"}) == "$A x {A} $x"


def test_secret_in_response_is_redacted(server: Server, tmp_path: Path) -> None:
    """A secret in the response body never reaches the log file or the tail."""
    ctx = make_ctx(tmp_path, redact=lambda text: text.replace("s3cr3t-value", "***"))
    outcome = HttpRunner().run(spec(url=f"{server.url}/secret"), ctx)
    assert outcome.ok
    assert "s3cr3t-value" not in ctx.log_path.read_text()
    assert "***" in ctx.log_path.read_text()
    assert "s3cr3t-value" not in outcome.output_tail


def test_large_body_is_truncated_in_log(server: Server, tmp_path: Path) -> None:
    """Only the first 64 KiB of a response body is kept."""
    ctx = make_ctx(tmp_path)
    outcome = HttpRunner().run(spec(url=f"{server.url}/big"), ctx)
    assert outcome.ok
    assert ctx.log_path.read_text().count("z") == BODY_LIMIT
    assert "truncated" in outcome.output_tail


def test_cancelled_before_start_sends_nothing(server: Server, tmp_path: Path) -> None:
    """A set cancel event stops the task before any request."""
    ctx = make_ctx(tmp_path)
    ctx.cancel.set()
    outcome = HttpRunner().run(spec(url=f"{server.url}/ok"), ctx)
    assert outcome.status is OutcomeStatus.CANCELLED
    assert server.requests == []
