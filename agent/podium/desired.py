"""The desired state of a revision: loaded once, with the last good form of bad files,
and the per-file validation results it leaves in the store."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from podium.errors import ConfigError, PodiumError
from podium.fingerprint import TaskFingerprint, fingerprint_workflow
from podium.notify.routing import routes_for
from podium.planner import Desired
from podium.source.base import Snapshot, Source
from podium.spec.loader import (
    CONFIG_FILE,
    DesiredState,
    Problem,
    WorkflowDef,
    load_config,
    load_snapshot,
    load_workflow,
)
from podium.spec.models import RepoConfig
from podium.store import Store

DEFAULT_WORKFLOWS_DIR = "workflows"


@dataclass
class Loaded:
    """A revision's desired state, validated, with the fingerprints the planner compares."""

    state: DesiredState
    desired: Desired


def check_root(snapshot: Snapshot, display: str) -> None:
    """Refuse a revision whose root holds neither podium.yaml nor a workflows directory
    (a wrong ``--path``): planning it would forget every workflow."""
    if snapshot.exists(CONFIG_FILE):
        return
    prefix = DEFAULT_WORKFLOWS_DIR + "/"
    if any(f.startswith(prefix) for f in snapshot.files()):
        return
    raise ConfigError(
        f"{display} at {snapshot.revision[:12]} is not a Podium root: it has neither"
        f" {CONFIG_FILE} nor a {DEFAULT_WORKFLOWS_DIR}/ directory (check --path)"
    )


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Loading a revision makes a great many acyclic objects (YAML nodes, models): the
    cyclic collector would rescan everything alive again and again for nothing (a third
    of a cold plan), so it pauses; reference counting still frees the short-lived ones.
    What survives (the loaded desired state, kept for as long as the revision is
    current) is then frozen out of later collections rather than scanned by them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class _LastGood(Mapping[str, WorkflowDef]):
    """Last valid definitions of workflow files, loaded only for files that need one."""

    def __init__(self, source: Source, rows: dict[str, dict[str, Any]]) -> None:
        self.source = source
        self.rows = {f: r for f, r in rows.items() if r.get("good_revision")}
        self._loaded: dict[str, WorkflowDef | None] = {}

    def __getitem__(self, file: str) -> WorkflowDef:
        if file not in self._loaded:
            self._loaded[file] = self._load(file)
        found = self._loaded[file]
        if found is None:
            raise KeyError(file)
        return found

    def _load(self, file: str) -> WorkflowDef | None:
        row = self.rows.get(file)
        if row is None:
            return None
        try:
            snap = self.source.snapshot(str(row["good_revision"]))
            config, _ = load_config(snap)
            wf, _ = load_workflow(snap, file, config)
        except PodiumError:
            return None
        return wf

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


class DesiredStates:
    """Loads revisions (the latest one kept in memory, so a pass with nothing new re-reads
    nothing) and records their validation results per file."""

    def __init__(self, store: Store, source: Source) -> None:
        self.store = store
        self.source = source
        self._cache: dict[str, Loaded] = {}

    @property
    def current(self) -> DesiredState | None:
        """The desired state loaded last (None before the first load)."""
        loaded = next(iter(self._cache.values()), None)
        return loaded.state if loaded is not None else None

    def cached(self, revision: str) -> bool:
        return revision in self._cache

    def load(self, revision: str) -> Loaded:
        """Desired state at ``revision`` (cached), with last-good fallback for bad files."""
        if revision in self._cache:
            return self._cache[revision]
        with _no_cyclic_gc():
            return self._load(revision)

    def _load(self, revision: str) -> Loaded:
        snapshot = self.source.snapshot(revision)
        check_root(snapshot, self.source.display)
        last_good = self._last_good()
        state = load_snapshot(snapshot, last_good, self._last_good_config())
        fps: dict[str, dict[str, TaskFingerprint]] = {
            name: fingerprint_workflow(wf) for name, wf in state.workflows.items()
        }
        desired = Desired(revision, state.workflows, fps, state.problems)
        loaded = Loaded(state, desired)
        self._cache = {revision: loaded}
        return loaded

    def _last_good_config(self) -> RepoConfig | None:
        good = self.store.get("config_good_revision")
        if not good:
            return None
        try:
            config, problems = load_config(self.source.snapshot(good))
        except (PodiumError, OSError):
            return None
        return None if problems else config

    def _last_good(self) -> _LastGood:
        return _LastGood(self.source, self.store.files_all())

    def record(
        self, loaded: Loaded, notifiers: tuple[str, ...], clock: Callable[[], float] = time.time
    ) -> None:
        """Remember validation results per file; announce new problems once."""
        config_ok = not any(p.file == CONFIG_FILE for p in loaded.state.problems)
        if config_ok and self.store.get("config_good_revision") != loaded.state.revision:
            self.store.put("config_good_revision", loaded.state.revision)
        state = loaded.state
        known = self.store.files_all()
        by_file: dict[str, list[Problem]] = {}
        for p in state.problems:
            by_file.setdefault(p.file, []).append(p)
        for file, name in state.files.items():
            row = known.get(file, {})
            if row.get("good_revision") != state.revision or row.get("problems"):
                self.store.set_file_state(file, name, state.revision, [])
        for file, problems in by_file.items():
            texts = [str(p) for p in problems]
            if known.get(file, {}).get("problems") != texts:
                self.store.set_file_state(file, None, None, texts)
                self.store.emit(
                    "validation_failed",
                    workflow=known.get(file, {}).get("workflow"),
                    data={"file": file, "revision": state.revision, "problems": texts},
                    routes=routes_for("validation_failed", state.config.notify, notifiers),
                )
        present = set(state.files) | set(by_file)
        for file in known if CONFIG_FILE not in by_file else ():  # see act()
            if file not in present:
                self.store.drop_file(file)
        now = clock()
        rows = self.store.workflow_rows()
        with self.store.tx():
            for name, wf in state.workflows.items():
                if name not in rows or rows[name]["file"] != wf.file:
                    self.store.touch_workflow(name, wf.file, now)


__all__ = ["DEFAULT_WORKFLOWS_DIR", "DesiredStates", "Loaded", "check_root"]
