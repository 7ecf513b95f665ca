"""Approval gates in a run: asking, picking up decisions, expiring requests."""

from __future__ import annotations

import time

from podium.engine.context import RunContext
from podium.engine.ledger import Ledger
from podium.errors import PodiumError
from podium.kinds import registry
from podium.log import get_logger
from podium.source.base import Source
from podium.states import RunStatus, TaskStatus
from podium.store import Store

log = get_logger("podium.engine")


_WAITS_FOR = {
    RunStatus.WAITING_APPROVAL: TaskStatus.WAITING_APPROVAL,
    RunStatus.WAITING_DECISION: TaskStatus.INTERRUPTED,
}
"""The task status a waiting run waits on: once no task has it, the run runs again."""


class ApprovalGates:
    """Asks for approvals and applies decisions. Its own state: who wrote the change each
    run's requests concern (read from Git once per run)."""

    def __init__(self, store: Store, ledger: Ledger, source: Source | None) -> None:
        self.store = store
        self.ledger = ledger
        self.source = source
        self._authors: dict[int, tuple[str, str]] = {}
        """run id → (author, committer) of the last commit that changed its workflow."""

    def gate(self, ctx: RunContext, name: str) -> bool:
        """True when ``name`` must wait for (or was refused) an approval instead of starting."""
        gate = ctx.gate(name)
        if gate is None:
            return False
        fp = ctx.fingerprints[name]
        requests = [
            a for a in self.store.approvals(run_id=ctx.run.id, task=name) if a.fingerprint == fp
        ]
        latest = requests[-1] if requests else None
        if latest is not None and latest.status == "approved":
            return False
        if latest is not None and latest.status == "rejected":
            reason = latest.comment or "no reason given"
            self.ledger.task_failed(ctx, name, f"rejected by {latest.decided_by}: {reason}")
            return True
        if latest is not None and latest.status == "pending":
            if ctx.status[name] is not TaskStatus.WAITING_APPROVAL:
                self.ledger.set_task(ctx, name, TaskStatus.WAITING_APPROVAL)
            return True
        deadline = time.time() + gate.timeout if gate.timeout else None
        author, committer = self.authors(ctx)
        spec = ctx.specs[name]
        with self.store.tx():
            request = self.store.create_approval(
                ctx.run.id,
                name,
                fp,
                ctx.run.revision,
                list(gate.approvers),
                deadline,
                gate.on_timeout,
                author,
                committer,
                gate.forbid_self_approval,
            )
            self.ledger.set_task(ctx, name, TaskStatus.WAITING_APPROVAL)
            self.ledger.emit(
                ctx,
                "approval_requested",
                name,
                {
                    "approval_id": request.id,
                    "approvers": request.approvers,
                    "deadline": deadline,
                    "fingerprint": fp,
                    "revision": ctx.run.revision,
                    "action": registry()[spec.kind].describe(spec.config),
                    "reason": self.store.get_run_task(ctx.run.id, name).reason,
                },
            )
        log.info("approval_requested", run_id=ctx.run.id, workflow=ctx.name, task=name)
        return True

    def authors(self, ctx: RunContext) -> tuple[str, str]:
        """Author and committer of the last commit that changed the workflow or its inputs
        (four-eyes compares the approver with both: an author is easy to claim)."""
        known = self._authors.get(ctx.run.id)
        if known is not None:
            return known
        commit = None
        if self.source is not None:
            paths = [ctx.wf.file, *[p for d in ctx.wf.inputs.values() for p in d]]
            try:
                commit = self.source.last_change(ctx.run.revision, paths)
            except PodiumError:
                commit = None
        found = (commit.author_email, commit.committer_email) if commit else ("", "")
        self._authors[ctx.run.id] = found
        return found

    def forget(self, run_id: int) -> None:
        """The run ended: drop what was kept for it."""
        self._authors.pop(run_id, None)

    def check(self, ctx: RunContext) -> bool:
        """Pick up decisions and expire requests for tasks waiting on approval."""
        progressed = False
        now = time.time()
        for name in sorted(ctx.waiting):
            fp = ctx.fingerprints[name]
            requests = [
                a for a in self.store.approvals(run_id=ctx.run.id, task=name) if a.fingerprint == fp
            ]
            if not requests:
                continue
            req = requests[-1]
            if req.status == "cancelled":  # skipped or failed by an operator meanwhile
                progressed |= self.ledger.sync_task(ctx, name)
                continue
            if req.status == "pending" and req.deadline is not None and req.deadline <= now:
                approve = req.on_timeout == "approve"
                with self.store.tx():
                    if self.store.decide_approval(
                        req.id,
                        "approved" if approve else "rejected",
                        "timeout",
                        "approval timed out",
                        "timeout",
                    ):
                        self.ledger.emit(
                            ctx,
                            "approval_expired",
                            name,
                            {
                                "approval_id": req.id,
                                "outcome": "approved" if approve else "rejected",
                            },
                        )
                req = self.store.get_approval(req.id)
            if req.status == "approved":
                self.ledger.set_task(ctx, name, TaskStatus.PENDING)
                ctx.ready.appendleft(name)
                if ctx.run.status is RunStatus.WAITING_APPROVAL:
                    self.ledger.set_run(ctx, RunStatus.RUNNING)
                progressed = True
            elif req.status == "rejected":
                if ctx.run.status is RunStatus.WAITING_APPROVAL:
                    self.ledger.set_run(ctx, RunStatus.RUNNING)
                self.ledger.task_failed(
                    ctx, name, f"rejected by {req.decided_by}: {req.comment or 'no reason given'}"
                )
                progressed = True
        # a decision made elsewhere (approve, skip, fail, retry) may have removed
        # the last task the run waited for: it is running again
        blocker = _WAITS_FOR.get(ctx.run.status)
        if blocker is not None and blocker not in ctx.status.values():
            self.ledger.set_run(ctx, RunStatus.RUNNING)
            progressed = True
        return progressed


__all__ = ["ApprovalGates"]
