"""Real parts for testing the engine's collaborators one at a time.

Not a test module. A :class:`Kit` is a real SQLite store in the test's data directory, the
engine's :class:`~podium.engine.ledger.Ledger`, :class:`~podium.engine.saga.Saga` and
:class:`~podium.engine.runbook.RunBook` over it, and the few steps of the coordinator that
a collaborator relies on (claiming an attempt, starting a rollback) done the way the
coordinator does them. Runs are created from real workflow definitions, as the reconciler
creates them. Test modules take the ``kit`` fixture by importing :func:`kit_fixture`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from podium.engine.config import EngineConfig
from podium.engine.context import InFlight, RunContext
from podium.engine.ledger import Ledger
from podium.engine.runbook import RunBook
from podium.engine.saga import Saga
from podium.fingerprint import fingerprint_workflow
from podium.gates import Gate, gates_for
from podium.planner import Applied
from podium.rundef import definition_of
from podium.source.base import Source
from podium.source.memory import MemorySnapshot
from podium.spec.loader import WorkflowDef, load_workflow
from podium.spec.models import RepoConfig
from podium.states import TaskStatus
from podium.store import Store, open_store
from podium.store.records import EventRecord

WF = "workflows/w.yaml"


def load(
    text: str,
    *,
    files: Mapping[str, str] | None = None,
    path: str = WF,
    revision: str | None = None,
) -> WorkflowDef:
    """A validated workflow from YAML text (and the other files of its snapshot)."""
    snapshot = MemorySnapshot({path: text, **(files or {})}, revision)
    wf, problems = load_workflow(snapshot, path, RepoConfig())
    assert wf is not None, problems
    return wf


def load_at(source: Source, revision: str, path: str = WF) -> WorkflowDef:
    """A validated workflow as a real source has it at ``revision``."""
    wf, problems = load_workflow(source.snapshot(revision), path, RepoConfig())
    assert wf is not None, problems
    return wf


@dataclass
class Kit:
    """A store and the engine's parts around it, for one test."""

    store: Store
    data_dir: Path
    config: EngineConfig
    ledger: Ledger
    stopping: bool = False
    """What the saga and the outcome recorder are told about an agent shutdown."""
    started: list[InFlight] = field(default_factory=list)
    """Rollback attempts the saga asked to start, in order."""
    saga: Saga = field(init=False)
    book: RunBook = field(init=False)

    def __post_init__(self) -> None:
        self.saga = Saga(self.store, self.ledger, self.start_rollback, lambda: self.stopping)
        self.book = RunBook(self.store, self.data_dir, self.saga.rollback_order)

    @classmethod
    def open(cls, data_dir: Path) -> Kit:
        data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(data_dir / "state.db")
        config = EngineConfig(data_dir=data_dir)
        return cls(store, data_dir, config, Ledger(store, config))

    # -- runs -------------------------------------------------------------------

    def create(
        self,
        wf: WorkflowDef,
        tasks: Iterable[str] | None = None,
        *,
        trigger: str = "git",
        gates: Mapping[str, Gate] | None = None,
    ) -> int:
        """A pending run of ``tasks`` (all by default), made as the reconciler makes one:
        fingerprints, the applied rows it replaces, and its approval rules frozen in it
        (by default the workflow's own, as when nothing of it was applied before)."""
        fps = fingerprint_workflow(wf)
        names = [t.id for t in wf.spec.tasks] if tasks is None else list(tasks)
        applied = self.store.applied_rows(wf.name)
        rows = [
            {
                "task": name,
                "fingerprint": fps[name].fingerprint,
                "spec_hash": fps[name].spec_hash,
                "inputs_hash": fps[name].inputs_hash,
                "reason": "new",
                "previous": applied.get(name),
            }
            for name in names
        ]
        frozen = gates_for(wf, None, names) if gates is None else gates
        definition = definition_of(wf, fps, gates=frozen)
        return self.store.create_run(wf.name, wf.revision, trigger, definition, rows)

    def context(self, run_id: int) -> RunContext:
        """A fresh view of the run, as the run book makes it."""
        return self.book.make(self.store.get_run(run_id))

    def succeeded(self, run_id: int, name: str, seq: int) -> None:
        """Record in the store that ``name`` ran and succeeded as the ``seq``-th completion,
        its fingerprint applied (what an earlier part of the run did)."""
        rt = self.store.get_run_task(run_id, name)
        run = self.store.get_run(run_id)
        with self.store.tx():
            self.store.set_task_status(run_id, name, TaskStatus.RUNNING, attempts=1)
            self.store.set_task_status(
                run_id, name, TaskStatus.SUCCEEDED, completed_seq=seq, finished_at=time.time()
            )
            self.store.set_applied(
                run.workflow,
                name,
                Applied(rt.fingerprint, rt.spec_hash, rt.inputs_hash, run.revision, time.time()),
                run_id,
            )

    def damage(self, run_id: int) -> None:
        """Overwrite the run's stored definition with bytes that are not JSON."""
        with sqlite3.connect(self.data_dir / "state.db") as db:
            db.execute("UPDATE runs SET definition = '{not json' WHERE id = ?", (run_id,))
        db.close()

    # -- attempts, as the coordinator makes them --------------------------------

    def begin(self, ctx: RunContext, name: str) -> InFlight:
        """Claim the next run-phase attempt of ``name`` and count it in flight."""
        number = ctx.attempts.get(name, 0) + 1
        claimed = self.store.claim_task(ctx.run.id, name, attempts=number, started_at=time.time())
        assert claimed is None, f"{name} is {claimed}"
        attempt = self.store.start_attempt(
            ctx.run.id, name, "run", f"{ctx.log_dir}/{name}.run.{{n}}.log", number
        )
        ctx.attempts[name] = attempt.number
        ctx.note(name, TaskStatus.RUNNING)
        if name in ctx.ready:
            ctx.ready.remove(name)
        ctx.running.add(name)
        return InFlight(ctx.run.id, name, "run", attempt.id, attempt.number)

    def start_rollback(self, ctx: RunContext, name: str) -> bool:
        """What the coordinator does when the saga asks for a rollback attempt."""
        attempt = self.store.start_attempt(
            ctx.run.id, name, "rollback", f"{ctx.log_dir}/{name}.rollback.{{n}}.log"
        )
        ctx.running.add(name)
        self.started.append(InFlight(ctx.run.id, name, "rollback", attempt.id, attempt.number))
        return True

    # -- reading ----------------------------------------------------------------

    def statuses(self, run_id: int) -> dict[str, TaskStatus]:
        return {name: rt.status for name, rt in self.store.run_tasks(run_id).items()}

    def events(self, run_id: int, kind: str) -> list[EventRecord]:
        return self.store.events(run_id=run_id, kind=kind)


@pytest.fixture(name="kit")
def kit_fixture(data_dir: Path) -> Iterator[Kit]:
    """A kit over a fresh store in the test's data directory."""
    kit = Kit.open(data_dir)
    yield kit
    kit.store.close()


__all__ = ["WF", "Kit", "kit_fixture", "load", "load_at"]
