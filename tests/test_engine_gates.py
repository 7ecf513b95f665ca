"""ApprovalGates: a gated task asks once, bound to its fingerprint and rules, and waits until
a decision or the request's timeout lets it start or fails it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from podium.decisions import Decisions
from podium.engine.approvals import ApprovalGates
from podium.engine.context import RunContext
from podium.gates import Gate
from podium.source.git import GitSource
from podium.states import RunStatus, TaskStatus
from tests.enginekit import WF, Kit, kit_fixture, load, load_at  # noqa: F401 - the kit fixture
from tests.gitrepo import AUTHOR_EMAIL, GitRepo, workflow

TASKS = """\
  - {id: build, run: make}
  - id: deploy
    needs: [build]
    run: make deploy
    approval: {approvers: [alice@example.com, "@ops"], timeout: 1h}
"""
GATED = load(workflow("w", TASKS))


@pytest.fixture(name="source")
def source_fixture(repo: GitRepo, data_dir: Path) -> GitSource:
    """A real Git source whose last commit was authored by Bob and committed by Ada."""
    repo.commit(
        {WF: workflow("w", TASKS, forbid_self_approval="true")},
        author="Bob Builder <bob@example.com>",
    )
    source = GitSource(repo.url, data_dir / "cache")
    assert source.fetch().ok
    return source


def _waiting(kit: Kit, gates: ApprovalGates, run_id: int) -> RunContext:
    """The run's view once ``deploy`` asked for approval and the run waits for it."""
    ctx = kit.context(run_id)
    kit.ledger.set_run(ctx, RunStatus.RUNNING)
    assert gates.gate(ctx, "deploy")
    kit.ledger.set_run(ctx, RunStatus.WAITING_APPROVAL)
    return ctx


def test_a_task_without_a_gate_starts_without_asking(kit: Kit) -> None:
    """No approval rule: the task may start and no request is made."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    ctx = kit.context(kit.create(GATED))
    assert not gates.gate(ctx, "build")
    assert kit.store.approvals() == []


def test_a_request_is_bound_to_the_fingerprint_and_the_people_who_made_the_change(
    kit: Kit, source: GitSource
) -> None:
    """The request binds fingerprint, revision, approvers, timeout, four-eyes, author, committer."""
    revision = source.resolve("main")
    wf = load_at(source, revision)
    gates = ApprovalGates(kit.store, kit.ledger, source)
    run_id = kit.create(wf)
    ctx = kit.context(run_id)
    before = time.time()
    assert gates.gate(ctx, "deploy")
    (req,) = kit.store.approvals(run_id=run_id, task="deploy")
    assert req.status == "pending"
    assert (req.fingerprint, req.revision) == (ctx.fingerprints["deploy"], revision)
    assert req.approvers == ["alice@example.com", "@ops"]
    assert req.forbid_self_approval is True
    assert (req.author_email, req.committer_email) == ("bob@example.com", AUTHOR_EMAIL)
    assert req.deadline is not None and before + 3600 <= req.deadline <= time.time() + 3600
    assert req.on_timeout == "reject"
    assert kit.statuses(run_id)["deploy"] is TaskStatus.WAITING_APPROVAL
    assert ctx.waiting == {"deploy"}
    (event,) = kit.events(run_id, "approval_requested")
    assert event.data["approval_id"] == req.id
    assert event.data["fingerprint"] == req.fingerprint
    assert event.data["approvers"] == req.approvers


def test_a_task_waiting_on_its_request_does_not_ask_again(kit: Kit) -> None:
    """While the request is pending the task keeps waiting on it, with no second request."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = kit.context(run_id)
    assert gates.gate(ctx, "deploy")
    assert gates.gate(kit.context(run_id), "deploy")
    assert len(kit.store.approvals(run_id=run_id)) == 1
    assert len(kit.events(run_id, "approval_requested")) == 1


def test_the_rules_frozen_in_the_run_decide_who_approves(kit: Kit) -> None:
    """The approvers and four-eyes rule frozen in the run are asked for, not the workflow's own."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    frozen = Gate(approvers=("carol@example.com",), forbid_self_approval=True)
    run_id = kit.create(GATED, gates={"deploy": frozen})
    assert gates.gate(kit.context(run_id), "deploy")
    (req,) = kit.store.approvals(run_id=run_id)
    assert req.approvers == ["carol@example.com"]
    assert req.forbid_self_approval is True
    assert req.deadline is None


def test_an_approval_for_another_fingerprint_does_not_open_the_gate(kit: Kit) -> None:
    """An approval of another fingerprint does not let the task start: a new request is made."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = kit.context(run_id)
    old = kit.store.create_approval(
        run_id, "deploy", "fingerprint-of-x", "rev-x", ["alice@example.com"], None, "reject"
    )
    kit.store.decide_approval(old.id, "approved", "alice@example.com")
    kit.ledger.set_task(ctx, "deploy", TaskStatus.WAITING_APPROVAL)
    assert not gates.check(ctx)
    assert kit.statuses(run_id)["deploy"] is TaskStatus.WAITING_APPROVAL
    assert gates.gate(ctx, "deploy")
    statuses = [(a.fingerprint, a.status) for a in kit.store.approvals(run_id=run_id)]
    assert statuses == [("fingerprint-of-x", "approved"), (ctx.fingerprints["deploy"], "pending")]


def test_an_approval_lets_the_task_start_and_the_run_run_again(kit: Kit) -> None:
    """An approval made elsewhere makes the task pending first in line and the run running again."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = _waiting(kit, gates, run_id)
    assert not gates.check(ctx)  # nothing decided yet
    Decisions(kit.store).decide(run_id, "deploy", "alice@example.com", approve=True)
    assert gates.check(ctx)
    assert kit.statuses(run_id)["deploy"] is TaskStatus.PENDING
    assert ctx.ready[0] == "deploy"
    assert kit.store.get_run(run_id).status is RunStatus.RUNNING
    assert ctx.run.status is RunStatus.RUNNING
    assert not gates.gate(ctx, "deploy")


def test_one_approval_among_several_requests_lets_the_run_run_again(kit: Kit) -> None:
    """One approval among two requests: the run runs again, the other task keeps waiting."""
    wf = load(
        workflow(
            "w",
            """\
  - {id: a, run: a, approval: {approvers: [alice@example.com]}}
  - {id: b, run: b, approval: {approvers: [alice@example.com]}}
""",
        )
    )
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(wf)
    ctx = kit.context(run_id)
    kit.ledger.set_run(ctx, RunStatus.RUNNING)
    ctx.ready.clear()  # the coordinator takes a task off the queue to gate it
    assert gates.gate(ctx, "a") and gates.gate(ctx, "b")
    kit.ledger.set_run(ctx, RunStatus.WAITING_APPROVAL)
    Decisions(kit.store).decide(run_id, "a", "alice@example.com", approve=True)
    assert gates.check(ctx)
    assert list(ctx.ready) == ["a"]
    assert kit.statuses(run_id) == {"a": TaskStatus.PENDING, "b": TaskStatus.WAITING_APPROVAL}
    assert kit.store.get_run(run_id).status is RunStatus.RUNNING


def test_a_rejection_fails_the_task_with_who_and_why(kit: Kit) -> None:
    """A rejection fails the task with who and why, records its fingerprint, and the run runs on."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = _waiting(kit, gates, run_id)
    Decisions(kit.store).decide(
        run_id, "deploy", "alice@example.com", approve=False, comment="not on a Friday"
    )
    assert gates.check(ctx)
    rt = kit.store.get_run_task(run_id, "deploy")
    assert rt.status is TaskStatus.FAILED
    assert rt.error == "rejected by alice@example.com: not on a Friday"
    assert ("w", "deploy") in kit.store.failures_all()
    assert kit.store.get_run(run_id).status is RunStatus.RUNNING
    assert ctx.failed


def test_a_rejected_request_fails_the_task_at_its_gate(kit: Kit) -> None:
    """A task reaching its gate after a rejection fails, naming the decider (or no reason given)."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = kit.context(run_id)
    req = kit.store.create_approval(
        run_id, "deploy", ctx.fingerprints["deploy"], GATED.revision, ["a"], None, "reject"
    )
    kit.store.decide_approval(req.id, "rejected", "alice@example.com")
    assert gates.gate(ctx, "deploy")
    rt = kit.store.get_run_task(run_id, "deploy")
    assert rt.status is TaskStatus.FAILED
    assert rt.error == "rejected by alice@example.com: no reason given"
    assert len(kit.store.approvals(run_id=run_id)) == 1


@pytest.mark.parametrize(
    ("on_timeout", "task_after"), [("reject", TaskStatus.FAILED), ("approve", TaskStatus.PENDING)]
)
def test_an_expired_request_is_decided_as_its_gate_says(
    kit: Kit, on_timeout: str, task_after: TaskStatus
) -> None:
    """An expired request is decided by "timeout" as on_timeout says, announced once, applied."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = kit.context(run_id)
    kit.ledger.set_run(ctx, RunStatus.WAITING_APPROVAL)
    req = kit.store.create_approval(
        run_id,
        "deploy",
        ctx.fingerprints["deploy"],
        GATED.revision,
        ["alice@example.com"],
        time.time() - 1,
        on_timeout,
    )
    kit.ledger.set_task(ctx, "deploy", TaskStatus.WAITING_APPROVAL)
    assert gates.check(ctx)
    decided = kit.store.get_approval(req.id)
    expected = "approved" if on_timeout == "approve" else "rejected"
    assert (decided.status, decided.decided_by, decided.via) == (expected, "timeout", "timeout")
    (event,) = kit.events(run_id, "approval_expired")
    assert event.data == {"approval_id": req.id, "outcome": expected}
    assert kit.statuses(run_id)["deploy"] is task_after
    assert ("deploy" in ctx.ready) is (task_after is TaskStatus.PENDING)
    assert kit.store.get_run(run_id).status is RunStatus.RUNNING
    gates.check(ctx)
    assert len(kit.events(run_id, "approval_expired")) == 1


def test_a_request_before_its_deadline_keeps_waiting(kit: Kit) -> None:
    """A pending request whose deadline is still ahead changes nothing."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = _waiting(kit, gates, run_id)
    assert not gates.check(ctx)
    assert kit.store.approvals(run_id=run_id)[0].status == "pending"
    assert kit.statuses(run_id)["deploy"] is TaskStatus.WAITING_APPROVAL
    assert kit.store.get_run(run_id).status is RunStatus.WAITING_APPROVAL


def test_a_skip_of_the_only_waiting_task_lets_the_run_run_again(kit: Kit) -> None:
    """An operator skip of the only waiting task is adopted and the run is running again."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = _waiting(kit, gates, run_id)
    Decisions(kit.store).skip(run_id, "deploy", "olga")
    assert gates.check(ctx)
    assert ctx.status["deploy"] is TaskStatus.SKIPPED
    assert kit.store.get_run(run_id).status is RunStatus.RUNNING


def test_a_retried_interruption_lets_a_run_waiting_for_a_decision_run_again(kit: Kit) -> None:
    """A run waiting for a decision runs again once no task of it is interrupted."""
    gates = ApprovalGates(kit.store, kit.ledger, None)
    run_id = kit.create(GATED)
    ctx = kit.context(run_id)
    kit.ledger.set_run(ctx, RunStatus.RUNNING)
    attempt = kit.begin(ctx, "build")
    rt = kit.store.get_run_task(run_id, "build")
    kit.ledger.hold(ctx.run, ctx.wf, rt, attempt.attempt_id, attempt.number, "run")
    kit.ledger.set_run(kit.context(run_id), RunStatus.WAITING_DECISION)
    assert not gates.check(kit.context(run_id))  # still interrupted
    Decisions(kit.store).retry(run_id, "olga")
    ctx = kit.context(run_id)
    assert gates.check(ctx)
    assert kit.store.get_run(run_id).status is RunStatus.RUNNING


def test_the_authors_are_empty_without_a_source_and_read_once_per_run(
    kit: Kit, source: GitSource
) -> None:
    """Without a source nobody is named; with one, author and committer are read per run."""
    ctx = kit.context(kit.create(GATED))
    assert ApprovalGates(kit.store, kit.ledger, None).authors(ctx) == ("", "")
    wf = load_at(source, source.resolve("main"))
    gates = ApprovalGates(kit.store, kit.ledger, source)
    ctx = kit.context(kit.create(wf))
    assert gates.authors(ctx) == ("bob@example.com", AUTHOR_EMAIL)
    gates.source = None  # a second look at the same run does not read Git again
    assert gates.authors(ctx) == ("bob@example.com", AUTHOR_EMAIL)
    gates.forget(ctx.run.id)
    assert gates.authors(ctx) == ("", "")
