"""The Slack directory: emails and user groups from Slack, cached, over podium.yaml's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from podium.directory import StaticDirectory, is_allowed
from podium.spec.models import DirectorySpec
from podium_slack.api import SlackApi, web_client
from podium_slack.config import SlackConfig
from podium_slack.directory import SlackDirectory, SlackPeople
from tests.slack_fake import BOT_TOKEN, FakeSlack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_user("U0LEAD", "lead", "Lead@Example.com")
        slack.add_user("U0NOMAIL", "nomail", None)
        slack.add_usergroup("S0SRE", "sre", ["U0LEAD", "U0OPS"])
        yield slack


@pytest.fixture
def clock() -> Clock:
    return Clock()


def people_for(fake: FakeSlack, clock: Clock) -> SlackPeople:
    config = SlackConfig(bot_token=BOT_TOKEN, api_url=fake.api_url, timeout=1)
    return SlackPeople(SlackApi(web_client(config, retries=False)), ttl=300, clock=clock)


def static(
    users: dict[str, list[str]] | None = None, groups: dict[str, list[str]] | None = None
) -> StaticDirectory:
    return StaticDirectory(DirectorySpec(users=users or {}, groups=groups or {}))


def test_identities_of_a_slack_user_include_their_email(fake: FakeSlack, clock: Clock) -> None:
    """users.info adds the (lower-cased) email, and the static aliases of that email."""
    d = SlackDirectory(people_for(fake, clock), static({"lead": ["lead@example.com"]}))
    ids = d.identities("U0LEAD")
    assert {"U0LEAD", "lead@example.com", "lead"} <= ids
    assert fake.log("users.info")[0].args["user"] == "U0LEAD"


def test_identities_of_an_email_include_the_slack_user(fake: FakeSlack, clock: Clock) -> None:
    """users.lookupByEmail maps an email (from the CLI, say) to its Slack user."""
    d = SlackDirectory(people_for(fake, clock))
    assert "U0LEAD" in d.identities("lead@example.com")


def test_without_the_email_scope_the_static_directory_still_answers(
    fake: FakeSlack, clock: Clock
) -> None:
    """A profile without email (no users:read.email) leaves the static aliases."""
    d = SlackDirectory(people_for(fake, clock), static({"U0NOMAIL": ["nomail@example.com"]}))
    assert d.identities("U0NOMAIL") == {"U0NOMAIL", "u0nomail", "nomail@example.com"}


def test_group_members_come_from_slack_user_groups(fake: FakeSlack, clock: Clock) -> None:
    """@handle → usergroups.list (S… id) → usergroups.users.list, merged with podium.yaml."""
    d = SlackDirectory(people_for(fake, clock), static(groups={"sre": ["oncall@example.com"]}))
    assert d.members("@sre") == {"U0LEAD", "U0OPS", "oncall@example.com"}
    assert fake.log("usergroups.users.list")[0].args["usergroup"] == "S0SRE"
    assert d.members("@nobody") == set()


def test_approver_rules_resolve_through_slack(fake: FakeSlack, clock: Clock) -> None:
    """An approver listed by email or @group is recognised by their Slack user id."""
    d = SlackDirectory(people_for(fake, clock))
    assert is_allowed("U0LEAD", ["lead@example.com"], d)
    assert is_allowed("U0OPS", ["@sre"], d)
    assert not is_allowed("U0NOMAIL", ["lead@example.com", "@sre"], d)


def test_lookups_are_cached_until_they_expire(fake: FakeSlack, clock: Clock) -> None:
    """Repeated lookups hit the cache; after the TTL Slack is asked again."""
    people = people_for(fake, clock)
    for _ in range(3):
        assert people.email_of("U0LEAD") == "lead@example.com"
        assert people.group_members("@sre") == {"U0LEAD", "U0OPS"}
    assert len(fake.log("users.info")) == 1 and len(fake.log("usergroups.list")) == 1
    clock.now += 301
    people.email_of("U0LEAD")
    assert len(fake.log("users.info")) == 2


def test_slack_failures_fall_back_to_the_static_directory(fake: FakeSlack, clock: Clock) -> None:
    """When Slack fails, lookups answer from podium.yaml, log a warning, back off briefly."""
    d = SlackDirectory(people_for(fake, clock), static({"U0LEAD": ["lead@example.com"]}))
    fake.fail("users.info", times=None, status=503)
    fake.fail("usergroups.list", retry_after=30)
    with capture_logs() as logs:
        assert "lead@example.com" in d.identities("U0LEAD")
        assert d.members("@sre") == set()
        d.identities("U0LEAD")
    assert {e["event"] for e in logs} == {"slack_lookup_failed", "slack_lookup_rate_limited"}
    assert len(fake.log("users.info")) == 1  # the failure is remembered for a while
    fake.heal()
    clock.now += 31
    assert d.members("@sre") == {"U0LEAD", "U0OPS"}


def test_mentions_for_approver_entries(fake: FakeSlack, clock: Clock) -> None:
    """Approver entries render as Slack mentions when Slack knows them, else as text."""
    people = people_for(fake, clock)
    assert people.mention("@sre") == "<!subteam^S0SRE>"
    assert people.mention("lead@example.com") == "<@U0LEAD>"
    assert people.mention("U0OPS") == "<@U0OPS>"
    assert people.mention("ghost@example.com") == "ghost@example.com"
    assert people.mention("@ghosts") == "@ghosts"
    assert people.mention("a<b") == "a&lt;b"
