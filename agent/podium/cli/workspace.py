"""Opening the pieces a command needs: data dir, store, source, engine, reconciler."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from podium.errors import ConfigError, LeaseHeldError, NotFoundError
from podium.log import get_logger
from podium.store import Store
from podium.store import open_store as open_store_file

if TYPE_CHECKING:
    from podium.engine import Engine
    from podium.executor.base import Executor
    from podium.reconciler import Reconciler
    from podium.source.base import Source

LEASE_TTL = 30.0

log = get_logger("podium.lease")


def data_dir_of(data_dir: str | None) -> Path:
    return Path(data_dir or os.environ.get("PODIUM_DATA_DIR") or ".podium").absolute()


def state_path_of(state: str | None, data_dir: Path) -> Path:
    return Path(state).absolute() if state else data_dir / "state.db"


def open_store(
    state: str | None, data_dir: str | None, *, create: bool = True, write: bool = True
) -> Store:
    """The state store. ``create=False``: it must exist already (never make one for a
    command that only reads or decides); ``write=False``: a read-only file is fine."""
    ddir = data_dir_of(data_dir)
    path = state_path_of(state, ddir)
    if path.is_dir():
        raise ConfigError(f"--state {path} is a directory, not a database file")
    if not create and not path.exists():
        raise NotFoundError(
            f"no state store at {path}: nothing has run here yet"
            " (podium reconcile or podium agent create it; --state or --data-dir choose another)"
        )
    return open_store_file(path, read_only=not write)


def ensure_data_dir(ddir: Path) -> None:
    """Create the data directory, or say in one line why it cannot be used."""
    try:
        ddir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"--data-dir {ddir}: exists and is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"--data-dir {ddir}: cannot create it: {exc.strerror}") from None
    if not ddir.is_dir():
        raise ConfigError(f"--data-dir {ddir}: not a directory")
    if not os.access(ddir, os.W_OK | os.X_OK):
        raise ConfigError(f"--data-dir {ddir}: not writable")


@dataclass
class Workspace:
    data_dir: Path
    store: Store
    source: Source
    reconciler: Reconciler
    _engine: Engine | None = None
    owner: str = field(
        default_factory=lambda: (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}@{_pid_namespace()}"
        )
    )
    _renew: threading.Thread | None = None
    _stop_renew: threading.Event = field(default_factory=threading.Event)

    @property
    def engine(self) -> Engine:
        """The engine (a workspace opened to run tasks has one; one to look has none)."""
        if self._engine is None:
            raise RuntimeError("this workspace was opened without an engine")
        return self._engine

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
        if self._engine is not None:
            self._engine.stop()
        return False

    def _renew_loop(self) -> None:
        while not self._stop_renew.wait(LEASE_TTL / 3):
            if not self.renew():
                return

    def close(self) -> None:
        """Stop renewing, settle the engine, give the lease back (each step even when an
        earlier one failed: the store may be what broke)."""
        self._stop_renew.set()
        if self._renew is not None:
            self._renew.join()

        def release() -> None:
            self.store.release_lease(self.owner)

        steps: list[Callable[[], None]] = [] if self._engine is None else [self._engine.close]
        for step in [*steps, release]:
            try:
                step()
            except Exception as exc:
                log.error("workspace_close_failed", error=str(exc))
        with contextlib.suppress(Exception):
            self.source.close()
        with contextlib.suppress(Exception):
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
    *,
    run: bool = True,
    executor: Executor | None = None,
) -> Workspace:
    """Data dir, store, source and reconciler; with ``run`` (not for ``plan``) an engine,
    running attempts on ``executor`` (default: this machine's processes)."""
    from podium.reconciler import Reconciler
    from podium.source import open_source

    ddir = data_dir_of(data_dir)
    ensure_data_dir(ddir)
    store = open_store(state, str(ddir))
    source = open_source(repo, ddir / "cache", branch, path, must_exist=must_exist)
    engine = None
    if run:
        from podium.engine import Engine, EngineConfig

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
            executor,
        )
    reconciler = Reconciler(store, source, engine, notifiers=notifiers)
    return Workspace(ddir, store, source, reconciler, engine)


__all__ = ["Workspace", "data_dir_of", "open_store", "open_workspace", "state_path_of"]
