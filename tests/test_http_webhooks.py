"""Git push webhooks against the real agent: nothing unauthenticated is read, bodies are
capped, malformed credentials are 401s, and only pushes to the tracked branch trigger."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from podium.http.app import WEBHOOK_MAX_BODY, build_app
from podium.http.webhooks import payload, push_matches
from podium.store import open_store
from tests.agentproc import AgentProcess, wait_until
from tests.conftest import MACHINE_ENV
from tests.gitrepo import GitRepo, isolate, workflow
from tests.test_http_face import FakeAgent
from tests.test_http_server import chunk, exchange, head, response, served

SECRET = "webhook-s3cret"
TOKEN = "gitlab-t0ken"
BIG = str(50 * 1000 * 1000)


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _github(body: bytes, event: str = "push", **extra: str) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-Hub-Signature-256": _sign(body), **extra}


def _runs(state: Path) -> list[str]:
    store = open_store(state)
    try:
        return [str(r.status) for r in store.list_runs("w")]
    finally:
        store.close()


@dataclass
class Scene:
    agent: AgentProcess
    repo: GitRepo
    state: Path

    @property
    def hook(self) -> str:
        return self.agent.url + "/webhooks/git"

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.hook, content=body, headers=headers, timeout=15)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One agent for the module: tracks the remote's default branch, knows both secrets."""
    root = tmp_path_factory.mktemp("webhooks")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, root)
        for name in MACHINE_ENV:
            mp.delenv(name, raising=False)
        repo = GitRepo(root / "git")
        repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'true'}\n")})
        state = root / "state.db"
        env = {"PODIUM_WEBHOOK_SECRET": SECRET, "PODIUM_GITLAB_TOKEN": TOKEN}
        with AgentProcess(repo.url, state, "--interval", "1h", env=env) as agent:
            wait_until(lambda: _runs(state) == ["succeeded"], timeout=20)
            yield Scene(agent, repo, state)
            assert agent.stop() == 0


def test_unauthenticated_requests_are_answered_before_their_body_is_read(scene: Scene) -> None:
    """A 50 MB POST without a signature, with a wrong GitLab token or with a malformed
    signature gets its 401 while the body is still unsent."""
    for credentials in (
        [],
        [("X-Gitlab-Token", "wrong"), ("X-Gitlab-Event", "Push Hook")],
        [("X-Hub-Signature-256", "sha1=abc"), ("X-GitHub-Event", "push")],
    ):
        request = head("/webhooks/git", [*credentials, ("Content-Length", BIG)])
        status, _ = exchange(scene.agent.port, request)
        assert status == 401, credentials


def test_oversized_bodies_get_413_as_soon_as_the_cap_is_passed(scene: Scene) -> None:
    """Declared too large: 413 before the body; chunked and growing past the cap: 413 as
    soon as it passes, while the client is still sending."""
    signed = [("X-Hub-Signature-256", "sha256=" + "0" * 64), ("X-GitHub-Event", "push")]
    declared = head("/webhooks/git", [*signed, ("Content-Length", str(WEBHOOK_MAX_BODY + 1))])
    assert exchange(scene.agent.port, declared)[0] == 413
    chunked = head("/webhooks/git", [*signed, ("Transfer-Encoding", "chunked")])
    with socket.create_connection(("127.0.0.1", scene.agent.port), timeout=30) as sock:
        sock.sendall(chunked)
        block = b"x" * (1024 * 1024)
        for _ in range(WEBHOOK_MAX_BODY // len(block)):
            sock.sendall(chunk(block))
        sock.sendall(chunk(b"x" * (WEBHOOK_MAX_BODY % len(block) + 1)))  # one byte too many
        assert response(sock)[0] == 413  # the body was never finished


def test_malformed_credentials_get_401_never_500(scene: Scene) -> None:
    """Non-ASCII, non-hex or truncated signatures and non-ASCII tokens are plain 401s."""
    body = b'{"ref": "refs/heads/main"}'
    cases: list[tuple[str, bytes]] = [
        ("X-Hub-Signature-256", b"sha256=\xff\xfe"),
        ("X-Hub-Signature-256", b"sha256=" + b"z" * 64),
        ("X-Hub-Signature-256", b"sha256=" + b"0" * 63),
        ("X-Hub-Signature-256", b""),
        ("X-Gitlab-Token", b"\xff\xfe"),
    ]
    for name, value in cases:
        headers: list[tuple[str, str | bytes]] = [
            (name, value),
            ("X-GitHub-Event", "push"),
            ("Content-Length", str(len(body))),
        ]
        status, text = exchange(scene.agent.port, head("/webhooks/git", headers) + body)
        assert status == 401, (value, text)
        assert "error" in json.loads(text)
    assert scene.agent.proc.poll() is None
    assert "Traceback" not in scene.agent.output()


def test_signed_body_that_is_not_a_json_object_gets_400(scene: Scene) -> None:
    """A correctly signed push whose body is not JSON (or not an object) is a 400."""
    for body in (b"not json", b"[1, 2]", b"", urlencode({"other": "{}"}).encode()):
        content_type = "application/x-www-form-urlencoded" if b"=" in body else "application/json"
        answer = scene.post(body, {**_github(body), "Content-Type": content_type})
        assert answer.status_code == 400, body


def test_only_pushes_to_the_tracked_branch_trigger(scene: Scene) -> None:
    """Without --branch the remote's default is tracked: pushes to other branches and tags,
    GitHub (JSON or form-encoded) or GitLab, are ignored; a push to it runs the new work."""
    scene.repo.commit({"workflows/w.yaml": workflow("w", "  - {id: a, run: 'echo 2'}\n")})
    for ref in ("refs/heads/feature", "refs/tags/main", "refs/tags/v1"):
        body = json.dumps({"ref": ref}).encode()
        answer = scene.post(body, {**_github(body), "Content-Type": "application/json"})
        assert (answer.status_code, answer.json()) == (202, {"message": f"ignored push to {ref}"})
        form = urlencode({"payload": json.dumps({"ref": ref})}).encode()
        kind = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = scene.post(form, {**_github(form), **kind})
        assert (answer.status_code, answer.json()) == (202, {"message": f"ignored push to {ref}"})
        event = "Tag Push Hook" if ref.startswith("refs/tags/") else "Push Hook"
        answer = scene.post(body, {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": event})
        assert (answer.status_code, answer.json()) == (202, {"message": f"ignored push to {ref}"})
    assert _runs(scene.state) == ["succeeded"]
    form = urlencode({"payload": json.dumps({"ref": "refs/heads/main"})}).encode()
    kind = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = scene.post(form, {**_github(form), **kind})
    assert answer.status_code == 202 and "ignored" not in answer.text
    wait_until(lambda: _runs(scene.state) == ["succeeded", "succeeded"], timeout=20)


@pytest.mark.parametrize(
    ("ref", "branch", "matches"),
    [
        ("refs/heads/main", "main", True),
        ("refs/heads/feature", "main", False),
        ("refs/tags/main", "main", False),
        ("main", "main", False),
        ("refs/heads/main", None, True),  # tracked branch not known yet: a reconcile re-reads
        ("refs/tags/v1", None, True),
        (None, "main", True),
    ],
)
def test_push_matches_only_the_tracked_branch(
    ref: str | None, branch: str | None, matches: bool
) -> None:
    """A push concerns the tracked branch when its ref names it (or either is unknown)."""
    assert push_matches(ref, branch) is matches


def test_payload_reads_json_and_github_form_encoding() -> None:
    """JSON bodies and GitHub's form-encoded ``payload`` field give the same object."""
    data = {"ref": "refs/heads/main", "commits": [{"message": "é ✓"}]}
    form = urlencode({"payload": json.dumps(data)}).encode()
    assert payload(json.dumps(data).encode(), "application/json") == data
    assert payload(form, "application/x-www-form-urlencoded; charset=utf-8") == data
    assert payload(form, "application/json") is None
    assert payload(b"payload=%FF", "application/x-www-form-urlencoded") is None


def test_a_push_delivered_again_triggers_nothing_more(tmp_path: Path) -> None:
    """The same push replayed under new or missing delivery ids is answered 202 and
    triggers nothing more; a repeated delivery id is still a duplicate."""
    agent = FakeAgent(open_store(tmp_path / "s.db"))
    with served(build_app(agent)) as face:
        url = f"http://127.0.0.1:{face.port}/webhooks/git"
        body = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()
        headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": _sign(body, "s3cret")}
        answers = [httpx.post(url, content=body, headers=headers).json() for _ in range(4)]
        assert answers[0] == {"message": "reconcile triggered"}
        assert all(a == {"message": "this push was delivered already"} for a in answers[1:])
        again = {**headers, "X-GitHub-Delivery": "d-1"}
        httpx.post(url, content=body, headers=again)
        duplicate = httpx.post(url, content=body, headers=again)
        assert (duplicate.status_code, duplicate.json()) == (200, {"message": "duplicate delivery"})
    assert agent.requests == ["webhook"]


def test_distinct_pushes_beyond_the_burst_are_coalesced(tmp_path: Path) -> None:
    """Pushes of different commits trigger at once up to the burst, then are coalesced."""
    agent = FakeAgent(open_store(tmp_path / "s.db"))
    with served(build_app(agent, trigger_period=3600, trigger_burst=2)) as face:
        url = f"http://127.0.0.1:{face.port}/webhooks/git"
        answers = []
        for n in range(5):
            body = json.dumps({"ref": "refs/heads/main", "after": f"{n}" * 40}).encode()
            headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": _sign(body, "s3cret")}
            answers.append(httpx.post(url, content=body, headers=headers).json())
        assert answers[:2] == [{"message": "reconcile triggered"}] * 2
        assert all(a == {"message": "coalesced with a reconcile already due"} for a in answers[2:])
    assert agent.requests == ["webhook", "webhook"]


def test_coalesced_pushes_still_trigger_once_the_period_ends(tmp_path: Path) -> None:
    """However the pushes fall around the period, each one is covered by a trigger after it:
    two pushes give two reconciles, the second at the latest when the period ends."""
    agent = FakeAgent(open_store(tmp_path / "s.db"))
    with served(build_app(agent, trigger_period=0.5, trigger_burst=1)) as face:
        url = f"http://127.0.0.1:{face.port}/webhooks/git"
        for n in range(2):
            body = json.dumps({"ref": "refs/heads/main", "after": f"{n}" * 40}).encode()
            headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": _sign(body, "s3cret")}
            assert httpx.post(url, content=body, headers=headers).status_code == 202
        wait_until(lambda: len(agent.requests) == 2, timeout=10)
    assert agent.requests == ["webhook", "webhook"]
