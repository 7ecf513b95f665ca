"""The HTTP face's server: it binds before the agent works, and clients cannot starve it.

Also home of the raw-socket helpers the other ``test_http_*`` modules use: real HTTP/1.1
bytes on 127.0.0.1, so a test can send what a careless or hostile client sends (a body
that never ends, a header that never finishes).
"""

from __future__ import annotations

import http.client
import json
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from podium.http.server import HttpFace, Limits, raise_open_files_limit, serve
from podium.store import open_store
from tests.agentproc import PODIUM, AgentProcess, free_port, wait_until
from tests.gitrepo import GitRepo, workflow

# -- helpers shared by the test_http_* modules ------------------------------------------


@contextmanager
def served(app: Starlette, limits: Limits | None = None) -> Iterator[HttpFace]:
    """``app`` served by the agent's HTTP server on a free port of 127.0.0.1."""
    face = serve(app, "127.0.0.1", 0, limits)
    try:
        yield face
    finally:
        face.should_exit = True
        if face.thread is not None:
            face.thread.join(timeout=10)


def head(path: str, headers: Sequence[tuple[str, str | bytes]], method: str = "POST") -> bytes:
    """A request line and headers, byte for byte (non-ASCII header values allowed)."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    for name, value in headers:
        raw = value if isinstance(value, bytes) else value.encode()
        lines.append(name.encode() + b": " + raw)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """One chunk of a ``Transfer-Encoding: chunked`` body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP response from ``sock`` (its timeout bounds the wait)."""
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    return reply.status, reply.read()


def exchange(port: int, data: bytes, timeout: float = 15) -> tuple[int, bytes]:
    """Send ``data`` (and nothing more, the connection stays open) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return response(sock)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (waits up to the socket's timeout)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def _app() -> Starlette:
    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/healthz", healthz)])


# -- binding: the agent -----------------------------------------------------------------


def _runs(state: Path) -> list[str]:
    if not state.exists():
        return []
    store = open_store(state)
    try:
        return [str(r.status) for r in store.list_runs("w")]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("listen", "reason"),
    [
        ("in-use", "address already in use"),
        ("nosuch.invalid:8080", "unknown host"),
        ("192.0.2.1:8080", "cannot assign requested address"),  # TEST-NET-1: not ours
    ],
)
def test_agent_that_cannot_listen_exits_1_with_one_error_line(
    repo: GitRepo, tmp_path: Path, listen: str, reason: str
) -> None:
    """--listen on a busy port, an unknown host or a foreign address: exit 1, one error line,
    and no work done."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    state = tmp_path / "state.db"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        if listen == "in-use":
            listen = f"127.0.0.1:{busy.getsockname()[1]}"
        done = subprocess.run(
            [PODIUM, "agent", "--repo", repo.url, "--state", str(state), "--listen", listen],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("podium: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"podium: error: cannot listen on {listen}: ")
    assert reason in errors[0]
    assert done.stderr.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in done.stderr
    assert _runs(state) == [], "no work may start when the HTTP face cannot listen"


# -- slow clients and the descriptor budget: the agent --------------------------------


def test_slow_clients_are_cut_off_by_the_read_timeout(repo: GitRepo, tmp_path: Path) -> None:
    """Connections that send nothing, half the headers, or half the body are closed."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    env = {"PODIUM_WEBHOOK_SECRET": "s3cret"}
    with AgentProcess(repo.url, tmp_path / "state.db", "--interval", "1h", env=env) as agent:
        silent = socket.create_connection(("127.0.0.1", agent.port), timeout=40)
        headers = socket.create_connection(("127.0.0.1", agent.port), timeout=40)
        headers.sendall(b"POST /webhooks/git HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Git")
        body = socket.create_connection(("127.0.0.1", agent.port), timeout=40)
        signature = ("X-Hub-Signature-256", "sha256=" + "0" * 64)
        body.sendall(head("/webhooks/git", [signature, ("Content-Length", "100")]) + b"{")
        try:
            assert closed_by_server(silent)
            assert closed_by_server(headers)
            assert closed_by_server(body)
        finally:
            for sock in (silent, headers, body):
                sock.close()
        assert httpx.get(agent.url + "/healthz").status_code == 200
        assert agent.stop() == 0


def _agent_with_open_files(
    limit: tuple[int, int], repo: str, state: Path, port: int, log: Path
) -> subprocess.Popen[bytes]:
    """``podium agent`` started under RLIMIT_NOFILE ``limit`` (soft, hard)."""
    setlimit = (
        "import os, resource, sys;"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, {limit!r});"
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    argv = [sys.executable, "-c", setlimit, PODIUM, "--log-format", "json", "agent"]
    argv += ["--repo", repo, "--state", str(state), "--interval", "1s"]
    argv += ["--listen", f"127.0.0.1:{port}"]
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_connection_flood_cannot_take_the_descriptors_the_agent_needs(
    repo: GitRepo, tmp_path: Path
) -> None:
    """More idle connections than the agent has descriptors: Git and tasks still work, new
    commits still run, and the face answers again once the flood is gone."""
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    state, port, log = tmp_path / "state.db", free_port(), tmp_path / "agent.log"
    agent = _agent_with_open_files((256, 256), repo.url, state, port, log)
    flood: list[socket.socket] = []
    try:
        wait_until(lambda: _healthy(port) or agent.poll() is not None, timeout=20)
        wait_until(lambda: _runs(state) == ["succeeded"], timeout=20)
        for _ in range(400):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            flood.append(sock)
        repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'echo 2'}\n")})
        wait_until(lambda: _runs(state) == ["succeeded", "succeeded"], timeout=40)
        assert agent.poll() is None, log.read_text()
        for sock in flood:
            sock.close()
        flood.clear()
        wait_until(lambda: _healthy(port), timeout=40)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0
        assert "Too many open files" not in log.read_text()
    finally:
        for sock in flood:
            sock.close()
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_agent_raises_its_soft_open_files_limit_to_the_hard_one(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Started with a soft limit of 256 under a hard one of 2048, the agent runs with 2048."""
    if not Path("/proc/self/limits").exists():
        pytest.skip("needs /proc")
    repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
    port, log = free_port(), tmp_path / "agent.log"
    agent = _agent_with_open_files((256, 2048), repo.url, tmp_path / "state.db", port, log)
    try:
        wait_until(lambda: _healthy(port) or agent.poll() is not None, timeout=20)
        limits = Path(f"/proc/{agent.pid}/limits").read_text()
        [line] = [row for row in limits.splitlines() if row.startswith("Max open files")]
        assert line.split()[3:5] == ["2048", "2048"]
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_raise_open_files_limit_reports_the_new_soft_limit() -> None:
    """In a process with soft 100 and hard 1000, the limit becomes 1000 and says so."""
    code = (
        "import json, resource;"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, 1000));"
        "from podium.http.server import raise_open_files_limit;"
        "print(json.dumps([raise_open_files_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout.splitlines()[-1]) == [1000, 1000, 1000], done.stderr
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert raise_open_files_limit() >= soft  # never lowers this process's own


# -- the server alone --------------------------------------------------------------------


def test_connections_beyond_the_budget_wait_until_a_slot_frees() -> None:
    """With a budget of two, a third client is served only after the two idle ones were
    closed, and then served normally."""
    with served(_app(), Limits(max_connections=2, read_timeout=1.0)) as face:
        idle = [socket.create_connection(("127.0.0.1", face.port), timeout=20) for _ in "ab"]
        try:
            status, text = exchange(face.port, head("/healthz", [], method="GET"), timeout=20)
            assert (status, text) == (200, b"ok")
            for sock in idle:  # already closed: nothing to wait for
                sock.setblocking(False)
                with suppress(ConnectionResetError):
                    assert sock.recv(1) == b""
        finally:
            for sock in idle:
                sock.close()


def test_keep_alive_connection_serves_several_requests_within_the_limits() -> None:
    """The read timeout is per request: a client that keeps asking promptly is served."""
    with (
        served(_app(), Limits(max_connections=1, read_timeout=2.0)) as face,
        socket.create_connection(("127.0.0.1", face.port), timeout=20) as sock,
    ):
        for _ in range(3):
            sock.sendall(head("/healthz", [], method="GET"))
            assert response(sock) == (200, b"ok")


def test_server_stops_when_asked(tmp_path: Path) -> None:
    """should_exit ends the serving thread and frees the port."""
    with served(_app()) as face:
        port = face.port
    assert face.thread is not None and not face.thread.is_alive()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


__all__ = ["chunk", "closed_by_server", "exchange", "head", "response", "served"]
