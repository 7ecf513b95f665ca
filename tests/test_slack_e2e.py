"""The real ``podium agent`` with Slack: a fake Slack Web API, a real Git repository,
and interactions sent as signed HTTP requests to the agent's ``/slack/events``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.store import Store, open_store
from tests.agentproc import AgentProcess, wait_until
from tests.gitrepo import GitRepo, workflow
from tests.slack_fake import (
    Call,
    FakeSlack,
    block_actions,
    buttons,
    post_signed,
    text_of,
    view_submission,
)

pytestmark = pytest.mark.slow

ON = (
    "[started, succeeded, failed, task_failed, rolled_back, rollback_failed,"
    " approval_requested, approval_decided, approval_superseded, approval_expired,"
    " waiting_decision]"
)
PODIUM_YAML = f"""\
operators: ["@sre"]
notify:
  slack: {{channel: "#deploys", on: {ON}}}
"""
DEPLOY_TASKS = """\
  - id: build
    run: echo built
    rollback: echo unbuilt
  - id: release
    needs: [build]
    run: echo released {version}
    approval:
      approvers: ["@sre", lead@example.com]
      timeout: 1h
      message: Production release
"""
LEAD, ADA, BOB, SRE = "U0LEAD", "U0ADA", "U0BOB", "U0SRE"
SECRET_VALUE = "tok-3xampl3-s3cr3t-value"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_user(LEAD, "lead", "lead@example.com")
        slack.add_user(ADA, "ada", "ada@example.com")  # the commit author (tests.gitrepo)
        slack.add_user(BOB, "bob", "bob@example.com")
        slack.add_user(SRE, "sre", "oncall@example.com")
        slack.add_usergroup("S0SRE", "sre", [ADA, SRE])
        yield slack


def deploy_repo(repo: GitRepo, version: str = "v1") -> None:
    repo.commit(
        {
            "podium.yaml": PODIUM_YAML,
            "workflows/deploy.yaml": workflow(
                "deploy", DEPLOY_TASKS.format(version=version), forbid_self_approval="true"
            ),
        },
        "Release the web tier",
    )


def start_agent(repo: GitRepo, tmp_path: Path, fake: FakeSlack, **env: str) -> AgentProcess:
    return AgentProcess(
        repo.url,
        tmp_path / "state.db",
        "--interval",
        "1s",
        env=fake.env(SLACK_API_TIMEOUT="2s", **env),
    )


def store_of(tmp_path: Path) -> Store:
    return open_store(tmp_path / "state.db")


def run_status(tmp_path: Path, run_id: int) -> str | None:
    store = store_of(tmp_path)
    try:
        return str(store.get_run(run_id).status)
    except Exception:
        return None
    finally:
        store.close()


def is_approval(call: Call, task: str = "release") -> bool:
    blocks = json.dumps(call.args.get("blocks") or [])
    return "podium_approve" in blocks and f"`{task}`" in blocks


def approval_message(fake: FakeSlack, n: int = 1) -> dict[str, Any]:
    """The current form of the n-th approval request message posted."""
    call = fake.wait_for("chat.postMessage", n, timeout=20, where=is_approval)[n - 1]
    return fake.message(call.body["channel"], call.body["ts"])


def click(
    agent: AgentProcess, fake: FakeSlack, user: str, message: dict[str, Any], action: str
) -> httpx.Response:
    """A signed click on ``action`` in ``message``, sent to the agent."""
    return post_signed(agent.url + "/slack/events", block_actions(fake, user, message, action))


def parents(fake: FakeSlack) -> list[Call]:
    """Successful top-level posts (run parents and channel alerts)."""
    return fake.log("chat.postMessage", ok=True, where=lambda c: not c.args.get("thread_ts"))


def updated_to(fake: FakeSlack, message: dict[str, Any], needle: str) -> list[Call]:
    return fake.wait_for(
        "chat.update",
        timeout=20,
        where=lambda c: c.args.get("ts") == message["ts"] and needle in text_of(c.args),
    )


def test_approval_by_button_runs_the_task_after_refusing_others(
    repo: GitRepo, tmp_path: Path, fake: FakeSlack
) -> None:
    """Non-approver and author clicks are refused privately; the approver's runs the task."""
    deploy_repo(repo)
    with start_agent(repo, tmp_path, fake) as agent:
        request = approval_message(fake)
        text = text_of(request)
        assert "Production release" in text and "echo released v1" in text
        assert "<!subteam^S0SRE>" in text and f"<@{LEAD}>" in text  # who may approve
        assert "<!date^" in text  # the deadline
        assert request.get("thread_ts") and request.get("subtype") == "thread_broadcast"

        assert click(agent, fake, BOB, request, "podium_approve").status_code == 200
        note = fake.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == BOB)[0]
        assert "not an approver" in note.args["text"]

        assert click(agent, fake, ADA, request, "podium_approve").status_code == 200
        note = fake.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == ADA)[0]
        assert "four-eyes" in note.args["text"]
        assert run_status(tmp_path, 1) == "waiting_approval"

        assert click(agent, fake, LEAD, request, "podium_approve").status_code == 200
        updated_to(fake, request, f"Approved by <@{LEAD}>")
        wait_until(lambda: run_status(tmp_path, 1) == "succeeded", timeout=20)
        parent = parents(fake)[0]
        updated_to(
            fake, parent.body["message"], ":white_check_mark: *deploy* · run 1 · *succeeded*"
        )
        assert agent.stop() == 0

    edited = fake.message(request["channel"], request["ts"])
    assert not buttons(edited) and "<!date^" in text_of(edited)  # who and when, no buttons
    assert len(parents(fake)) == 1
    replies = fake.log("chat.postMessage", ok=True, where=lambda c: bool(c.args.get("thread_ts")))
    assert len(replies) == 1  # the request itself: success adds nothing to the thread
    store = store_of(tmp_path)
    refused = store.events(kind="decision_refused")
    assert {e.actor for e in refused} == {BOB, ADA}
    decided = store.events(kind="approval_decided")
    assert [(e.actor, e.data["via"]) for e in decided] == [(LEAD, "slack")]
    store.close()


def test_reject_with_a_reason_rolls_the_run_back(
    repo: GitRepo, tmp_path: Path, fake: FakeSlack
) -> None:
    """Reject asks for a reason, records it on the request, and the run rolls back."""
    deploy_repo(repo)
    with start_agent(repo, tmp_path, fake) as agent:
        request = approval_message(fake)
        assert click(agent, fake, LEAD, request, "podium_reject").status_code == 200
        fake.wait_for("views.open")
        modal = fake.views[-1]
        assert json.loads(modal["private_metadata"])["ts"] == request["ts"]
        body = view_submission(LEAD, modal, {"reason": "tests are red on staging"})
        assert post_signed(agent.url + "/slack/events", body).status_code == 200

        updated_to(fake, request, "tests are red on staging")
        wait_until(lambda: run_status(tmp_path, 1) == "rolled_back", timeout=20)
        alert = fake.wait_for(
            "chat.postMessage", where=lambda c: "was rolled back" in text_of(c.args)
        )[0]
        assert agent.stop() == 0

    assert f"Rejected by <@{LEAD}>" in text_of(fake.message(request["channel"], request["ts"]))
    text = text_of(alert.args)
    assert "rolled back `build`" in text
    assert "`podium retry 1`" in text and "`/podium retry 1`" in text
    assert alert.args["thread_ts"] == parents(fake)[0].body["ts"]
    store = store_of(tmp_path)
    approval = store.approvals(run_id=1)[0]
    assert (approval.status, approval.decided_by, approval.comment, approval.via) == (
        "rejected",
        LEAD,
        "tests are red on staging",
        "slack",
    )
    store.close()


def test_click_on_a_superseded_request_is_refused(
    repo: GitRepo, tmp_path: Path, fake: FakeSlack
) -> None:
    """A new commit supersedes the waiting request; a click on the old one is refused."""
    deploy_repo(repo, "v1")
    with start_agent(repo, tmp_path, fake) as agent:
        old = approval_message(fake)
        deploy_repo(repo, "v2")
        updated_to(fake, old, "Superseded")
        new = approval_message(fake, 2)
        assert "echo released v2" in text_of(new)

        assert click(agent, fake, LEAD, old, "podium_approve").status_code == 200
        note = fake.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == LEAD)[0]
        assert "superseded" in note.args["text"]
        assert agent.stop() == 0

    store = store_of(tmp_path)
    assert [a.status for a in store.approvals()] == ["superseded", "pending"]
    assert str(store.get_run(1).status) == "cancelled"
    assert [e.actor for e in store.events(kind="decision_refused")] == [LEAD]
    store.close()


def test_failure_alert_shows_redacted_output_and_what_rollback_did(
    repo: GitRepo, tmp_path: Path, fake: FakeSlack
) -> None:
    """A failed task's alert shows exit code, attempts, output tail with *** and rollback."""
    tasks = """\
  - id: prepare
    run: echo prepared
    rollback: echo unprepared
  - id: publish
    needs: [prepare]
    env: {API_TOKEN: {secret: PODIUM_TEST_API_TOKEN}}
    retries: {count: 1, delay: 0s}
    run: 'for i in $(seq 1 40); do echo "line $i"; done; echo "token=$API_TOKEN"; exit 3'
"""
    repo.commit(
        {"podium.yaml": PODIUM_YAML, "workflows/leaky.yaml": workflow("leaky", tasks)},
        "Publish the API",
    )
    with start_agent(repo, tmp_path, fake, PODIUM_TEST_API_TOKEN=SECRET_VALUE) as agent:
        wait_until(lambda: run_status(tmp_path, 1) == "rolled_back", timeout=20)
        task_alert = fake.wait_for(
            "chat.postMessage",
            where=lambda c: (
                bool(c.args.get("thread_ts")) and "`publish` failed in" in text_of(c.args)
            ),
        )[0]
        run_alert = fake.wait_for(
            "chat.postMessage", where=lambda c: "was rolled back" in text_of(c.args)
        )[0]
        assert agent.stop() == 0

    text = text_of(task_alert.args)
    assert "*Exit code:* 3" in text and "*Attempts:* 2" in text
    assert "token=***" in text and "line 40" in text
    assert "line 1\n" not in text  # only the last lines
    output = next(b for b in task_alert.args["blocks"] if "Last output" in json.dumps(b))
    assert output["text"]["text"].count("```") == 2  # one code block
    assert "rolled back `prepare`" in text_of(run_alert.args)
    assert "`podium retry 1`" in text_of(run_alert.args)
    assert SECRET_VALUE not in json.dumps([c.args for c in fake.calls])


def test_slack_outage_and_rate_limits_delay_messages_but_never_duplicate_them(
    repo: GitRepo, tmp_path: Path, fake: FakeSlack
) -> None:
    """Runs go on through a Slack outage and 429s; every message arrives after, once."""
    repo.commit(
        {
            "podium.yaml": PODIUM_YAML,
            "workflows/quick.yaml": workflow(
                "quick", "  - {id: one, run: 'true'}\n  - {id: two, run: 'true', needs: [one]}\n"
            ),
            "workflows/deploy.yaml": workflow("deploy", DEPLOY_TASKS.format(version="v1")),
        },
        "Two workflows",
    )
    outage = fake.fail("chat.*", times=None, status=503)
    with start_agent(repo, tmp_path, fake) as agent:
        store = store_of(tmp_path)
        quick = wait_until(lambda: {r.workflow: r for r in store.list_runs()}.get("quick"))
        wait_until(lambda: str(store.get_run(quick.id).status) == "succeeded", timeout=20)
        wait_until(lambda: str(store.list_runs("deploy")[0].status) == "waiting_approval")
        deploy_id = store.list_runs("deploy")[0].id
        store.close()
        fake.wait_for("chat.postMessage", 2, ok=False)  # it tried, and failed
        assert not fake.log("chat.postMessage", ok=True)

        fake.heal(outage)
        fake.fail("chat.postMessage", times=2, retry_after=1)
        request = approval_message(fake)
        assert click(agent, fake, LEAD, request, "podium_approve").status_code == 200
        wait_until(lambda: run_status(tmp_path, deploy_id) == "succeeded", timeout=30)
        done = ":white_check_mark: *deploy*"
        wait_until(lambda: any(done in text_of(m) for m in fake.find("*deploy*")), timeout=20)
        wait_until(
            lambda: any(":white_check_mark: *quick*" in text_of(m) for m in fake.find("*quick*")),
            timeout=20,
        )
        assert agent.stop() == 0
        log = agent.output()

    assert len(fake.log("chat.postMessage", ok=False, where=lambda c: c.status == 429)) == 2
    assert "notification_deferred" in log  # Retry-After was honoured through the outbox
    tops = sorted(c.args["text"].split(" ")[1] for c in parents(fake))
    assert tops == ["deploy", "quick"]  # one parent message per run
    assert len(fake.log("chat.postMessage", ok=True, where=is_approval)) == 1
    posted = [
        (c.args.get("thread_ts"), json.dumps(c.args.get("blocks"), sort_keys=True))
        for c in fake.log("chat.postMessage", ok=True)
    ]
    assert len(posted) == len(set(posted))  # nothing was posted twice
