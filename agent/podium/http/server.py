"""Serving the HTTP face: a socket bound up front, a bounded number of connections.

The face shares the agent's process with the coordinator, which needs descriptors of
its own (Git, SQLite, task pipes). So the face never takes more than its budget of
connections: it stops accepting when the budget is spent (further clients wait in the
kernel's backlog, costing the agent nothing), and every request must arrive, headers
and body, within a read timeout (slow-loris). uvicorn's HTTP/1.1 protocol does the
rest; this module owns binding, accepting and those two limits.

The socket is bound synchronously by :func:`listen`, so a port in use or an address
that is not ours is a :class:`~podium.errors.ConfigError` before the agent does any work.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import socket
import threading
from dataclasses import dataclass

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from podium.errors import ConfigError
from podium.log import get_logger

log = get_logger("podium.http")

BACKLOG = 128
MAX_CONNECTIONS = 128
READ_TIMEOUT = 10.0
ACCEPT_RETRY = 0.5
START_TIMEOUT = 10.0
_SCARCE = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the agent.

    ``max_connections`` open connections at most; ``read_timeout`` seconds for a request
    to arrive in full (from the moment the face waits for it) and for a stalled
    response write to resume; ``keep_alive`` seconds for an idle connection.
    """

    max_connections: int = MAX_CONNECTIONS
    read_timeout: float = READ_TIMEOUT
    keep_alive: int = 5


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one; return the soft limit now."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # an unlimited hard limit is not a valid soft one for files: try the usual ceilings
    targets = [hard] if hard != resource.RLIM_INFINITY else [1 << 20, 1 << 16, 10240]
    for target in targets:
        if soft != resource.RLIM_INFINITY and soft >= target:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        log.debug("open_files_limit_raised", soft=target, previous=soft)
        return target
    return soft


def connection_budget(open_files: int) -> int:
    """The face's share of ``open_files`` descriptors: a quarter, at most MAX_CONNECTIONS."""
    return max(8, min(MAX_CONNECTIONS, open_files // 4))


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: OSError, port: int) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    text = exc.strerror or str(exc)
    text = text[:1].lower() + text[1:]
    if exc.errno == errno.EACCES and port < 1024:
        text += " (ports below 1024 need privileges)"
    return text


def listen(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A non-blocking TCP socket bound to ``host:port`` and listening."""
    where = _address(host, port)
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except (OSError, UnicodeError) as exc:
        reason = _reason(exc, port) if isinstance(exc, OSError) else "bad host name"
        raise ConfigError(f"cannot listen on {where}: {reason}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {where}: {_reason(exc, port)}") from None
    return sock


class _Slot:
    """One of the face's connections; given back exactly once."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots: asyncio.Semaphore | None = slots

    def release(self) -> None:
        if self._slots is not None:
            self._slots.release()
            self._slots = None


class _GuardedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for reading each request.

    The deadline runs while the client owes us a request (h11's ``IDLE`` or
    ``SEND_BODY``) and while a response write is stalled; when it passes the
    connection is closed. The connection's slot is given back when it is lost.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        loop: asyncio.AbstractEventLoop,
        slot: _Slot,
        read_timeout: float,
    ) -> None:
        super().__init__(config, server_state, app_state={}, _loop=loop)
        self._slot = slot
        self._read_timeout = read_timeout
        self._read_deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self._read_timeout, self._expire)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self._read_deadline, self._write_deadline):
            if handle is not None:
                handle.cancel()
        self._read_deadline = self._write_deadline = None
        try:
            super().connection_lost(exc)
        finally:
            self._slot.release()

    def _watch(self) -> None:
        owed = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
        if owed and self._read_deadline is None and not self.transport.is_closing():
            self._read_deadline = self.loop.call_later(self._read_timeout, self._expire)
        elif not owed and self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _expire(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            log.debug("http_connection_timed_out", client=self.client)
            self.transport.abort()


class HttpFace(uvicorn.Server):
    """uvicorn serving ``app`` on an already bound socket, within :class:`Limits`."""

    def __init__(self, app: ASGIApp, sock: socket.socket, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        super().__init__(
            uvicorn.Config(
                app,
                loop="asyncio",
                http="h11",
                ws="none",
                lifespan="off",
                log_config=None,
                access_log=False,
                timeout_keep_alive=self.limits.keep_alive,
                timeout_graceful_shutdown=2,
            )
        )
        self.sock = sock
        self._accepting: asyncio.Task[None] | None = None
        self.thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # no listeners of uvicorn's own: we accept
        self._accepting = asyncio.get_running_loop().create_task(self._accept())
        self._ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        await super().shutdown(sockets=[self.sock])

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.limits.max_connections)
        while True:
            await slots.acquire()
            slot = _Slot(slots)
            try:
                conn, _address = await loop.sock_accept(self.sock)
            except OSError as exc:
                slot.release()
                if exc.errno in _SCARCE:  # out of descriptors or memory: wait, never crash
                    log.warning("http_accept_failed", error=exc.strerror or str(exc))
                    await asyncio.sleep(ACCEPT_RETRY)
                continue  # else the client gave up before it was accepted
            protocol = functools.partial(
                _GuardedH11, self.config, self.server_state, loop, slot, self.limits.read_timeout
            )
            try:
                await loop.connect_accepted_socket(protocol, conn)
            except Exception as exc:  # that connection is lost; the face goes on accepting
                log.warning("http_connection_failed", error=str(exc))
                conn.close()
                slot.release()

    def _run(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # reported by start(), or logged once running
            self._failure = exc
            if self._ready.is_set():
                log.error("http_face_crashed", error=repr(exc))
        finally:
            self._ready.set()

    def start(self) -> None:
        """Serve in a daemon thread (``self.thread``); return once serving, else ConfigError."""
        self.thread = threading.Thread(target=self._run, name="podium-http", daemon=True)
        self.thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._failure is not None:
            self.should_exit = True
            self.sock.close()
            failure = self._failure
            detail = f": {failure}" if failure is not None else " in time"
            raise ConfigError(f"the HTTP face did not start{detail}")


def serve(app: ASGIApp, host: str, port: int, limits: Limits | None = None) -> HttpFace:
    """Bind ``host:port`` now (ConfigError if that fails), then serve ``app`` on it."""
    face = HttpFace(app, listen(host, port), limits)
    face.start()
    return face


__all__ = [
    "HttpFace",
    "Limits",
    "connection_budget",
    "listen",
    "raise_open_files_limit",
    "serve",
]
