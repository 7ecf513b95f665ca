"""The Slack notifier: run threads, alerts, idempotency and Slack failures, in process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from podium import secrets
from podium.notify.base import RetryLater
from podium.store.records import OutboxItem
from podium_slack.api import SlackError
from podium_slack.notifier import MAX_PERMANENT_ATTEMPTS
from tests.agentproc import wait_until
from tests.slack_fake import Call, FakeSlack, World, text_of

ON = "[started, succeeded, failed, task_failed, rolled_back, rollback_failed, waiting_decision,"
ON += " validation_failed, source_unreachable, source_recovered, approval_requested]"


def podium_yaml(mention: str | None = None, channel: str | None = '"#deploys"') -> str:
    route = f"on: {ON}"
    if channel:
        route += f", channel: {channel}"
    if mention is not None:
        route += f", mention: {mention!r}"
    return f"notify:\n  slack: {{{route}}}\n"


QUICK = (
    "name: quick\ntasks:\n  - {id: one, run: 'true'}\n  - {id: two, run: 'true', needs: [one]}\n"
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_usergroup("S0SRE", "sre", [])
        yield slack


@pytest.fixture
def make_world(tmp_path: Path, fake: FakeSlack) -> Iterator[Any]:
    worlds: list[World] = []

    def make(
        workflows: dict[str, str], yaml: str | None = None, subject: str = "Ship it", **env: str
    ) -> World:
        files = {"podium.yaml": yaml or podium_yaml(), **workflows}
        world = World(tmp_path / f"w{len(worlds)}", fake, files, subject=subject, env=env)
        worlds.append(world)
        return world

    yield make
    for w in worlds:
        w.close()


def top_level(fake: FakeSlack) -> list[Call]:
    return fake.log("chat.postMessage", ok=True, where=lambda c: not c.args.get("thread_ts"))


def replies(fake: FakeSlack) -> list[Call]:
    return fake.log("chat.postMessage", ok=True, where=lambda c: bool(c.args.get("thread_ts")))


def items(world: World, kind: str | None = None) -> list[OutboxItem]:
    due = world.store.due_outbox(time.time() + 10_000, 1000)
    return [i for i in due if i.notifier == "slack" and (kind is None or i.event.kind == kind)]


def emit(world: World, kind: str, data: dict[str, Any], **where: Any) -> OutboxItem:
    world.store.emit(kind, data=data, routes=[("slack", "#deploys")], **where)
    return items(world, kind)[-1]


def test_routine_success_is_one_message_edited_at_the_end(make_world: Any, fake: FakeSlack) -> None:
    """A successful run is one parent message, edited to the final status; no replies."""
    slow = QUICK.replace("run: 'true'}", "run: 'sleep 1'}", 1)
    world = make_world({"workflows/quick.yaml": slow})
    run_id = world.start_run("quick")
    driver = threading.Thread(target=world.drive)
    driver.start()
    wait_until(lambda: world.store.get_run_task(run_id, "one").status == "running")
    world.drain()  # while the first task runs
    first = top_level(fake)[0]
    text = text_of(first.args)
    assert "*quick* · run 1" in text and "`c0ffee0` Ship it — Ada Author" in text
    assert "Outstanding tasks" in text and "`two` pending _(new)_" in text
    driver.join()
    world.drain()
    final = fake.message(first.body["channel"], first.body["ts"])
    assert text_of(final).startswith(":white_check_mark: quick run 1: succeeded in ")
    assert len(top_level(fake)) == 1 and replies(fake) == []
    assert fake.log("chat.update", ok=True)[-1].args["ts"] == first.body["ts"]


def test_events_out_of_order_still_make_one_correct_parent(
    make_world: Any, fake: FakeSlack
) -> None:
    """``succeeded`` delivered before ``started`` still gives one parent, final state."""
    world = make_world({"workflows/quick.yaml": QUICK})
    world.start_run("quick")
    world.drive()
    started, succeeded = items(world, "started")[0], items(world, "succeeded")[0]
    world.notifier.send(succeeded)
    world.notifier.send(started)
    assert len(fake.log("chat.postMessage")) == 1
    assert fake.log("chat.update") == []
    assert ":white_check_mark:" in top_level(fake)[0].args["text"]


def test_failure_alert_is_redacted_escaped_and_size_limited(
    make_world: Any, fake: FakeSlack
) -> None:
    """The failure alert is redacted, escaped, size-limited and says what failed how."""
    world = make_world({"workflows/quick.yaml": QUICK})
    run_id = world.start_run("quick")
    world.drive()
    secrets.register("pa55-w0rd-notifier-test")
    lines = [f"line {i} " + "x" * 150 for i in range(200)]
    tail = "\n".join([*lines, "<!channel> token pa55-w0rd-notifier-test", "```"])
    item = emit(
        world,
        "task_failed",
        {
            "error": "exit code 7",
            "exit_code": 7,
            "http_status": None,
            "attempts": 3,
            "output_tail": tail,
            "on_failure": "rollback",
        },
        workflow="quick",
        run_id=run_id,
        task="two",
    )
    world.notifier.send(item)
    alert = replies(fake)[0].args
    text = text_of(alert)
    assert "*Exit code:* 7" in text and "*Attempts:* 3" in text and "*Error:* exit code 7" in text
    assert "pa55-w0rd-notifier-test" not in json.dumps(alert)
    assert "&lt;!channel&gt; token ***" in text and "<!channel>" not in text
    output = next(b["text"]["text"] for b in alert["blocks"] if "Last output" in json.dumps(b))
    assert output.count("```") == 2 and len(output) < 3000
    assert "line 199" in output and "line 150 " not in output
    assert "rolls back the tasks it completed" in text and "`podium retry 1`" in text


@pytest.mark.parametrize(
    ("mention", "expected"),
    [(None, "<!here>"), ("channel", "<!channel>"), ("@sre", "<!subteam^S0SRE>"), ("none", "")],
)
def test_rollback_failure_alerts_the_channel_loudly(
    make_world: Any, fake: FakeSlack, mention: str | None, expected: str
) -> None:
    """A failed rollback is broadcast with the route's mention (``<!here>`` by default)."""
    flow = (
        "name: fragile\ntasks:\n"
        "  - {id: migrate, run: 'true', rollback: 'echo cannot undo; exit 9'}\n"
        "  - {id: deploy, run: 'exit 1', needs: [migrate]}\n"
    )
    world = make_world({"workflows/fragile.yaml": flow}, podium_yaml(mention))
    world.start_run("fragile")
    world.drive()
    world.drain()
    loud = [c for c in replies(fake) if "Rollback failed" in text_of(c.args)]
    assert len(loud) == 1
    args = loud[0].args
    assert args["reply_broadcast"] is True
    assert args["text"].startswith(f"{expected} fragile run 1 rollback failed".strip())
    text = text_of(args)
    assert "rollback of `migrate` failed" in text and "*Exit code:* 9" in text
    assert "cannot undo" in text  # the rollback's own output
    assert "`deploy` failed: exit code 1" in text  # already detailed by its own alert


def test_rate_limit_becomes_retry_later_with_retry_after(make_world: Any, fake: FakeSlack) -> None:
    """HTTP 429 from Slack raises RetryLater carrying Retry-After, for the outbox."""
    world = make_world({"workflows/quick.yaml": QUICK})
    world.start_run("quick")
    world.drive()
    fake.fail("chat.postMessage", retry_after=7)
    with pytest.raises(RetryLater) as caught:
        world.notifier.send(items(world, "started")[0])
    assert caught.value.seconds == 7.0
    assert len(fake.log("chat.postMessage")) == 1  # no retry inside slack_sdk


@pytest.mark.parametrize(
    "failure",
    [{"status": 500}, {"status": 503}, {"drop": True}, {"error": "internal_error"}],
)
def test_outage_raises_then_delivers_exactly_once(
    make_world: Any, fake: FakeSlack, failure: dict[str, Any]
) -> None:
    """5xx, drops or transient errors raise for the outbox; the retry posts exactly once."""
    world = make_world({"workflows/quick.yaml": QUICK}, SLACK_API_TIMEOUT="1s")
    world.start_run("quick")
    world.drive()
    fake.fail("chat.*", times=None, **failure)
    with pytest.raises(SlackError):
        world.notifier.send(items(world, "started")[0])
    assert world.drain() == 0
    assert world.store.outbox_depth() >= 2
    fake.heal()
    far = time.time() + 3600
    while world.drain(now=far):
        pass
    assert len(fake.log("chat.postMessage", ok=True)) == 1
    assert world.store.outbox_depth() == 0 or all(
        i.notifier != "slack" for i in world.store.due_outbox(far)
    )


def test_slow_answer_within_the_timeout_is_fine(make_world: Any, fake: FakeSlack) -> None:
    """A slow Slack (under SLACK_API_TIMEOUT) is waited for: one post, no error."""
    world = make_world({"workflows/quick.yaml": QUICK}, SLACK_API_TIMEOUT="2s")
    world.start_run("quick")
    world.drive()
    fake.fail("chat.postMessage", delay=0.3)
    world.notifier.send(items(world, "started")[0])
    assert len(fake.log("chat.postMessage", ok=True)) == 1


def test_redelivery_and_restart_never_post_twice(make_world: Any, fake: FakeSlack) -> None:
    """Redelivery, even by a restarted integration, edits instead of posting again."""
    world = make_world({"workflows/quick.yaml": QUICK})
    world.start_run("quick")
    world.drive()
    item = items(world, "succeeded")[0]
    world.notifier.send(item)
    world.notifier.send(item)
    from podium_slack import setup

    again = setup(world.ctx, env=fake.env())
    assert again is not None
    again.notifiers["slack"].send(item)
    assert len(fake.log("chat.postMessage")) == 1
    ref = json.loads(world.store.get_ref("slack:run:1") or "{}")
    assert ref["channel"] == "C0DEPLOYS"  # the id Slack returned, not "#deploys"


def test_unknown_channel_is_retried_a_few_times_then_dropped(
    make_world: Any, fake: FakeSlack
) -> None:
    """channel_not_found is dropped after a few attempts; bad credentials never are."""
    world = make_world({"workflows/quick.yaml": QUICK})
    world.start_run("quick")
    world.drive()
    item = items(world, "started")[0]
    fake.fail("chat.postMessage", times=None, error="channel_not_found")
    with pytest.raises(SlackError):
        world.notifier.send(item)
    last = OutboxItem(
        item.id, item.notifier, item.target, item.key, MAX_PERMANENT_ATTEMPTS - 1, item.event
    )
    with capture_logs() as logs:
        world.notifier.send(last)
    assert any(e["event"] == "slack_notification_dropped" for e in logs)
    fake.heal()
    fake.fail("chat.postMessage", times=None, error="invalid_auth")
    with pytest.raises(SlackError):
        world.notifier.send(last)


def test_route_without_a_channel_uses_slack_channel_or_skips(
    make_world: Any, fake: FakeSlack
) -> None:
    """No ``channel`` in the route: SLACK_CHANNEL is used; without it the event is skipped."""
    world = make_world({"workflows/quick.yaml": QUICK}, podium_yaml(channel=None))
    world.start_run("quick")
    world.drive()
    with capture_logs() as logs:
        world.notifier.send(items(world, "started")[0])
    assert fake.log("chat.postMessage") == []
    assert logs[0]["event"] == "slack_route_without_channel"
    other = make_world(
        {"workflows/quick.yaml": QUICK}, podium_yaml(channel=None), SLACK_CHANNEL="#general"
    )
    other.start_run("quick")
    other.drive()
    other.notifier.send(items(other, "started")[0])
    assert top_level(fake)[0].body["channel"] == "C0GENERAL"


def test_source_outage_alerts_loudly_only_when_it_lasts(make_world: Any, fake: FakeSlack) -> None:
    """A lasting source outage alerts loudly after the grace; recovery replies in thread."""
    world = make_world({"workflows/quick.yaml": QUICK}, SLACK_SOURCE_ALERT_AFTER="60s")
    down = emit(
        world, "source_unreachable", {"error": "fatal: unable to access", "source": "git@x"}
    )
    with pytest.raises(RetryLater) as caught:
        world.notifier.send(down)
    assert 55 < caught.value.seconds <= 60
    world.notifier.clock = lambda: time.time() + 61
    world.notifier.send(down)
    alert = top_level(fake)[0].args
    assert alert["text"].startswith("<!here> Git source unreachable")
    assert "fatal: unable to access" in text_of(alert)
    up = emit(world, "source_recovered", {"source": "git@x"})
    world.notifier.send(up)
    assert "reachable again" in text_of(replies(fake)[0].args)
    assert replies(fake)[0].args["thread_ts"] == top_level(fake)[0].body["ts"]


def test_short_source_outage_stays_quiet(make_world: Any, fake: FakeSlack) -> None:
    """A source that recovered within the grace period alerts nobody."""
    world = make_world({"workflows/quick.yaml": QUICK}, SLACK_SOURCE_ALERT_AFTER="60s")
    down = emit(world, "source_unreachable", {"error": "timeout", "source": "git@x"})
    up = emit(world, "source_recovered", {"source": "git@x"})
    world.notifier.clock = lambda: time.time() + 61
    world.notifier.send(down)
    world.notifier.send(up)
    assert fake.log("chat.postMessage") == []


def test_validation_failure_is_posted_once_with_its_problems(
    make_world: Any, fake: FakeSlack
) -> None:
    """An invalid workflow file is reported in the channel with file:line problems."""
    world = make_world({"workflows/quick.yaml": QUICK})
    item = emit(
        world,
        "validation_failed",
        {"file": "workflows/bad.yaml", "revision": "abcdef123", "problems": ["bad.yaml:3: x"]},
    )
    world.notifier.send(item)
    world.notifier.send(item)
    assert len(fake.log("chat.postMessage")) == 1
    text = text_of(top_level(fake)[0].args)
    assert "`workflows/bad.yaml` is invalid at `abcdef1`" in text and "bad.yaml:3: x" in text


def test_waiting_decision_asks_in_the_channel_with_commands(
    make_world: Any, fake: FakeSlack
) -> None:
    """An interrupted non-idempotent task asks for a decision, visible in the channel."""
    world = make_world({"workflows/quick.yaml": QUICK})
    run_id = world.start_run("quick")
    world.drive()
    world.notifier.send(
        emit(world, "waiting_decision", {"attempt": 1}, workflow="quick", run_id=run_id, task="two")
    )
    reply = replies(fake)[0].args
    assert reply["reply_broadcast"] is True
    for command in ("podium retry 1", "podium skip 1 two", "podium fail 1 two"):
        assert f"`{command}`" in text_of(reply)


def test_commit_subjects_cannot_inject_mentions(make_world: Any, fake: FakeSlack) -> None:
    """Text from Git is escaped: a subject with <!channel> shows as text."""
    world = make_world({"workflows/quick.yaml": QUICK}, subject="<!channel> & <@U1>")
    world.start_run("quick")
    world.drive()
    world.drain()
    text = text_of(top_level(fake)[0].args)
    assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in text and "<!channel>" not in text


GATED = """\
name: gated
tasks:
  - id: release
    run: 'true'
    approval: {approvers: [U0LEAD], timeout: 200ms}
"""
DEFAULT_ROUTE = 'notify:\n  slack: {channel: "#deploys"}\n'  # on: the default four kinds


def test_with_default_routes_an_expired_request_is_still_edited(
    make_world: Any, fake: FakeSlack
) -> None:
    """With default routes, the run's failure event edits an expired request too."""
    world = make_world({"workflows/gated.yaml": GATED}, DEFAULT_ROUTE)
    world.start_run("gated")
    world.drive()
    world.drain()
    request = fake.wait_for("chat.postMessage", where=lambda c: "podium_approve" in str(c.args))
    time.sleep(0.3)
    world.drive()
    world.drain()
    body = request[0].body
    assert "Expired" in text_of(fake.message(body["channel"], body["ts"]))


def test_sweeper_keeps_the_parent_current_when_success_is_not_routed(
    make_world: Any, fake: FakeSlack
) -> None:
    """With default routes, the sweep edits parent and request after a CLI approval."""
    world = make_world({"workflows/gated.yaml": GATED.replace("200ms", "1h")}, DEFAULT_ROUTE)
    run_id = world.start_run("gated")
    world.drive()
    world.drain()
    publisher = world.notifier.publisher
    assert publisher.sweep() == 0  # nothing changed yet
    world.decisions.decide(run_id, "release", "U0LEAD", True, via="cli")
    world.drive()
    assert world.drain() == 0  # succeeded / approval_decided are not routed to Slack
    assert publisher.sweep() == 1
    parent, request = (
        fake.message(c.body["channel"], c.body["ts"]) for c in fake.log("chat.postMessage", ok=True)
    )
    assert text_of(parent).startswith(":white_check_mark: gated run 1: succeeded")
    assert "Approved by <@U0LEAD>" in text_of(request)
    assert publisher.sweep() == 0  # finished runs are no longer watched
