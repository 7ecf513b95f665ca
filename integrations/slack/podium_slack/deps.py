"""What the interactive handlers share: the agent's context and the Slack helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podium.directory import Directory, StaticDirectory
from podium.integration import IntegrationContext

from .api import SlackApi
from .directory import SlackDirectory, SlackPeople
from .publisher import Publisher


@dataclass(frozen=True)
class Deps:
    ctx: IntegrationContext
    api: SlackApi
    """For follow-ups after ``ack()`` (ephemeral notes, dialogs, message edits)."""
    publisher: Publisher
    people: SlackPeople
    directory_for_run: Callable[[Any], Directory]

    def repo_directory(self) -> Directory:
        """Slack over the current ``podium.yaml`` directory (for operator checks)."""
        config = self.ctx.repo_config()
        return SlackDirectory(self.people, StaticDirectory(getattr(config, "directory", None)))


__all__ = ["Deps"]
