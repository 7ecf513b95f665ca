"""Approval gates: asking, picking up decisions, expiring requests."""

from __future__ import annotations

import time

from podium.engine_core import EngineCore
from podium.errors import PodiumError
from podium.kinds import registry
from podium.log import get_logger
from podium.runctx import RunContext
from podium.states import RunStatus, TaskStatus

log = get_logger("podium.engine")


_WAITS_FOR = {
    RunStatus.WAITING_APPROVAL: TaskStatus.WAITING_APPROVAL,
    RunStatus.WAITING_DECISION: TaskStatus.INTERRUPTED,
}
"""The task status a waiting run waits on: once no task has it, the run runs again."""


class ApprovalGate(EngineCore):
    """The engine's approval steps."""

    def _gate(self, ctx: RunContext, name: str) -> bool:
        """Approval gate: True when the task must wait (or was refused) instead of starting."""
        spec = ctx.specs[name]
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
            self._task_failed_final(ctx, name, f"rejected by {latest.decided_by}: {latest.comment}")
            return True
        if latest is not None and latest.status == "pending":
            if ctx.status[name] is not TaskStatus.WAITING_APPROVAL:
                self._set_task(ctx, name, TaskStatus.WAITING_APPROVAL)
            return True
        deadline = time.time() + gate.timeout if gate.timeout else None
        author, committer = self._authors(ctx)
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
            self._set_task(ctx, name, TaskStatus.WAITING_APPROVAL)
            self._emit(
                "approval_requested",
                ctx.name,
                ctx.wf,
                ctx.run.id,
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

    def _authors(self, ctx: RunContext) -> tuple[str | None, str | None]:
        """Author and committer of the last commit that changed the workflow or its inputs
        (four-eyes compares the approver with both: an author is easy to claim)."""
        if ctx.author_email is not None or self.source is None:
            return ctx.author_email, ctx.committer_email
        paths = [ctx.wf.file, *[p for d in ctx.wf.inputs.values() for p in d]]
        try:
            commit = self.source.last_change(ctx.run.revision, paths)
        except PodiumError:
            commit = None
        ctx.author_email = commit.author_email if commit else ""
        ctx.committer_email = commit.committer_email if commit else ""
        return ctx.author_email, ctx.committer_email

    def _check_approvals(self, ctx: RunContext) -> bool:
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
                progressed |= self._sync_task(ctx, name)
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
                        self._emit(
                            "approval_expired",
                            ctx.name,
                            ctx.wf,
                            ctx.run.id,
                            name,
                            {
                                "approval_id": req.id,
                                "outcome": "approved" if approve else "rejected",
                            },
                        )
                req = self.store.get_approval(req.id)
            if req.status == "approved":
                self._set_task(ctx, name, TaskStatus.PENDING)
                ctx.ready.appendleft(name)
                if ctx.run.status is RunStatus.WAITING_APPROVAL:
                    self._set_run(ctx, RunStatus.RUNNING)
                progressed = True
            elif req.status == "rejected":
                if ctx.run.status is RunStatus.WAITING_APPROVAL:
                    self._set_run(ctx, RunStatus.RUNNING)
                self._task_failed_final(
                    ctx, name, f"rejected by {req.decided_by}: {req.comment or 'no reason given'}"
                )
                progressed = True
        # a decision made elsewhere (approve, skip, fail, retry) may have removed
        # the last task the run waited for: it is running again
        blocker = _WAITS_FOR.get(ctx.run.status)
        if blocker is not None and blocker not in ctx.status.values():
            self._set_run(ctx, RunStatus.RUNNING)
            progressed = True
        return progressed


__all__ = ["ApprovalGate"]
