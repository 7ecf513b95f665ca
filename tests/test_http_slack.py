"""Slack's /slack/events over real HTTP: malformed signature headers are 401s, bodies are
capped while they stream, and garbage never reaches bolt's parser as a 500."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from podium_slack.app import EVENTS_PATH, MAX_BODY
from tests.slack_fake import FakeSlack, World, sign
from tests.test_http_server import chunk, exchange, head, response

BODY = "ssl_check=0&token=x"
FILES = {"workflows/w.yaml": "name: w\ntasks:\n  - {id: a, run: 'true'}\n"}


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    """The port of the Slack integration's routes, served by uvicorn, with a fake Slack."""
    with FakeSlack() as fake:
        world = World(tmp_path, fake, FILES)
        try:
            yield int(urlparse(world.serve()).port or 0)
        finally:
            world.close()


def _post(port: int, headers: list[tuple[str, str | bytes]], body: bytes) -> tuple[int, bytes]:
    length = ("Content-Length", str(len(body)))
    kind = ("Content-Type", "application/x-www-form-urlencoded")
    return exchange(port, head(EVENTS_PATH, [kind, length, *headers]) + body)


def test_malformed_signature_headers_get_401_never_500(port: int) -> None:
    """A non-numeric or stale timestamp and a non-ASCII or non-hex signature are 401s."""
    good = sign(BODY)
    stamp, signature = good["X-Slack-Request-Timestamp"], good["X-Slack-Signature"]
    for ts, sig in (
        ("abc", signature),
        ("", signature),
        ("1e9", signature),
        (stamp, b"v0=\xff\xfe"),
        (stamp, "v0=" + "z" * 64),
        (b"\xff", signature),
        ("1000", sign(BODY, ts=1000)["X-Slack-Signature"]),
    ):
        headers = [("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", sig)]
        status, text = _post(port, headers, BODY.encode())
        assert status == 401, (ts, sig, text)


def test_chunked_body_over_the_cap_gets_413_as_soon_as_it_passes(port: int) -> None:
    """A chunked body that grows past 1 MiB is refused while the client is still sending."""
    signed = list(sign(BODY).items())
    request = head(EVENTS_PATH, [*signed, ("Transfer-Encoding", "chunked")])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request + chunk(b"x" * MAX_BODY) + chunk(b"x"))
        assert response(sock)[0] == 413  # the body was never finished


def test_declared_oversized_body_gets_413_before_it_is_sent(port: int) -> None:
    """A Content-Length over 1 MiB is refused at once, without waiting for the body."""
    signed = list(sign(BODY).items())
    request = head(EVENTS_PATH, [*signed, ("Content-Length", str(MAX_BODY + 1))])
    assert exchange(port, request)[0] == 413


@pytest.mark.parametrize(
    ("kind", "body"),
    [("application/json", b"{not json"), ("application/x-www-form-urlencoded", b"a=\xff\xfe")],
)
def test_unparseable_body_gets_400_not_500(port: int, kind: str, body: bytes) -> None:
    """Bodies bolt cannot even parse (broken JSON, not UTF-8) are a 400, not a 500."""
    headers = [("Content-Type", kind), ("Content-Length", str(len(body)))]
    status, _ = exchange(port, head(EVENTS_PATH, headers) + body)
    assert status == 400
