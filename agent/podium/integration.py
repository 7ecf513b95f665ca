"""The plug-in point for outside systems (chat, ticketing): ``podium.integrations`` entry points.

The core never imports an integration. At start the agent loads every entry point
of the group; each names a ``setup(ctx: IntegrationContext) -> Integration | None``
callable. Returning ``None`` means "not configured here" (the integration says why,
once, in the log).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from podium.decisions import Decisions
from podium.directory import Directory
from podium.log import get_logger
from podium.notify.base import Notifier
from podium.store import Store

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

log = get_logger("podium.integrations")

ENTRY_POINT_GROUP = "podium.integrations"


@dataclass
class IntegrationContext:
    """What an integration may use: the store, the decision service, and agent controls."""

    store: Store
    decisions: Decisions
    request_reconcile: Callable[[str], None]
    plan_text: Callable[[str | None], str]
    """A plan rendered as text, optionally for one workflow."""
    status_rows: Callable[[], list[dict[str, Any]]]
    repo_config: Callable[[], Any]
    """The current ``podium.yaml`` (:class:`podium.spec.models.RepoConfig`) or None."""
    settings: Any = None


@dataclass
class Integration:
    name: str
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    routes: Sequence[BaseRoute] = ()
    directory: Callable[[Any], Directory] | None = None
    """Resolves approvers for a run (``run -> Directory``), replacing the static one."""
    start: Callable[[], None] | None = None
    stop: Callable[[], None] | None = None


def load_integrations(ctx: IntegrationContext) -> list[Integration]:
    found: list[Integration] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            setup = ep.load()
            integration = setup(ctx)
        except Exception as exc:  # a broken integration must not stop the agent
            log.error("integration_failed", integration=ep.name, error=str(exc))
            continue
        if integration is not None:
            found.append(integration)
            log.info("integration_enabled", integration=integration.name)
    return found


__all__ = ["ENTRY_POINT_GROUP", "Integration", "IntegrationContext", "load_integrations"]
