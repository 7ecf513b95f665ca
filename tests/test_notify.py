"""The notification outbox: at-least-once delivery, retries with backoff, never blocking."""

from __future__ import annotations

import io
import time
from pathlib import Path

from podium.notify.base import RetryLater, drain
from podium.notify.console import ConsoleNotifier
from podium.notify.routing import routes_for
from podium.spec.models import EventKind, NotifyRoute
from podium.store import open_store
from podium.store.records import OutboxItem


class Flaky:
    """Fails its first ``failures`` sends, then records deliveries by idempotency key."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.delivered: list[str] = []

    def send(self, item: OutboxItem) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("chat is down")
        self.delivered.append(item.key)


def test_a_notifier_failing_its_first_attempts_still_gets_every_event(tmp_path: Path) -> None:
    """Failed sends are retried later with backoff until delivered, once each."""
    store = open_store(tmp_path / "s.db")
    for n in range(3):
        store.emit("failed", workflow="w", run_id=n, routes=[("flaky", "#ops")])
    flaky = Flaky(failures=2)
    now = time.time()
    assert drain(store, {"flaky": flaky}, now=now) == 0  # first send fails: the rest wait
    assert flaky.calls == 1
    assert store.outbox_depth() == 3
    for _ in range(20):
        now += 600
        drain(store, {"flaky": flaky}, now=now)
    assert store.outbox_depth() == 0
    assert len(flaky.delivered) == len(set(flaky.delivered)) == 3


def test_retry_later_defers_by_the_given_seconds(tmp_path: Path) -> None:
    """A RetryLater (e.g. HTTP 429 Retry-After) makes the item due only after that delay."""
    store = open_store(tmp_path / "s.db")
    store.emit("failed", workflow="w", routes=[("slack", "#ops")])

    class Limited:
        name = "slack"

        def send(self, item: OutboxItem) -> None:
            raise RetryLater(30)

    drain(store, {"slack": Limited()})
    assert store.due_outbox(time.time() + 5) == []
    assert len(store.due_outbox(time.time() + 31)) == 1


def test_console_notifier_prints_one_line_per_event(tmp_path: Path) -> None:
    """The console notifier describes events for humans, with the command to approve."""
    store = open_store(tmp_path / "s.db")
    store.emit(
        "approval_requested",
        workflow="deploy",
        run_id=7,
        task="prod",
        data={"approvers": ["@sre"]},
        routes=[("console", None)],
    )
    out = io.StringIO()
    assert drain(store, {"console": ConsoleNotifier(out)}) == 1
    assert "podium approve 7 prod" in out.getvalue()
    assert drain(store, {"console": ConsoleNotifier(out)}) == 0


def test_routes_follow_the_workflow_notify_settings() -> None:
    """Slack gets only the event kinds its route lists; the console gets everything by default."""
    notify = {"slack": NotifyRoute(channel="#deploys", on=[EventKind.FAILED])}
    assert routes_for("failed", notify, ("console", "slack")) == [
        ("console", None),
        ("slack", "#deploys"),
    ]
    assert routes_for("succeeded", notify, ("console", "slack")) == [("console", None)]
    assert routes_for("failed", notify, ("console",)) == [("console", None)]


def test_a_notifier_without_a_route_gets_the_default_alerts() -> None:
    """An enabled notifier with no route receives failures and approvals, not routine news."""
    assert routes_for("failed", None, ("console", "slack")) == [("console", None), ("slack", None)]
    assert routes_for("approval_requested", {}, ("console", "slack"))[1] == ("slack", None)
    assert routes_for("succeeded", None, ("console", "slack")) == [("console", None)]


def test_console_lines_name_their_subject_and_count_attempts_in_words(tmp_path: Path) -> None:
    """Events without a workflow name their file or source; counts use singular and plural."""
    store = open_store(tmp_path / "s.db")
    store.emit(
        "validation_failed",
        data={"file": "workflows/x.yaml", "problems": ["p"]},
        routes=[("console", None)],
    )
    store.emit(
        "source_unreachable", data={"source": "/r.git", "error": "gone"}, routes=[("console", None)]
    )
    store.emit(
        "task_failed",
        workflow="w",
        run_id=1,
        task="t",
        data={"error": "e", "attempts": 1},
        routes=[("console", None)],
    )
    store.emit(
        "task_failed",
        workflow="w",
        run_id=2,
        task="t",
        data={"error": "e", "attempts": 3},
        routes=[("console", None)],
    )
    out = io.StringIO()
    drain(store, {"console": ConsoleNotifier(out)}, now=time.time())
    lines = out.getvalue().splitlines()
    assert lines[0] == "! validation failed: workflows/x.yaml"
    assert lines[2] == "! source unreachable: /r.git — gone"
    assert lines[3].endswith("after 1 attempt") and lines[4].endswith("after 3 attempts")
