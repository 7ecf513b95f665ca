"""Starting an attempt: claiming it in the store and writing the order the executor gets."""

from __future__ import annotations

import time
from typing import Any

from podium.engine.checkouts import Checkouts
from podium.engine.config import EngineConfig
from podium.engine.context import InFlight, RunContext
from podium.engine.dispatch import Dispatch
from podium.engine.ledger import Ledger
from podium.errors import PodiumError
from podium.executor.base import AttemptOrder
from podium.runners.base import Outcome, OutcomeStatus
from podium.states import TaskStatus
from podium.store import Store
from podium.store.records import AttemptRecord


class AttemptStarter:
    """Claims attempts (a compare-and-set on the task, an attempt record) and hands their
    orders to the dispatch. No state of its own."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        checkouts: Checkouts,
        dispatch: Dispatch,
        config: EngineConfig,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.checkouts = checkouts
        self.dispatch = dispatch
        self.config = config

    def start(self, ctx: RunContext, name: str, phase: str = "run") -> bool:
        """Claim an attempt of ``name`` and queue its order for the executor; False when an
        operator decided the task meanwhile (the decision is adopted instead)."""
        spec = ctx.specs[name]
        log_tmpl = f"{ctx.log_dir}/{name}.{phase}.{{n}}.log"
        try:
            root = self.checkouts.prepare(ctx)
            env, secrets = self.checkouts.task_env(ctx, spec)
        except (PodiumError, OSError) as exc:
            return self._failed(ctx, name, phase, log_tmpl, str(exc))
        if phase == "run":
            kind, config = spec.kind, spec.config
        else:
            action = spec.rollback_action()
            assert action is not None
            kind, config = action
        attempt = self._begin_attempt(ctx, name, phase, log_tmpl, started_at=time.time())
        if attempt is None:
            return False
        env["PODIUM_ATTEMPT"] = str(attempt.number)
        env["PODIUM_ATTEMPT_ID"] = str(attempt.id)
        ctx.running.add(name)
        self.dispatch.claim(
            InFlight(ctx.run.id, name, phase, attempt.id, attempt.number),
            AttemptOrder(
                attempt_id=attempt.id,
                run_id=ctx.run.id,
                workflow=ctx.name,
                task=name,
                phase=phase,
                number=attempt.number,
                kind=kind,
                config=config,
                env=env,
                secrets=secrets,
                cwd=str(root / spec.workdir if spec.workdir else root),
                repo_root=str(root),
                revision=ctx.run.revision,
                timeout=spec.timeout,
                grace=self.config.grace,
                log_path=attempt.log_path or log_tmpl,
                log_max_bytes=self.config.log_max_bytes,
            ),
        )
        return True

    def _failed(self, ctx: RunContext, name: str, phase: str, log_tmpl: str, message: str) -> bool:
        """The attempt cannot even be prepared (no checkout): it is recorded as failed."""
        with self.store.tx():
            attempt = self._begin_attempt(ctx, name, phase, log_tmpl)
            if attempt is None:
                return False
            self.store.finish_attempt(attempt.id, "failed", error=message)
        self.dispatch.fail_early(
            InFlight(ctx.run.id, name, phase, attempt.id, attempt.number),
            Outcome(OutcomeStatus.FAILED, error=message),
        )
        ctx.running.add(name)
        return True

    def _begin_attempt(
        self, ctx: RunContext, name: str, phase: str, log_tmpl: str, **fields: Any
    ) -> AttemptRecord | None:
        """Record a new attempt (a run-phase one moves the task to running, if nobody else
        moved it since: None then, and their status is adopted)."""
        run_id = ctx.run.id
        with self.store.tx():
            if phase != "run":
                return self.store.start_attempt(run_id, name, phase, log_tmpl)
            number = ctx.attempts.get(name, 0) + 1
            stored = self.store.claim_task(run_id, name, attempts=number, **fields)
            if stored is not None:
                self.ledger.sync_task(ctx, name, stored)
                return None
            attempt = self.store.start_attempt(run_id, name, phase, log_tmpl, number)
            if attempt.number != number:  # attempts were made that this engine did not see
                self.store.set_task_status(
                    run_id, name, TaskStatus.RUNNING, attempts=attempt.number
                )
        ctx.attempts[name] = attempt.number
        ctx.note(name, TaskStatus.RUNNING)
        return attempt


__all__ = ["AttemptStarter"]
