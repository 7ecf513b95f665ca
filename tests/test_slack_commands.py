"""``/podium`` over signed HTTP: every subcommand, who may use it, and malformed input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium_slack.commands import Parsed, UsageError, parse
from tests.slack_fake import FakeSlack, World, post_signed, slash_command, text_of

PODIUM_YAML = """\
operators: ["@sre", boss@example.com]
notify:
  slack:
    channel: "#deploys"
    on: [started, succeeded, failed, rolled_back, approval_requested, approval_decided]
"""
DEPLOY = """\
name: deploy
tasks:
  - id: release
    run: echo released
    approval: {approvers: [lead@example.com]}
"""
FLAKY = """\
name: flaky
on_failure: stop
tasks:
  - {id: check, run: "exit 1"}
"""
OPS, BOSS, LEAD, BOB = "U0OPS", "U0BOSS", "U0LEAD", "U0BOB"


class Podium:
    """An in-process agent with a failed ``flaky`` run (1) and a waiting ``deploy`` run (2)."""

    def __init__(self, tmp_path: Path, fake: FakeSlack) -> None:
        self.fake = fake
        files = {
            "podium.yaml": PODIUM_YAML,
            "workflows/deploy.yaml": DEPLOY,
            "workflows/flaky.yaml": FLAKY,
        }
        self.world = World(tmp_path, fake, files)
        for name in ("flaky", "deploy"):
            self.world.store.touch_workflow(name, f"workflows/{name}.yaml", 0.0)
        self.url = self.world.serve() + "/slack/events"
        self.flaky = self.world.start_run("flaky")
        self.deploy = self.world.start_run("deploy")
        self.world.drive()
        self.world.drain()

    def ack(self, user: str, text: str) -> Any:
        """The HTTP answer to ``/podium <text>`` (the immediate ack)."""
        response = post_signed(self.url, slash_command(self.fake, user, text))
        assert response.status_code == 200
        return response

    def say(self, user: str, text: str) -> dict[str, Any]:
        """``/podium <text>``: the follow-up posted to the command's response_url."""
        before = len(self.fake.log("response_url"))
        response = self.ack(user, text)
        assert response.content == b""  # acknowledged at once, answered after
        calls = self.fake.wait_for("response_url", before + 1, timeout=10)
        return calls[before].args


@pytest.fixture
def podium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Podium]:
    with FakeSlack() as fake:
        fake.add_user(OPS, "ops", "ops@example.com")
        fake.add_user(BOSS, "boss", "boss@example.com")
        fake.add_user(LEAD, "lead", "lead@example.com")
        fake.add_user(BOB, "bob", "bob@example.com")
        fake.add_usergroup("S0SRE", "sre", [OPS])
        p = Podium(tmp_path, fake)
        yield p
        p.world.close()


def test_help_and_empty_text_show_usage_privately(podium: Podium) -> None:
    """``/podium`` and ``/podium help`` answer at once, only to the caller, with the usage."""
    for text in ("", "help", "  HELP  "):
        answer = podium.ack(BOB, text).json()
        assert answer["response_type"] == "ephemeral"
        for sub in ("status", "plan", "runs", "sync", "retry RUN", "approve RUN TASK", "reject"):
            assert f"/podium {sub}" in answer["text"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("frobnicate", "unknown command `frobnicate`"),
        ("retry", "usage: `/podium retry RUN`"),
        ("retry abc", "needs a run number, not `abc`"),
        ("retry 1 2", "usage: `/podium retry RUN`"),
        ("approve 2", "usage: `/podium approve RUN TASK`"),
        ("approve x release", "needs a run number"),
        ("reject 2 release", "a reason is required"),
        ("status a b", "at most one workflow"),
        ("sync now", "takes no arguments"),
        ("<!channel> hi", "unknown command `&lt;!channel&gt;`"),
    ],
)
def test_malformed_commands_get_usage_help_not_a_stack_trace(
    podium: Podium, text: str, problem: str
) -> None:
    """Anything that does not parse gets the problem and the usage, privately."""
    answer = podium.ack(BOB, text).json()
    assert answer["response_type"] == "ephemeral"
    assert problem in answer["text"] and "/podium status" in answer["text"]
    assert "Traceback" not in answer["text"]


def test_status_lists_workflows_or_one_of_them(podium: Podium) -> None:
    """``status`` shows each workflow's readiness and last run; with a name, just that one."""
    everything = podium.say(BOB, "status")
    assert everything["response_type"] == "ephemeral"
    assert "*deploy*" in everything["text"] and "*flaky*" in everything["text"]
    assert "WaitingApproval" in everything["text"] and "TaskFailed" in everything["text"]
    one = podium.say(BOB, "status flaky")["text"]
    assert "*flaky*" in one and "*deploy*" not in one and "last run 1 failed" in one
    assert "No workflow named `nope`" in podium.say(BOB, "status nope")["text"]


def test_plan_shows_the_agents_plan_in_a_code_block(podium: Podium) -> None:
    """``plan [workflow]`` answers privately with the agent's plan text."""
    answer = podium.say(BOB, "plan deploy")
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "```plan for deploy: 1 outstanding```"
    podium.say(BOB, "plan")
    assert podium.world.plans == ["deploy", None]


def test_runs_lists_recent_runs(podium: Podium) -> None:
    """``runs [workflow]`` lists the latest runs with status and revision."""
    text = podium.say(BOB, "runs")["text"]
    assert "run 2 · *deploy* · `c0ffee0` · waiting approval" in text
    assert "run 1 · *flaky* · `c0ffee0` · failed" in text
    only = podium.say(BOB, "runs deploy")["text"]
    assert "*flaky*" not in only
    assert podium.say(BOB, "runs ghost")["text"] == "No runs of `ghost` yet."


def test_sync_is_for_operators_and_answers_in_the_channel(podium: Podium) -> None:
    """An operator (via the @sre Slack group, or by email) triggers a reconcile, visibly."""
    answer = podium.say(OPS, "sync")
    assert answer["response_type"] == "in_channel"
    assert f"<@{OPS}> asked for a sync" in answer["text"]
    podium.say(BOSS, "sync")
    assert podium.world.reconciles == ["slack", "slack"]


def test_changing_commands_are_refused_to_non_operators_and_audited(podium: Podium) -> None:
    """``sync`` and ``retry`` by a non-operator change nothing; the refusal is recorded."""
    for text in ("sync", "retry 1"):
        answer = podium.say(BOB, text)
        assert answer["response_type"] == "ephemeral"
        assert "only operators may" in answer["text"]
    assert podium.world.reconciles == []
    assert podium.world.store.failures_all()  # the failure of run 1 still stands
    refused = podium.world.store.events(kind="command_refused")
    assert [(e.actor, e.data["command"]) for e in refused] == [(BOB, "sync"), (BOB, "retry")]


def test_retry_clears_a_failed_run_for_the_next_reconcile(podium: Podium) -> None:
    """``retry RUN`` by an operator goes through Decisions.retry and says so in the channel."""
    answer = podium.say(OPS, f"retry {podium.flaky}")
    assert answer["response_type"] == "in_channel"
    assert "failures of run 1 cleared" in answer["text"]
    assert not podium.world.store.failures_all()
    assert podium.world.store.events(kind="retry_requested")[0].data["via"] == "slack"
    refused = podium.say(OPS, "retry 99")
    assert refused["response_type"] == "ephemeral" and "no run 99" in refused["text"]
    waiting = podium.say(OPS, f"retry {podium.deploy}")["text"]
    assert "only finished runs can be retried" in waiting


def test_approve_by_command_checks_approvers_and_edits_the_request(podium: Podium) -> None:
    """``approve`` is refused to non-approvers; an approver's edits the request in place."""
    refused = podium.say(BOB, f"approve {podium.deploy} release")
    assert refused["response_type"] == "ephemeral" and "not an approver" in refused["text"]
    answer = podium.say(LEAD, f"approve {podium.deploy} release")
    assert answer["response_type"] == "in_channel"
    assert answer["text"] == f":white_check_mark: <@{LEAD}> approved `release` in run 2."
    podium.fake.wait_for("chat.update", where=lambda c: "Approved by <@U0LEAD>" in text_of(c.args))
    req = podium.world.store.approvals(run_id=podium.deploy)[0]
    assert (req.status, req.via) == ("approved", "slack")
    again = podium.say(LEAD, f"approve {podium.deploy} release")["text"]
    assert "already approved" in again


def test_reject_by_command_keeps_the_whole_reason(podium: Podium) -> None:
    """``reject RUN TASK reason…`` records the full reason, spaces and all."""
    answer = podium.say(LEAD, f"reject {podium.deploy} release  not today:  freeze <3")
    assert answer["response_type"] == "in_channel"
    assert "not today:  freeze &lt;3" in answer["text"]
    req = podium.world.store.approvals(run_id=podium.deploy)[0]
    assert (req.status, req.comment) == ("rejected", "not today:  freeze <3")


def test_unknown_task_or_run_gets_a_plain_refusal(podium: Podium) -> None:
    """Decisions' refusals come back as one line, never a stack trace."""
    assert "has no task 'nope'" in podium.say(LEAD, f"approve {podium.deploy} nope")["text"]
    assert "no run 42" in podium.say(LEAD, "approve 42 release")["text"]


def test_an_internal_error_is_logged_and_answered_politely(podium: Podium) -> None:
    """A crash inside a subcommand is answered with a short note, not the exception."""

    def broken(_workflow: str | None) -> str:
        raise RuntimeError("database on fire /secret/path")

    podium.world.ctx.plan_text = broken
    answer = podium.say(BOB, "plan")
    assert answer["text"] == "Podium could not do that; the agent's log has the details."


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", Parsed("help")),
        ("status", Parsed("status")),
        ("STATUS deploy", Parsed("status", workflow="deploy")),
        ("retry #12", Parsed("retry", run_id=12)),
        ("approve 3 release", Parsed("approve", run_id=3, task="release")),
        ("reject 3 release a b", Parsed("reject", run_id=3, task="release", reason="a b")),
    ],
)
def test_parse_table(text: str, parsed: Parsed) -> None:
    """The parser maps text to subcommand and arguments."""
    assert parse(text) == parsed


def test_parse_refuses_huge_run_numbers() -> None:
    """Run numbers are digits of sane length."""
    with pytest.raises(UsageError):
        parse("retry 99999999999999999999")
