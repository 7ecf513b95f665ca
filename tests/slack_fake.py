"""A local stand-in for Slack, for offline tests over real HTTP (not a test module).

- :class:`FakeSlack`: the Web API (``POST /api/<method>``) on ``127.0.0.1:0`` in a
  thread, answering with Slack's shapes (channel *ids*, ``ts``, ``ok: false`` errors
  on HTTP 200, 429 + ``Retry-After``), a light Block Kit check, ``response_url``
  posts on ``/hooks/…``, a call log with :meth:`FakeSlack.wait_for`, and scripted
  failures (HTTP 5xx, 429, ``ok: false``, slow answers, dropped connections).
- :class:`FakeSocketMode`: a Socket Mode WebSocket server (``websockets.sync``).
- Requests as Slack sends them: :func:`sign` (``v0`` HMAC-SHA256 over
  ``v0:timestamp:body``), :func:`block_actions`, :func:`view_submission`,
  :func:`slash_command`, :func:`post_signed`.
- :class:`World`: a small in-process Podium (real store, engine, decisions) with the
  Slack integration loaded, for unit-level tests.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

import httpx

BOT_TOKEN = "xoxb-1111-2222-podiumtest"
APP_TOKEN = "xapp-1-A0PODIUM-3333-podiumtest"
SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
TEAM_ID = "T0PODIUM"
BOT_USER_ID = "U0PODIUMBOT"
BOT_ID = "B0PODIUM"
APP_ID = "A0PODIUM"

BLOCK_TYPES = {"section", "context", "actions", "divider", "header", "input", "image"}
_DROP = object()


# -- the call log -------------------------------------------------------------------


@dataclass
class Call:
    """One request the fake received (failed ones included)."""

    method: str
    args: dict[str, Any]
    token: str | None
    status: int
    body: Any
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status == 200 and isinstance(self.body, dict) and bool(self.body.get("ok"))

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None


@dataclass
class Failure:
    """A scripted failure for calls whose method matches ``method`` (``chat.*``: a prefix)."""

    method: str
    times: int | None
    status: int = 500
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False

    def matches(self, method: str) -> bool:
        if self.method.endswith("*"):
            return method.startswith(self.method[:-1])
        return method == self.method


def text_of(message: Mapping[str, Any]) -> str:
    """Everything a reader sees in a message: its text and every text in its blocks."""
    parts = [str(message.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


def buttons(message: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's buttons by action_id."""
    found: dict[str, dict[str, Any]] = {}
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block.get("elements") or []:
                if element.get("type") == "button":
                    found[element["action_id"]] = element
    return found


class ApiError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _check_text(obj: Any, limit: int, kinds: tuple[str, ...] = ("mrkdwn", "plain_text")) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        raise ApiError("invalid_blocks")
    if not isinstance(obj.get("text"), str) or not obj["text"] or len(obj["text"]) > limit:
        raise ApiError("invalid_blocks")


def check_blocks(blocks: Any, limit: int = 50) -> None:
    """Reject what Slack rejects with ``invalid_blocks`` (the commonly hit limits)."""
    if not isinstance(blocks, list) or len(blocks) > limit:
        raise ApiError("invalid_blocks")
    ids: set[str] = set()
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            raise ApiError("invalid_blocks")
        block_id = block.get("block_id")
        if block_id is not None:
            if len(block_id) > 255 or block_id in ids:
                raise ApiError("invalid_blocks")
            ids.add(block_id)
        if kind == "section":
            if "text" in block:
                _check_text(block["text"], 3000)
            fields = block.get("fields")
            if fields is not None:
                if not 0 < len(fields) <= 10:
                    raise ApiError("invalid_blocks")
                for f in fields:
                    _check_text(f, 2000)
            if "text" not in block and fields is None:
                raise ApiError("invalid_blocks")
        elif kind == "context":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= 10:
                raise ApiError("invalid_blocks")
            for e in elements:
                _check_text(e, 3000)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= 25:
                raise ApiError("invalid_blocks")
            for e in elements:
                if e.get("type") == "button":
                    _check_text(e.get("text"), 75, ("plain_text",))
                    if len(e.get("action_id", "")) > 255 or len(e.get("value", "")) > 2000:
                        raise ApiError("invalid_blocks")
                    if e.get("style") not in (None, "primary", "danger"):
                        raise ApiError("invalid_blocks")
        elif kind == "input":
            _check_text(block.get("label"), 2000, ("plain_text",))
            if not isinstance(block.get("element"), dict):
                raise ApiError("invalid_blocks")


# -- the Web API --------------------------------------------------------------------


class FakeSlack:
    """Slack's Web API, in a thread, on a free local port."""

    def __init__(self, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, str] = {}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.views: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.socket_url: str | None = None
        self._failures: list[Failure] = []
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_channel("C0DEPLOYS", "deploys")
        self.add_channel("C0GENERAL", "general")
        self.add_user(BOT_USER_ID, "podium", email=None, is_bot=True)

    # -- set-up -----------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str) -> None:
        self.channels[channel_id] = name

    def add_user(
        self, user_id: str, name: str, email: str | None = None, *, is_bot: bool = False
    ) -> None:
        profile: dict[str, Any] = {"real_name": name.title(), "display_name": name}
        if email is not None:
            profile["email"] = email
        self.users[user_id] = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": False,
            "real_name": name.title(),
            "is_bot": is_bot,
            "profile": profile,
        }

    def add_usergroup(self, group_id: str, handle: str, members: list[str]) -> None:
        self.usergroups[group_id] = {
            "id": group_id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "name": handle.title(),
            "handle": handle,
            "user_count": len(members),
            "users": list(members),
        }

    def fail(
        self,
        method: str,
        times: int | None = 1,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        drop: bool = False,
    ) -> Failure:
        """Script a failure: HTTP ``status``, or ``error`` (ok:false on 200), 429 with
        ``retry_after``, a ``delay`` before answering, or ``drop`` (no answer at all)."""
        if error is not None:
            status = 200
        elif retry_after is not None:
            status = 429
        elif status is None:
            status = 0 if (delay or drop) else 500  # 0: a slow answer that still succeeds
        failure = Failure(method, times, status, error, retry_after, delay, drop)
        with self._cond:
            self._failures.append(failure)
        return failure

    def heal(self, failure: Failure | None = None) -> None:
        """End one scripted failure, or all of them."""
        with self._cond:
            if failure is None:
                self._failures.clear()
            elif failure in self._failures:
                self._failures.remove(failure)

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                if url.path.startswith("/hooks/"):
                    fake._hook(url.path, raw)
                    self._send(200, "ok", {}, "text/html")
                    return
                args: dict[str, Any] = dict(parse_qsl(url.query))
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    args.update(json.loads(raw or "{}"))
                else:
                    args.update(dict(parse_qsl(raw)))
                auth = self.headers.get("Authorization") or ""
                token = auth.removeprefix("Bearer ") if auth else args.pop("token", None)
                method = url.path.removeprefix("/api/")
                answer = fake.dispatch(method, token, args)
                if answer is _DROP:
                    self.close_connection = True
                    return
                status, body, headers = answer
                if isinstance(body, dict):
                    self._send(status, json.dumps(body), headers, "application/json")
                else:
                    self._send(status, str(body), headers, "text/html")

            do_GET = do_POST

            def _send(self, status: int, text: str, headers: Mapping[str, str], ctype: str) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", f"{ctype}; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): like a slow Slack

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment variables that point Podium at this fake."""
        return {
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.api_url,
            **extra,
        }

    # -- the call log ---------------------------------------------------------------

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _hook(self, path: str, raw: str) -> None:
        try:
            body = json.loads(raw or "{}")
        except ValueError:
            body = {"raw": raw}
        self._record(Call("response_url", {"path": path, **body}, None, 200, {"ok": True}))

    def log(
        self,
        method: str | None = None,
        *,
        ok: bool | None = None,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        with self._cond:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if (method is None or c.method == method)
            and (ok is None or c.ok == ok)
            and (where is None or where(c))
        ]

    def wait_for(
        self,
        method: str,
        n: int = 1,
        timeout: float = 10.0,
        *,
        ok: bool | None = True,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until ``n`` matching calls arrived; return them (fail after ``timeout``)."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    c
                    for c in self.calls
                    if c.method == method
                    and (ok is None or c.ok == ok)
                    and (where is None or where(c))
                ]
                if len(found) >= n:
                    return found
                left = end - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.status, c.error) for c in self.calls[-15:]]
                    raise AssertionError(
                        f"{method}: {len(found)} of {n} calls within {timeout}s; last: {seen}"
                    )
                self._cond.wait(min(left, 0.1))

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        with self._cond:
            return dict(self.messages[(channel, ts)])

    def find(self, needle: str) -> list[dict[str, Any]]:
        """Current messages (after edits) whose text contains ``needle``."""
        with self._cond:
            msgs = list(self.messages.values())
        return [m for m in msgs if needle in text_of(m)]

    # -- dispatch -------------------------------------------------------------------

    def _scripted(self, method: str) -> Failure | None:
        with self._cond:
            for failure in self._failures:
                if failure.matches(method):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            self._failures.remove(failure)
                    return failure
        return None

    def dispatch(self, method: str, token: str | None, args: dict[str, Any]) -> Any:
        failure = self._scripted(method)
        if failure is not None:
            if failure.delay:
                time.sleep(failure.delay)
            if failure.drop:
                self._record(Call(method, args, token, 0, None))
                return _DROP
            if failure.status == 429:
                body = {"ok": False, "error": "ratelimited"}
                self._record(Call(method, args, token, 429, body))
                return 429, body, {"Retry-After": str(failure.retry_after or 0)}
            if failure.status >= 500:
                self._record(Call(method, args, token, failure.status, "upstream error"))
                return failure.status, "<html><body>upstream connect error</body></html>", {}
            if failure.error is not None:
                body = {"ok": False, "error": failure.error}
                self._record(Call(method, args, token, 200, body))
                return 200, body, {}
            # a pure delay: a slow Slack that still does the work
        try:
            self._authorize(method, token)
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                raise ApiError("unknown_method")
            with self._cond:
                result = handler(args)
            body = {"ok": True, **result}
        except ApiError as exc:
            body = {"ok": False, "error": exc.error}
        self._record(Call(method, args, token, 200, body))
        return 200, body, {"x-oauth-scopes": "chat:write,chat:write.public,commands"}

    def _authorize(self, method: str, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            raise ApiError("invalid_auth")

    def _channel(self, name: str) -> str:
        if name in self.channels:
            return name
        wanted = name.removeprefix("#")
        for cid, cname in self.channels.items():
            if cname == wanted:
                return cid
        raise ApiError("channel_not_found")

    @staticmethod
    def _blocks(args: dict[str, Any]) -> list[dict[str, Any]] | None:
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return blocks

    # -- methods (called with the lock held) -------------------------------------------

    def _m_auth_test(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://podium-test.slack.com/",
            "team": "Podium Test",
            "user": "podium",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args.get("channel") or ""))
        text = args.get("text")
        blocks = self._blocks(args)
        if not text and not blocks:
            raise ApiError("no_text")
        if text and len(text) > 40000:
            raise ApiError("msg_too_long")
        if blocks is not None:
            check_blocks(blocks)
        thread_ts = args.get("thread_ts")
        if thread_ts and (channel, str(thread_ts)) not in self.messages:
            raise ApiError("thread_not_found")
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {
            "type": "message",
            "channel": channel,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": text or "",
            "blocks": blocks or [],
            "ts": ts,
            "team": TEAM_ID,
        }
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
            if args.get("reply_broadcast") in (True, "true", "1", 1):
                message["subtype"] = "thread_broadcast"
        self.messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": dict(message)}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel not in self.channels:
            raise ApiError("channel_not_found")
        key = (channel, str(args.get("ts") or ""))
        if key not in self.messages:
            raise ApiError("message_not_found")
        message = self.messages[key]
        if message.get("user") != BOT_USER_ID:
            raise ApiError("cant_update_message")
        blocks = self._blocks(args)
        if blocks is not None:
            check_blocks(blocks)
            message["blocks"] = blocks
        if args.get("text") is not None:
            message["text"] = args["text"]
        message["edited"] = {"user": BOT_USER_ID, "ts": f"{time.time():.6f}"}
        return {"channel": channel, "ts": key[1], "text": message["text"], "message": dict(message)}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._channel(str(args.get("channel") or ""))
        if args.get("user") not in self.users:
            raise ApiError("user_not_found")
        if not args.get("text") and not args.get("blocks"):
            raise ApiError("no_text")
        return {"message_ts": f"{int(time.time())}.{next(self._ts):06d}"}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            raise ApiError("invalid_trigger_id")
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise ApiError("invalid_arguments")
        for key in ("title", "submit", "close"):
            if key in view:
                _check_text(view[key], 24, ("plain_text",))
        if len(view.get("private_metadata") or "") > 3000:
            raise ApiError("invalid_arguments")
        check_blocks(view.get("blocks"), limit=100)
        opened = {
            "id": f"V0{next(self._ts):08d}",
            "team_id": TEAM_ID,
            "type": "modal",
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "title": view.get("title"),
            "blocks": view.get("blocks"),
            "state": {"values": {}},
            "hash": "1600000000.abcdefgh",
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }
        self.views.append(opened)
        return {"view": opened}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user}

    def _m_users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").lower()
        for user in self.users.values():
            if str(user["profile"].get("email", "")).lower() == email:
                return {"user": user}
        raise ApiError("users_not_found")

    def _m_usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        groups = []
        for g in self.usergroups.values():
            item = {k: v for k, v in g.items() if k != "users"}
            if args.get("include_users") in (True, "true", "1"):
                item["users"] = list(g["users"])
            groups.append(item)
        return {"usergroups": groups}

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup") or ""))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group["users"])}

    def _m_apps_connections_open(self, _args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_url is None:
            raise ApiError("internal_error")
        return {"url": self.socket_url}


# -- Socket Mode ---------------------------------------------------------------------


class FakeSocketMode:
    """Slack's Socket Mode side: says hello, sends envelopes, collects the acks."""

    def __init__(self) -> None:
        self.acks: dict[str, dict[str, Any]] = {}
        self.connections = 0
        self._conn: Any = None
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._server: Any = None

    def start(self) -> FakeSocketMode:
        from websockets.sync.server import serve

        self._server = serve(self._handle, "127.0.0.1", 0)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    @property
    def url(self) -> str:
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link"

    def _handle(self, conn: Any) -> None:
        conn.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": APP_ID},
                    "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                }
            )
        )
        with self._cond:
            self._conn = conn
            self.connections += 1
            self._cond.notify_all()
        try:
            for raw in conn:
                data = json.loads(raw)
                if "envelope_id" in data:
                    with self._cond:
                        self.acks[data["envelope_id"]] = data
                        self._cond.notify_all()
        except Exception:  # the client closed the socket
            return

    def wait_connected(self, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._conn is not None, timeout):
                raise AssertionError("no Socket Mode connection")

    def send(
        self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False
    ) -> str:
        envelope_id = f"env-{next(self._ids)}"
        self._conn.send(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "accepts_response_payload": accepts_response_payload,
                    "retry_attempt": 0,
                    "retry_reason": "",
                    "payload": payload,
                }
            )
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self.acks, timeout):
                raise AssertionError(f"no ack for {envelope_id}")
            return self.acks[envelope_id]


# -- requests as Slack sends them ------------------------------------------------------


def sign(body: str, secret: str = SIGNING_SECRET, ts: int | None = None) -> dict[str, str]:
    """Slack's request signature headers for ``body`` (``v0`` HMAC-SHA256)."""
    stamp = int(time.time()) if ts is None else ts
    mac = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": f"v0={mac}"}


def _user(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID}


def block_actions(fake: FakeSlack, user_id: str, message: Mapping[str, Any], action_id: str) -> str:
    """The form body of a click on ``action_id`` in ``message`` (a stored fake message)."""
    button = buttons(message)[action_id]
    block_id = next(
        b.get("block_id", "")
        for b in message["blocks"]
        if b.get("type") == "actions" and button in b.get("elements", [])
    )
    channel = message["channel"]
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "podium-test"},
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
            **({"thread_ts": message["thread_ts"]} if message.get("thread_ts") else {}),
        },
        "trigger_id": f"{int(time.time())}.{TEAM_ID}.trigger{user_id}",
        "channel": {"id": channel, "name": fake.channels.get(channel, "")},
        "message": dict(message),
        "state": {"values": {}},
        "response_url": f"{fake.base}/hooks/actions/{TEAM_ID}/{message['ts']}/{user_id}",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "text": button["text"],
                "value": button.get("value", ""),
                "style": button.get("style"),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def view_submission(user_id: str, opened: Mapping[str, Any], values: dict[str, str]) -> str:
    """The form body of submitting the modal ``opened`` (as views.open returned it);
    ``values`` maps block_id to the text typed into that block's input."""
    state = {
        block_id: {
            next(
                b["element"]["action_id"] for b in opened["blocks"] if b.get("block_id") == block_id
            ): {"type": "plain_text_input", "value": value}
        }
        for block_id, value in values.items()
    }
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "podium-test"},
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": f"{int(time.time())}.{TEAM_ID}.submit{user_id}",
        "view": {**opened, "state": {"values": state}},
        "response_urls": [],
        "is_enterprise_install": False,
    }
    return urlencode({"payload": json.dumps(payload)})


def slash_fields(
    fake: FakeSlack, user_id: str, text: str, channel: str = "C0DEPLOYS"
) -> dict[str, str]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "podium-test",
        "channel_id": channel,
        "channel_name": fake.channels.get(channel, "unknown"),
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": "/podium",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": f"{fake.base}/hooks/commands/{TEAM_ID}/{int(time.time() * 1000)}",
        "trigger_id": f"{int(time.time())}.{TEAM_ID}.slash{user_id}",
    }


def slash_command(fake: FakeSlack, user_id: str, text: str, channel: str = "C0DEPLOYS") -> str:
    """The form body of ``/podium <text>`` typed by ``user_id``."""
    return urlencode(slash_fields(fake, user_id, text, channel))


def post_signed(
    url: str,
    body: str,
    *,
    secret: str = SIGNING_SECRET,
    ts: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> httpx.Response:
    """POST ``body`` to ``url`` the way Slack does, signed with ``secret`` at ``ts``."""
    headers = {"Content-Type": content_type, **sign(body, secret, ts)}
    return httpx.post(url, content=body.encode(), headers=headers, timeout=10)


# -- an in-process Podium for unit-level tests -------------------------------------------


class StubSource:
    """Just enough of a Source for the engine: empty checkouts, a fixed commit author."""

    display = "memory://podium-test"

    def __init__(self, author_email: str) -> None:
        self.author_email = author_email

    def checkout(self, revision: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        return dest

    def close(self) -> None:
        return None

    def remove_checkout(self, dest: Path) -> None:
        import shutil

        shutil.rmtree(dest, ignore_errors=True)

    def last_change(self, revision: str, paths: list[str]) -> Any:
        from podium.source.base import Commit

        return Commit(revision, "Change the workflow", "Ada Author", self.author_email, time.time())


class World:
    """A real store, engine and Decisions in this process, with the Slack integration."""

    REVISION = "c0ffee0d15ea5e" + "0" * 26

    def __init__(
        self,
        tmp_path: Path,
        fake: FakeSlack,
        files: Mapping[str, str],
        *,
        author_email: str = "ada@example.com",
        subject: str = "Ship it",
        env: Mapping[str, str] | None = None,
    ) -> None:
        import uvicorn  # noqa: F401 - fail early if missing
        from starlette.applications import Starlette

        from podium.cli.runs_view import status_rows
        from podium.decisions import Decisions
        from podium.engine import Engine, EngineConfig
        from podium.integration import IntegrationContext
        from podium.source.memory import MemorySnapshot
        from podium.spec.loader import load_snapshot
        from podium.store import open_store
        from podium_slack import setup

        self.fake = fake
        self.store = open_store(tmp_path / "state.db")
        self.state = load_snapshot(MemorySnapshot(dict(files), self.REVISION))
        assert not self.state.problems, self.state.problems
        self.store.record_revision(self.REVISION, subject, "Ada Author", author_email)
        notifiers = ("console", "slack")
        self.engine = Engine(
            self.store,
            StubSource(author_email),  # type: ignore[arg-type]
            EngineConfig(data_dir=tmp_path / "data", notifiers=notifiers, max_parallel=4),
        )
        self.decisions = Decisions(self.store, notifiers=notifiers, on_change=self.engine.wake)
        self.reconciles: list[str] = []
        self.plans: list[str | None] = []
        self.ctx = IntegrationContext(
            store=self.store,
            decisions=self.decisions,
            request_reconcile=self.reconciles.append,
            plan_text=self._plan_text,
            status_rows=lambda: status_rows(self.store),
            repo_config=lambda: self.state.config,
        )
        integration = setup(self.ctx, env={**fake.env(), **(env or {})})
        assert integration is not None
        self.integration = integration
        assert integration.directory is not None
        self.decisions._directory = integration.directory
        self.notifier = integration.notifiers["slack"]
        self.app = Starlette(routes=list(integration.routes))
        self._server: Any = None

    def _plan_text(self, workflow: str | None) -> str:
        self.plans.append(workflow)
        return f"plan for {workflow or 'all workflows'}: 1 outstanding"

    # -- runs -------------------------------------------------------------------------

    def start_run(self, workflow: str) -> int:
        from podium.fingerprint import fingerprint_workflow
        from podium.rundef import definition_of

        wf = self.state.workflows[workflow]
        fps = fingerprint_workflow(wf)
        config = self.state.config
        tasks = [
            {
                "task": name,
                "fingerprint": fp.fingerprint,
                "spec_hash": fp.spec_hash,
                "inputs_hash": fp.inputs_hash,
                "reason": "new",
                "previous": None,
            }
            for name, fp in fps.items()
        ]
        return self.store.create_run(
            workflow,
            self.REVISION,
            "git",
            definition_of(wf, fps, config.directory, config.operators),
            tasks,
        )

    def drive(self) -> None:
        """Run until every run is finished or waits for a human."""
        self.engine.drive(wait=True, idle_timeout=20)

    def drain(self, now: float | None = None) -> int:
        """Deliver the outbox to the Slack notifier (``now``: pretend it is later)."""
        from podium.notify.base import drain

        return drain(self.store, {"slack": self.notifier}, now=now)

    def approval_id(self, run_id: int, task: str) -> int:
        return self.store.approvals(run_id=run_id, task=task)[-1].id

    # -- HTTP -------------------------------------------------------------------------

    def serve(self) -> str:
        """Serve the integration's routes with uvicorn on a free port; return the base URL."""
        import uvicorn

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, daemon=True)
        thread.start()
        end = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > end:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self._thread = thread
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = self._server.force_exit = True
            self._thread.join(timeout=5)
        self.engine.close()
        self.store.close()


__all__ = [
    "APP_TOKEN",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "SIGNING_SECRET",
    "Call",
    "FakeSlack",
    "FakeSocketMode",
    "World",
    "block_actions",
    "buttons",
    "post_signed",
    "sign",
    "slash_command",
    "slash_fields",
    "text_of",
    "view_submission",
]
