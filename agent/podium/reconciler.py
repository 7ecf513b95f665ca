"""One reconcile pass: fetch → load → plan → act → (drive) → report.

Like a controller's Reconcile, a pass re-reads Git and the store every time and
never trusts what triggered it. A pass with no new revision and nothing due is
cheap: the loaded desired state is cached per revision.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from podium.engine import Engine
from podium.errors import PodiumError
from podium.fingerprint import TaskFingerprint, fingerprint_workflow
from podium.notify.routing import routes_for
from podium.planner import Desired, Executed, Plan, WorkflowPlan, due_slot, plan
from podium.revision_effects import prune_removed, supersede_waiting
from podium.rundef import definition_of
from podium.source.base import FetchResult, Source
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
from podium.store.sqlite import SQLiteStore

log = structlog.get_logger("podium.reconcile")


@dataclass
class PassResult:
    revision: str | None
    plan: Plan | None
    started: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    fetch_error: str | None = None
    duration: float = 0.0


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


@dataclass
class _Loaded:
    state: DesiredState
    desired: Desired


class Reconciler:
    """Owns the loop's steps; the engine owns run execution."""

    def __init__(
        self,
        store: SQLiteStore,
        source: Source,
        engine: Engine | None,
        clock: Callable[[], float] = time.time,
        notifiers: tuple[str, ...] = ("console",),
    ) -> None:
        self.store = store
        self.source = source
        self.engine = engine
        self.clock = clock
        self.notifiers = notifiers
        self._cache: dict[str, _Loaded] = {}
        self._last: tuple[str | None, tuple[int, int] | None, Plan | None] = (None, None, None)
        self.last_fetch: FetchResult | None = None

    # -- observe ------------------------------------------------------------------

    def fetch(self) -> FetchResult:
        result = self.source.fetch()
        self.last_fetch = result
        if result.outage_began:
            self.store.emit(
                "source_unreachable",
                data={"error": result.error, "source": self.source.display},
                routes=self._repo_routes("source_unreachable"),
            )
        if result.recovered:
            self.store.emit(
                "source_recovered",
                data={"source": self.source.display},
                routes=self._repo_routes("source_recovered"),
            )
        return result

    def _repo_routes(self, kind: str) -> list[tuple[str, str | None]]:
        cached = next(iter(self._cache.values()), None)
        notify = cached.state.config.notify if cached else None
        return routes_for(kind, notify, self.notifiers)

    def load(self, revision: str) -> _Loaded:
        """Desired state at ``revision`` (cached), with last-good fallback for bad files."""
        if revision in self._cache:
            return self._cache[revision]
        with _no_cyclic_gc():
            return self._load(revision)

    def _load(self, revision: str) -> _Loaded:
        snapshot = self.source.snapshot(revision)
        last_good = self._last_good()
        state = load_snapshot(snapshot, last_good, self._last_good_config())
        fps: dict[str, dict[str, TaskFingerprint]] = {
            name: fingerprint_workflow(wf) for name, wf in state.workflows.items()
        }
        desired = Desired(revision, state.workflows, fps, state.problems)
        loaded = _Loaded(state, desired)
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

    def record(self, loaded: _Loaded) -> None:
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
                    routes=routes_for("validation_failed", state.config.notify, self.notifiers),
                )
        present = set(state.files) | set(by_file)
        for file in known if CONFIG_FILE not in by_file else ():  # see act()
            if file not in present:
                self.store.drop_file(file)
        now = self.clock()
        rows = self.store.workflow_rows()
        with self.store.tx():
            for name, wf in state.workflows.items():
                if name not in rows or rows[name]["file"] != wf.file:
                    self.store.touch_workflow(name, wf.file, now)

    # -- diff ---------------------------------------------------------------------

    def executed(self) -> Executed:
        rows = self.store.workflow_rows()
        active = {r.workflow: r.id for r in self.store.active_runs()}
        return Executed(
            applied=self.store.applied_all(),
            failed=self.store.failures_all(),
            active_runs=active,
            last_slot={n: r["last_slot"] for n, r in rows.items() if r["last_slot"] is not None},
            first_seen={n: r["first_seen"] for n, r in rows.items()},
        )

    def plan(self, revision: str) -> tuple[_Loaded, Plan]:
        loaded = self.load(revision)
        return loaded, plan(loaded.desired, self.executed(), self.clock())

    # -- act ----------------------------------------------------------------------

    def act(self, loaded: _Loaded, the_plan: Plan) -> tuple[list[int], list[int]]:
        started: list[int] = []
        superseded = supersede_waiting(
            self.store, self.notifiers, loaded.state, loaded.desired.fingerprints, the_plan
        )
        if superseded:
            the_plan = plan(loaded.desired, self.executed(), self.clock())
        # With podium.yaml invalid the loader falls back to default settings (another
        # workflows_dir, say): what looks removed may only be unseen, so keep it applied.
        forget = not any(p.file == CONFIG_FILE for p in the_plan.problems)
        if not forget and (
            the_plan.removed_workflows or any(w.removed for w in the_plan.workflows)
        ):
            log.warning("forget_skipped", reason=f"{CONFIG_FILE} is invalid")
        for name, tasks in the_plan.removed_workflows if forget else ():
            self.store.forget_applied(name)
            self.store.remove_workflow(name)
            log.info("workflow_removed", workflow=name, tasks=list(tasks))
        for wp in the_plan.workflows:
            if wp.removed and forget:
                wf = loaded.state.workflows[wp.name]
                if wf.spec.prune and wp.active_run is None:
                    prune_removed(
                        self.store,
                        self.source,
                        self.notifiers,
                        wp.name,
                        wf.file,
                        list(wp.removed),
                        loaded.state.config,
                    )
                    continue
                if not wf.spec.prune:
                    self.store.forget_applied(wp.name, list(wp.removed))
            if wp.startable:
                started.append(self._start(loaded, wp))
        return started, superseded

    def _start(self, loaded: _Loaded, wp: WorkflowPlan) -> int:
        wf = loaded.state.workflows[wp.name]
        fps = loaded.desired.fingerprints[wp.name]
        config = loaded.state.config
        applied = self.store.applied_rows(wp.name)
        tasks = []
        for change in wp.outstanding:
            fp = fps[change.id]
            tasks.append(
                {
                    "task": change.id,
                    "fingerprint": fp.fingerprint,
                    "spec_hash": fp.spec_hash,
                    "inputs_hash": fp.inputs_hash,
                    "reason": str(change.reason),
                    "previous": applied.get(change.id),
                }
            )
        trigger = "schedule" if wp.slot is not None else "git"
        with self.store.tx():
            run_id = self.store.create_run(
                wp.name,
                wf.revision,
                trigger,
                definition_of(wf, fps, config.directory, config.operators),
                tasks,
                slot=wp.slot,
            )
            if wp.slot is not None:
                self.store.set_last_slot(wp.name, wp.slot)
        log.info(
            "run_created",
            run_id=run_id,
            workflow=wp.name,
            revision=wf.revision[:12],
            tasks=len(tasks),
            trigger=trigger,
        )
        return run_id

    # -- the pass -------------------------------------------------------------------

    def reconcile_once(self, drive: bool = True, revision: str | None = None) -> PassResult:
        began = time.monotonic()
        fetched = self.fetch()
        rev = revision or fetched.revision
        if rev is None:
            return PassResult(None, None, fetch_error=fetched.error)
        if rev == fetched.revision and fetched.ok and rev != self._last[0]:
            try:
                commit = self.source.commit(rev)
                self.store.record_revision(
                    rev, commit.subject, commit.author_name, commit.author_email
                )
            except PodiumError:
                pass
        if self._unchanged(rev):
            # nothing new in Git or in the store and no schedule slot due: no re-plan work
            return PassResult(rev, self._last[2], [], [], fetched.error, time.monotonic() - began)
        loaded, the_plan = self.plan(rev)
        self.record(loaded)
        started, superseded = self.act(loaded, the_plan)
        if drive and self.engine is not None:
            self.engine.drive()
        self._last = (rev, self.store.version, the_plan)
        return PassResult(
            rev, the_plan, started, superseded, fetched.error, time.monotonic() - began
        )

    def _unchanged(self, rev: str) -> bool:
        last_rev, last_version, _plan = self._last
        if rev != last_rev or self.store.version != last_version or rev not in self._cache:
            return False
        return not self.schedule_due()

    @property
    def current(self) -> DesiredState | None:
        """The desired state loaded last (None before the first load)."""
        loaded = next(iter(self._cache.values()), None)
        return loaded.state if loaded is not None else None

    def schedule_due(self) -> bool:
        """Whether a ``schedule:`` workflow of the current desired state has a slot due
        (or was never recorded), without loading or planning anything."""
        state = self.current
        if state is None:
            return False
        rows: dict[str, dict[str, Any]] | None = None
        now = self.clock()
        for name, wf in state.workflows.items():
            if not wf.spec.schedule:
                continue
            rows = rows if rows is not None else self.store.workflow_rows()
            row = rows.get(name)
            if row is None:
                return True
            after = max(row["last_slot"] or row["first_seen"], row["first_seen"])
            if due_slot(wf.spec.schedule, now, after) is not None:
                return True
        return False


__all__ = ["PassResult", "Reconciler"]
