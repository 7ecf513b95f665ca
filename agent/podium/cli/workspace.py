"""Opening the pieces a command needs: data dir, store, source, engine, reconciler."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from podium.engine import Engine, EngineConfig
from podium.errors import ConfigError, LeaseHeldError
from podium.reconciler import Reconciler
from podium.source import open_source
from podium.source.base import Source
from podium.store.sqlite import SQLiteStore

LEASE_TTL = 30.0

log = structlog.get_logger("podium.lease")


def data_dir_of(data_dir: str | None) -> Path:
    return Path(data_dir or os.environ.get("PODIUM_DATA_DIR") or ".podium").absolute()


def state_path_of(state: str | None, data_dir: Path) -> Path:
    return Path(state).absolute() if state else data_dir / "state.db"


def open_store(state: str | None, data_dir: str | None) -> SQLiteStore:
    ddir = data_dir_of(data_dir)
    path = state_path_of(state, ddir)
    if path.exists() and path.is_dir():
        raise ConfigError(f"--state {path} is a directory, not a database file")
    return SQLiteStore(path)


@dataclass
class Workspace:
    data_dir: Path
    store: SQLiteStore
    source: Source
    engine: Engine
    reconciler: Reconciler
    owner: str = field(
        default_factory=lambda: (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}@{_pid_namespace()}"
        )
    )
    _renew: threading.Thread | None = None
    _stop_renew: threading.Event = field(default_factory=threading.Event)

    def acquire(self, wait: bool = False) -> None:
        """Take the store's lease (one agent executes at a time).

        A lease left by a dead agent on this host (killed, so it never released it) is
        taken over at once instead of making the restarted agent wait for it to expire.
        """
        while True:
            holder = self.store.acquire_lease(self.owner, LEASE_TTL)
            if holder is None:
                break
            if _holder_is_dead(holder):
                log.warning("lease_taken_over", previous_owner=holder)
                self.store.release_lease(holder)
                continue
            if not wait:
                raise LeaseHeldError(
                    f"another agent ({holder}) holds the lease on {self.store.path};"
                    " use --wait-lease to wait for it"
                )
            time.sleep(1.0)
        self._renew = threading.Thread(target=self._renew_loop, daemon=True, name="podium-lease")
        self._renew.start()

    def renew(self) -> bool:
        """Renew the lease. If another agent took it meanwhile (this one stalled past the
        TTL), stop the engine: two agents must never run the same tasks."""
        try:
            holder = self.store.acquire_lease(self.owner, LEASE_TTL)
        except Exception as exc:  # a busy store: the next renewal may work (TTL is 3 periods)
            log.warning("lease_renewal_failed", error=str(exc))
            return True
        if holder is None:
            return True
        log.error("lease_lost", holder=holder, state=str(self.store.path))
        self.engine.stop()
        return False

    def _renew_loop(self) -> None:
        while not self._stop_renew.wait(LEASE_TTL / 3):
            if not self.renew():
                return

    def close(self) -> None:
        self._stop_renew.set()
        if self._renew is not None:
            self._renew.join()
        self.engine.close()
        self.store.release_lease(self.owner)
        self.store.close()


def _pid_namespace() -> str:
    """This process's pid namespace (containers sharing a hostname differ here)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def _holder_is_dead(holder: str) -> bool:
    """Whether a lease owner (``host:pid:nonce@pidns``) is a process that has ended, known
    for sure: same host and pid namespace as this one, and that pid is gone."""
    host, _, rest = holder.partition(":")
    pid_text, _, tail = rest.partition(":")
    namespace = tail.partition("@")[2]
    if host != socket.gethostname() or namespace in ("", "?") or namespace != _pid_namespace():
        return False
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie has ended too: only its exit status is left
        stat = Path(f"/proc/{pid_text}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def open_workspace(
    repo: str,
    branch: str | None,
    path: str,
    state: str | None,
    data_dir: str | None,
    max_parallel: int = 32,
    notifiers: tuple[str, ...] = ("console",),
    must_exist: bool = True,
) -> Workspace:
    ddir = data_dir_of(data_dir)
    store = open_store(state, str(ddir))
    source = open_source(repo, ddir / "cache", branch, path, must_exist=must_exist)
    secrets_dir = os.environ.get("PODIUM_SECRETS_DIR")
    engine = Engine(
        store,
        source,
        EngineConfig(
            data_dir=ddir,
            max_parallel=max_parallel,
            secrets_dir=Path(secrets_dir) if secrets_dir else None,
            notifiers=notifiers,
        ),
    )
    reconciler = Reconciler(store, source, engine, notifiers=notifiers)
    return Workspace(ddir, store, source, engine, reconciler)


__all__ = ["Workspace", "data_dir_of", "open_store", "open_workspace", "state_path_of"]
