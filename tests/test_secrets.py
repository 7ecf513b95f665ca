"""Secret redaction: whole values, each line of a multi-line secret, percent-encoded forms.

The redaction set is process-wide, so every test uses values of its own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from podium import secrets
from podium.runners.base import OutcomeStatus, TaskContext
from podium.runners.http import HttpRunner
from podium.runners.output import OutputSink
from podium.spec.kindconfig import HttpSpec

PEM_BODY = [
    "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu",
    "KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm",
    "o3qGy0t6z09AIJtH+5OeRV1be+N4cDYJKffGzDa88vQENZiRm0GRq6a+HPGQMd2k",
]


def pem(marker: str) -> str:
    """A PEM-shaped secret whose lines are unique to the test (short lines included)."""
    body = [f"{line[:-6]}{marker}" for line in PEM_BODY]
    return "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *body, "=", "", "Zq", "-----END-----"])


def test_each_line_of_a_multi_line_secret_file_is_redacted_alone(tmp_path: Path) -> None:
    """A PEM from the secrets directory: one printed line of it is masked on its own."""
    (tmp_path / "DEPLOY_KEY").write_text(pem("lineA1") + "\n")
    value = secrets.resolve("DEPLOY_KEY", tmp_path)
    lines = value.splitlines()
    assert secrets.redact(f"key line: {lines[2]} (end)") == "key line: *** (end)"
    assert secrets.redact(value) == "***"
    assert secrets.redact(f"{lines[1]}\r\n{lines[3]}\r\n") == "***\r\n***\r\n"


def test_short_lines_of_a_secret_are_left_alone() -> None:
    """Lines under four characters (`=`, empty, `Zq`) are not redacted elsewhere."""
    value = pem("lineB2")
    secrets.register(value)
    text = "a = b, Zq and == stay\n\n"
    assert secrets.redact(text) == text


def test_a_secret_printed_line_by_line_never_reaches_the_log(tmp_path: Path) -> None:
    """Output that arrives one line per chunk is redacted line by line in file and tail."""
    value = pem("lineC3")
    secrets.register(value)
    log = tmp_path / "task.log"
    with OutputSink(log, 1 << 20, secrets.redact, tail_lines=20) as sink:
        for line in value.splitlines():
            sink.write(f"{line}\n".encode())
        tail = sink.tail()
    written = log.read_text()
    for line in value.splitlines()[1:4]:
        assert line not in written and line not in tail
    assert written.count("***") >= 5


@pytest.mark.parametrize(
    "encode",
    [
        lambda v: quote(v, safe=""),
        quote,
        quote_plus,
        lambda v: re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(v, safe="")),
        lambda v: v.replace(" ", "%20").replace("é", "%C3%A9"),  # what an HTTP client sends
    ],
    ids=["quote-all", "quote", "quote_plus", "lower-hex", "partial"],
)
def test_url_encoded_forms_of_a_secret_are_redacted(encode: Any) -> None:
    """quote, quote_plus, lower-case and partial percent-encodings of a secret are masked."""
    value = "p@ss w/rd+é:D1"
    secrets.register(value)
    assert secrets.redact(f"GET /hook?token={encode(value)}&x=1") == "GET /hook?token=***&x=1"


def test_plain_text_resembling_a_secret_is_kept() -> None:
    """Only the secret's characters (literal or encoded) match; other text is untouched."""
    secrets.register("k3y-Alpha_7!")
    assert secrets.redact("k3y-Alpha_7? k3y%2DAlpha_7%21") == "k3y-Alpha_7? k3y%2DAlpha_7%21"
    assert secrets.redact("k3y-Alpha_7%21") == "***"


class _Echo(BaseHTTPRequestHandler):
    """Answers every GET with the request line it received."""

    def do_GET(self) -> None:
        payload = f"you asked for {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def echo() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that echoes the request path; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_http_task_echoing_an_encoded_secret_logs_only_the_mask(echo: str, tmp_path: Path) -> None:
    """A secret sent in a query string and echoed back percent-encoded is masked in the log."""
    value = "hunter 2@é/xy"
    secrets.register(value)
    ctx = TaskContext(
        run_id=1,
        workflow="wf",
        task_id="call",
        attempt=1,
        cwd=tmp_path,
        repo_root=tmp_path,
        env={"U": value},
        log_path=tmp_path / "call.log",
        redact=secrets.redact,
    )
    outcome = HttpRunner().run(HttpSpec.model_validate({"url": echo + "/hook?u=${U}"}), ctx)
    assert outcome.status is OutcomeStatus.SUCCEEDED
    logged = ctx.log_path.read_text()
    assert "you asked for /hook?u=***" in logged
    assert "hunter" not in logged and "hunter" not in (outcome.output_tail or "")
