"""Who is who: resolving approvers (user ids, emails, ``@groups``) to people.

The core ships a static directory read from ``podium.yaml``; chat integrations
provide their own (for example Slack users and user groups) behind the same
protocol.
"""

from __future__ import annotations

from typing import Protocol

from podium.spec.models import DirectorySpec


class Directory(Protocol):
    def identities(self, user: str) -> set[str]:
        """Every name that identifies ``user`` (the id itself, emails, handles)."""
        ...

    def members(self, group: str) -> set[str]:
        """Members of a group (without the leading ``@``), as ids or emails."""
        ...


class StaticDirectory:
    """A directory from ``podium.yaml``: ``directory: {users: {...}, groups: {...}}``."""

    def __init__(self, spec: DirectorySpec | None = None) -> None:
        self.spec = spec or DirectorySpec()

    def identities(self, user: str) -> set[str]:
        found = {user, user.lower()}
        for uid, aliases in self.spec.users.items():
            names = {uid, *aliases}
            lowered = {n.lower() for n in names}
            if user in names or user.lower() in lowered:
                found |= names | lowered
        return found

    def members(self, group: str) -> set[str]:
        return set(self.spec.groups.get(group.lstrip("@"), []))


def is_allowed(user: str, allowed: list[str], directory: Directory) -> bool:
    """True when ``user`` is one of ``allowed`` (directly, by alias, or through a group)."""
    ids = directory.identities(user)
    lowered = {i.lower() for i in ids}
    for entry in allowed:
        if entry.startswith("@"):
            for member in directory.members(entry[1:]):
                if member in ids or member.lower() in lowered:
                    return True
                if directory.identities(member) & ids:
                    return True
        elif entry in ids or entry.lower() in lowered:
            return True
    return False


__all__ = ["Directory", "StaticDirectory", "is_allowed"]
