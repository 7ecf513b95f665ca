"""Which notifiers receive which events of a workflow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from podium.spec.models import NotifyRoute

CONSOLE = "console"
_DEFAULT_ON = frozenset(str(k) for k in NotifyRoute().on)


def routes_for(
    kind: str,
    notify: Mapping[str, NotifyRoute] | None,
    enabled: Sequence[str] = (CONSOLE,),
) -> list[tuple[str, str | None]]:
    """(notifier, target) pairs for an event kind.

    The console notifier receives every event unless a ``console`` route narrows it;
    other notifiers receive what their route's ``on`` lists, if they are enabled. An
    enabled notifier without a route gets the default alerts (failures, rollbacks,
    approval requests) with no target: it sends them to its own default destination
    (for Slack, ``SLACK_CHANNEL``).
    """
    out: list[tuple[str, str | None]] = []
    routes = dict(notify or {})
    for name in enabled:
        route = routes.get(name)
        if route is None:
            if name == CONSOLE or kind in _DEFAULT_ON:
                out.append((name, None))
            continue
        if kind in route.on or (name == CONSOLE and not route.on):
            out.append((name, route.channel))
    return out


__all__ = ["CONSOLE", "routes_for"]
