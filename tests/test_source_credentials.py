"""Repository credentials against a real smart-HTTP git server: they authenticate the fetch
but never appear in any git process's argv, in the cache, or in messages.

The server is ``git http-backend`` (CGI) behind ``http.server`` on 127.0.0.1 with Basic
authentication; ``GIT_TRACE`` records the argv of every git process and of every command
git starts (``git-remote-http``, credential helpers).
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from podium.source import GitSource, open_source
from tests.gitrepo import GitRepo, isolate

USER = "podium"
TOKEN = "tok-3f9c1b7e5d"


class GitHttpServer(ThreadingHTTPServer):
    """Serves the bare repositories below ``root`` to clients that send ``user:password``."""

    daemon_threads = True

    def __init__(self, root: Path, user: str, password: str) -> None:
        super().__init__(("127.0.0.1", 0), GitHttpHandler)
        self.root = root
        self.credentials = f"{user}:{password}"
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class GitHttpHandler(BaseHTTPRequestHandler):
    """One request: check Basic authentication, then run ``git http-backend`` as CGI."""

    server: GitHttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: requests are not logged."""

    def _serve(self) -> None:
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            self.server.seen.append(base64.b64decode(header[6:]).decode())
        if header != "Basic " + base64.b64encode(self.server.credentials.encode()).decode():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self._body()
        path, _, query = self.path.partition("?")
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": self.server.credentials.partition(":")[0],
            "REMOTE_ADDR": "127.0.0.1",
        }
        for name in ("Git-Protocol", "Content-Encoding"):
            value = self.headers.get(name)
            if value:
                env["HTTP_" + name.upper().replace("-", "_")] = value
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        """The request body, de-chunked."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()


@pytest.fixture
def upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """A bare repository with one commit, git isolated from the user's configuration."""
    isolate(monkeypatch, tmp_path)
    repo = GitRepo(tmp_path / "srv")
    repo.commit({"workflows/deploy.yaml": "version: 1\n"})
    return repo


@contextmanager
def serve(upstream: GitRepo, user: str, password: str) -> Iterator[GitHttpServer]:
    """Run a server for ``upstream`` until the test ends."""
    server = GitHttpServer(upstream.bare.parent, user, password)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def server(upstream: GitRepo) -> Iterator[GitHttpServer]:
    """The upstream served over smart HTTP to ``podium:TOKEN``."""
    with serve(upstream, USER, TOKEN) as running:
        yield running


@pytest.fixture
def trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A GIT_TRACE file recording the argv of every git process (and what git runs)."""
    path = tmp_path / "git-trace.log"
    monkeypatch.setenv("GIT_TRACE", str(path))
    return path


def cache_text(cache: Path) -> str:
    """Every file of the cache except packed objects, as text."""
    texts = []
    for file in sorted(cache.rglob("*")):
        if file.is_file() and "objects" not in file.parts:
            texts.append(file.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


@pytest.mark.timeout(60)
def test_token_authenticates_but_never_reaches_argv_or_the_cache(
    server: GitHttpServer, trace: Path, tmp_path: Path
) -> None:
    """A fetch with user:token in the URL works; no git argv, cache file or message holds it."""
    source = open_source(
        f"http://{USER}:{TOKEN}@127.0.0.1:{server.server_port}/remote.git", tmp_path / "cache"
    )
    assert isinstance(source, GitSource)
    result = source.fetch()
    assert result.ok, result.error
    assert result.revision is not None
    assert source.snapshot(result.revision).read("workflows/deploy.yaml") == b"version: 1\n"
    assert source.remote_revision() == result.revision
    assert f"{USER}:{TOKEN}" in server.seen
    traced = trace.read_text()
    assert TOKEN not in traced
    assert "git-remote-http" in traced  # the trace covers the processes git starts too
    assert TOKEN not in cache_text(source.cache_path)
    assert TOKEN not in source.display


@pytest.mark.timeout(60)
def test_wrong_token_fails_the_fetch_with_one_masked_line(
    server: GitHttpServer, trace: Path, tmp_path: Path
) -> None:
    """A wrong token reaches the server, is refused, and the error line does not show it."""
    wrong = "tok-wrong-81d2"
    url = f"http://{USER}:{wrong}@127.0.0.1:{server.server_port}/remote.git"
    source = GitSource(url, tmp_path / "cache")
    result = source.fetch()
    assert result.revision is None and result.error and result.outage_began
    assert "\n" not in result.error and wrong not in result.error
    assert f"{USER}:{wrong}" in server.seen
    assert wrong not in trace.read_text()
    assert source.remote_revision() is None


@pytest.mark.timeout(60)
def test_token_as_user_name_authenticates_without_argv(
    upstream: GitRepo, trace: Path, tmp_path: Path
) -> None:
    """A token given as the URL's user (https://TOKEN@host) authenticates and stays off argv."""
    with serve(upstream, TOKEN, "") as server:
        url = f"http://{TOKEN}@127.0.0.1:{server.server_port}/remote.git"
        result = GitSource(url, tmp_path / "cache").fetch()
        assert result.ok, result.error
        assert f"{TOKEN}:" in server.seen
    assert TOKEN not in trace.read_text()


@pytest.mark.timeout(60)
def test_user_credential_helpers_do_not_store_the_token(
    server: GitHttpServer, trace: Path, tmp_path: Path
) -> None:
    """A user's `store` credential helper is not asked to keep the URL's token."""
    stored = tmp_path / "git-credentials"
    git_config = Path(os.environ["GIT_CONFIG_GLOBAL"])
    git_config.write_text(f"[credential]\n\thelper = store --file={stored}\n")
    url = f"http://{USER}:{TOKEN}@127.0.0.1:{server.server_port}/remote.git"
    assert GitSource(url, tmp_path / "cache").fetch().ok
    assert not stored.exists() or TOKEN not in stored.read_text()
