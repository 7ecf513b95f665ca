"""One reconcile pass: fetch → load → plan → act → (drive) → report.

Like a controller's Reconcile, a pass re-reads Git and the store every time and
never trusts what triggered it. A pass with no new revision and nothing due is
cheap: the loaded desired state is cached per revision.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podium.conditions import record_conditions
from podium.desired import DesiredStates, Loaded
from podium.errors import PodiumError
from podium.gate_rules import RuleBook
from podium.gates import gates_for
from podium.log import get_logger
from podium.notify.routing import routes_for
from podium.planner import Executed, Plan, WorkflowPlan, due_slot, plan
from podium.revision_effects import prune_removed, supersede_waiting
from podium.rundef import definition_of
from podium.source.base import FetchResult, Source
from podium.spec.loader import (
    CONFIG_FILE,
    DesiredState,
)
from podium.store import Store

if TYPE_CHECKING:
    from podium.engine import Engine

log = get_logger("podium.reconcile")


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
        self.desired = DesiredStates(store, source)
        self.rules = RuleBook(store, source)
        self._last: tuple[str | None, Hashable, Plan | None] = (None, None, None)
        self.last_fetch: FetchResult | None = None
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
        current = self.desired.current
        notify = current.config.notify if current else None
        return routes_for(kind, notify, self.notifiers)

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

    def plan(self, revision: str) -> tuple[Loaded, Plan]:
        loaded = self.desired.load(revision)
        return loaded, plan(loaded.desired, self.executed(), self.clock())

    # -- act ----------------------------------------------------------------------

    def act(self, loaded: Loaded, the_plan: Plan) -> tuple[list[int], list[int]]:
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

    def _act_on(self, loaded: Loaded, wp: WorkflowPlan, forget: bool) -> int | None:
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
    def empty_refusal(loaded: Loaded, the_plan: Plan) -> str | None:
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

    def _refuse_empty(self, loaded: Loaded, the_plan: Plan) -> bool:
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

    def _start(self, loaded: Loaded, wp: WorkflowPlan) -> int:
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
        rules = self.rules.applied_rules(wp.name, wf, applied)
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
            self.rules.keep(wf, applied)
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
        self.desired.record(loaded, self.notifiers, self.clock)
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
        stalled = dict(self._stalled)
        if self.engine is not None:  # runs the engine had to set aside
            stalled.update(self.engine.set_aside.values())
        record_conditions(self.store, after, stalled, self.refusal)
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

    def _unchanged(self, rev: str) -> bool:
        last_rev, last_version, _plan = self._last
        if rev != last_rev or self.store.version != last_version or not self.desired.cached(rev):
            return False
        return not self.schedule_due()

    @property
    def current(self) -> DesiredState | None:
        """The desired state loaded last (None before the first load)."""
        return self.desired.current

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
