"""Shared test set-up: keep the user's environment out of the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.store import Store, open_store
from tests.gitrepo import data_dir, repo  # noqa: F401 - fixtures shared by every test module

MACHINE_ENV = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "SLACK_CHANNEL",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "PODIUM_CONFIG",
    "PODIUM_LISTEN",
    "PODIUM_WEBHOOK_SECRET",
    "PODIUM_GITLAB_TOKEN",
    "PODIUM_INTERVAL",
    "PODIUM_CONTAINMENT",
)
"""Settings of the machine running the tests that must not reach them."""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Slack settings, OAuth mode or proxies leak in from the machine."""
    for name in MACHINE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="store")
def store_fixture(data_dir: Path) -> Iterator[Store]:  # noqa: F811 - the fixture above
    """The state store the CLI uses (in the test's data dir), opened by the test to look inside."""
    s = open_store(data_dir / "state.db")
    yield s
    s.close()
