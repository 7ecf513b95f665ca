"""One reconcile pass: fetch → load → plan → act → (drive) → report.

Like a controller's Reconcile, a pass re-reads Git and the store every time and
never trusts what triggered it. A pass with no new revision and nothing due is
cheap: the loaded desired state is cached per revision.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podium.errors import ConfigError, PodiumError
from podium.fingerprint import TaskFingerprint, fingerprint_workflow
from podium.gates import Rules, gates_for
from podium.log import get_logger
from podium.notify.routing import routes_for
from podium.planner import Desired, Executed, Plan, WorkflowPlan, due_slot, plan
from podium.revision_effects import prune_removed, supersede_waiting
from podium.rundef import definition_of
from podium.source.base import FetchResult, Snapshot, Source
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

if TYPE_CHECKING:
    from podium.engine import Engine

log = get_logger("podium.reconcile")


DEFAULT_WORKFLOWS_DIR = "workflows"
MAX_FOLLOW_UPS = 10
"""Plans one ``reconcile`` makes after its runs ended, to start what they made room for."""


@dataclass
class PassResult:
    revision: str | None
    plan: Plan | None
    started: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    fetch_error: str | None = None
    duration: float = 0.0
    after: Plan | None = None
    """The plan once the pass is over (after its runs, when it drove them)."""


def _rules_key(workflow: str, revision: str) -> str:
    return f"rules:{workflow}:{revision}"


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


def workflow_condition(
    wp: WorkflowPlan, invalid: bool, refusal: str | None = None
) -> tuple[str, str, str]:
    """(Ready | Reconciling | Stalled, reason, message) of a workflow as its plan says."""
    if refusal is not None:
        return "Stalled", "EmptyRevisionRefused", refusal
    if invalid or wp.stale:
        return "Stalled", "ValidationFailed", f"{wp.file} is invalid at this revision"
    if wp.held_by is not None:
        return (
            "Stalled",
            "WaitingDecision",
            f"task {wp.held_task} was interrupted in run {wp.held_by.run_id}: retry, skip or"
            f" fail it (podium retry {wp.held_by.run_id})",
        )
    if wp.blocked_by is not None:
        return (
            "Stalled",
            "TaskFailed",
            f"task {wp.blocked_task} failed at this fingerprint in run {wp.blocked_by.run_id}"
            f" (podium retry {wp.blocked_by.run_id})",
        )
    if wp.active_run is not None or wp.outstanding:
        return "Reconciling", "Progressing", ""
    return "Ready", "Succeeded", ""


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
        store: Store,
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
        self._last: tuple[str | None, Hashable, Plan | None] = (None, None, None)
        self.last_fetch: FetchResult | None = None
        self._rules: dict[tuple[str, str], Rules | None] = {}
        self._stalled: dict[str, str] = {}
        """Workflows an unexpected error stalled in this process: name → message."""
        self.refusal: str | None = None
        """Why the last pass refused to act on its revision (an empty one), if it did."""

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
        check_root(snapshot, self.source.display)
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
        active = {workflow: run_id for run_id, workflow, _status in self.store.active_run_heads()}
        return Executed(
            applied=self.store.applied_all(),
            failed=self.store.failures_all(),
            held=self.store.holds_all(),
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
        if self._refuse_empty(loaded, the_plan):
            return started, superseded
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
            try:
                with self.store.savepoint():  # one workflow's failure undoes only its writes
                    run_id = self._act_on(loaded, wp, forget)
            except Exception as exc:  # never stop the other workflows
                self._stall(wp.name, exc)
                continue
            if run_id is not None:
                started.append(run_id)
        return started, superseded

    def _act_on(self, loaded: _Loaded, wp: WorkflowPlan, forget: bool) -> int | None:
        """Start what one workflow's plan asks for: a prune run first when tasks were
        removed with ``prune: true`` (the outstanding tasks follow once it ended), else a
        run of its outstanding tasks."""
        if wp.removed and forget:
            wf = loaded.state.workflows[wp.name]
            if wf.spec.prune:
                if wp.active_run is not None:
                    return None
                pruned = prune_removed(
                    self.store,
                    self.source,
                    self.notifiers,
                    wp.name,
                    wf.file,
                    list(wp.removed),
                    loaded.state.config,
                )
                if pruned is not None:
                    return pruned
            else:
                self.store.forget_applied(wp.name, list(wp.removed))
        if wp.startable:
            return self._start(loaded, wp)
        return None

    def _stall(self, workflow: str, exc: Exception) -> None:
        """An unexpected error acting on one workflow: log it with the workflow's name and
        mark the workflow Stalled with the reason; the others go on."""
        message = f"internal error: {type(exc).__name__}: {exc}"
        log.error("workflow_stalled", workflow=workflow, error=message, exc_info=exc)
        self._stalled[workflow] = message
        with contextlib.suppress(Exception):  # the store itself may be what failed
            self.store.set_workflow_status(workflow, "Stalled", "InternalError", message)

    @staticmethod
    def empty_refusal(loaded: _Loaded, the_plan: Plan) -> str | None:
        """Why a revision with no workflows at all must not be acted on (None: it may)."""
        if loaded.state.workflows or not the_plan.removed_workflows:
            return None
        if loaded.state.config.allow_empty:
            return None
        count = sum(len(t) for _, t in the_plan.removed_workflows)
        return (
            f"revision {loaded.state.revision[:12]} has no workflows while {count} applied"
            f" task{'' if count == 1 else 's'} exist: refusing to forget them"
            " (set allow_empty: true in podium.yaml to allow it)"
        )

    def _refuse_empty(self, loaded: _Loaded, the_plan: Plan) -> bool:
        """A revision without any workflow while tasks are applied would forget them all
        (a wrong ``--path``, a bad merge): refused unless podium.yaml says
        ``allow_empty: true``, with one alert per revision."""
        message = self.empty_refusal(loaded, the_plan)
        if message is None:
            return False
        revision = loaded.state.revision
        if self.store.get("empty_refused") != revision:
            with self.store.tx():
                self.store.put("empty_refused", revision)
                self.store.emit(
                    "empty_revision_refused",
                    data={"revision": revision, "error": message},
                    routes=routes_for(
                        "empty_revision_refused", loaded.state.config.notify, self.notifiers
                    ),
                )
            log.error("empty_revision_refused", revision=revision[:12], error=message)
        self.refusal = message
        return True

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
        rules = self._applied_rules(wp.name, wf, applied)
        gates = gates_for(wf, rules, [change.id for change in wp.outstanding])
        with self.store.tx():
            run_id = self.store.create_run(
                wp.name,
                wf.revision,
                trigger,
                definition_of(wf, fps, config.directory, config.operators, gates),
                tasks,
                slot=wp.slot,
            )
            if wp.slot is not None:
                self.store.set_last_slot(wp.name, wp.slot)
            self._keep_rules(wf, applied)
        log.info(
            "run_created",
            run_id=run_id,
            workflow=wp.name,
            revision=wf.revision[:12],
            tasks=len(tasks),
            trigger=trigger,
        )
        return run_id

    def _applied_rules(
        self, name: str, wf: WorkflowDef, applied: Mapping[str, Mapping[str, Any]]
    ) -> Rules | None:
        """The approval rules of the last revision applied before ``wf``'s own (they gate
        ``wf``); None when none was, or its definition cannot be read. Kept in the store
        when a run is created, so they are read from Git only when missing there."""
        earlier = [row for row in applied.values() if row["revision"] != wf.revision]
        if not earlier:
            return None
        revision = str(max(earlier, key=lambda row: float(row["applied_at"]))["revision"])
        key = (name, revision)
        if key not in self._rules:
            kept = self.store.get(_rules_key(name, revision))
            if kept is not None:
                self._rules[key] = Rules.from_json(json.loads(kept))
            else:
                old = self._definition_at(name, wf.file, revision)
                self._rules[key] = None if old is None else Rules.of(old)
        return self._rules[key]

    def _keep_rules(self, wf: WorkflowDef, applied: Mapping[str, Mapping[str, Any]]) -> None:
        """Store ``wf``'s rules (they gate the next commit once it is applied); drop those
        of revisions nothing applied refers to any more."""
        self.store.put(_rules_key(wf.name, wf.revision), json.dumps(Rules.of(wf).to_json()))
        keep = {str(row["revision"]) for row in applied.values()} | {wf.revision}
        self.store.drop_marks(_rules_key(wf.name, ""), keep={_rules_key(wf.name, r) for r in keep})

    def _definition_at(self, name: str, file: str, revision: str) -> WorkflowDef | None:
        try:
            snap = self.source.snapshot(revision)
            config, _ = load_config(snap)
            old, _ = load_workflow(snap, file, config)
            if old is None or old.name != name:  # moved since: look for it by name
                old = load_snapshot(snap).workflows.get(name)
        except (PodiumError, OSError) as exc:
            log.warning("gate_rules_unreadable", workflow=name, revision=revision, error=str(exc))
            return None
        return old

    # -- the pass -------------------------------------------------------------------

    def reconcile_once(
        self, drive: bool = True, revision: str | None = None, *, fetch: bool = True
    ) -> PassResult:
        """One pass. ``fetch=False`` re-plans the revision fetched last (a run ended, or the
        store changed) without asking the remote again; before any fetch it fetches."""
        began = time.monotonic()
        fetched = self.fetch() if fetch or self.last_fetch is None else self.last_fetch
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
            last = self._last[2]
            return PassResult(
                rev, last, [], [], fetched.error, time.monotonic() - began, after=last
            )
        self.refusal = None
        loaded, the_plan = self.plan(rev)
        self.record(loaded)
        started, superseded = self.act(loaded, the_plan)
        after = the_plan
        if drive and self.engine is not None:
            self.engine.drive()
            # a run that ended may make room for more (a prune run first, then the new tasks
            # of the same workflow): plan again until nothing new starts
            for _ in range(MAX_FOLLOW_UPS):
                after = plan(loaded.desired, self.executed(), self.clock())
                if self.engine.stopping or not any(w.startable for w in after.workflows):
                    break
                more, _ = self.act(loaded, after)
                if not more:
                    break
                started += more
                self.engine.drive()
        if started or superseded or drive:
            after = plan(loaded.desired, self.executed(), self.clock())
        self.record_status(loaded, after)
        self._last = (rev, self.store.version, after)
        return PassResult(
            rev,
            the_plan,
            started,
            superseded,
            fetched.error,
            time.monotonic() - began,
            after=after,
        )

    def record_status(self, loaded: _Loaded, the_plan: Plan) -> None:
        """Write each workflow's condition and outstanding count as this plan sees it
        (``podium status`` shows them; the live run status is laid over them there)."""
        problems = {p.file for p in the_plan.problems}
        stalled = dict(self._stalled)
        if self.engine is not None:  # runs the engine had to set aside
            stalled.update(self.engine.set_aside.values())
        rows = self.store.workflow_rows()
        with self.store.tx():
            for wp in the_plan.workflows:
                status = workflow_condition(wp, wp.file in problems, self.refusal)
                if wp.name in stalled:
                    status = ("Stalled", "InternalError", stalled[wp.name])
                row = rows.get(wp.name)
                if row is None:
                    continue
                current = (row["status"], row["reason"], row["message"], row["outstanding"])
                if current != (*status, len(wp.outstanding)):
                    self.store.set_workflow_status(wp.name, *status, len(wp.outstanding))

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
