"""Who is who, according to Slack: user emails and user-group members, cached.

:class:`SlackDirectory` implements the core's ``Directory`` protocol on top of the
static directory of the run's ``podium.yaml``: Slack adds a user's email
(``users.info``, needs ``users:read.email``), the user behind an email
(``users.lookupByEmail``) and the members of ``@handle`` user groups
(``usergroups.list`` → ``S…`` id → ``usergroups.users.list``). When Slack cannot
answer, the static directory still does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from podium.directory import Directory, StaticDirectory
from podium.log import get_logger
from podium.notify.base import RetryLater
from podium.rundef import directory_from

from .api import SlackApi, SlackError
from .text import escape, is_user_id

log = get_logger("podium.slack")

NOT_FOUND = frozenset({"user_not_found", "users_not_found", "no_such_subteam"})
_MISSING = object()


class TTLCache:
    """A small thread-safe cache whose entries expire."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        """The cached value, or ``_MISSING`` when absent or expired."""
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] <= self.clock():
                return _MISSING
            return hit[1]

    def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (self.clock() + (self.ttl if ttl is None else ttl), value)


class SlackPeople:
    """Slack users and user groups through the Web API, with a cache that expires."""

    def __init__(
        self,
        api: SlackApi,
        ttl: float = 300.0,
        failure_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.cache = TTLCache(ttl, clock)
        self.failure_ttl = failure_ttl

    def _lookup(self, key: str, fetch: Callable[[], Any]) -> Any:
        cached = self.cache.get(key)
        if cached is not _MISSING:
            return cached
        try:
            value = fetch()
        except SlackError as exc:
            missing = exc.error in NOT_FOUND
            if not missing:
                log.warning("slack_lookup_failed", lookup=key.split(":", 1)[0], error=exc.error)
            self.cache.put(key, None, None if missing else self.failure_ttl)
            return None
        except RetryLater as exc:
            log.warning("slack_lookup_rate_limited", lookup=key.split(":", 1)[0])
            self.cache.put(key, None, max(exc.seconds, 1.0))
            return None
        self.cache.put(key, value)
        return value

    def email_of(self, user_id: str) -> str | None:
        """The user's email (None without the ``users:read.email`` scope)."""

        def fetch() -> str | None:
            profile = self.api.user(user_id).get("profile") or {}
            email = profile.get("email")
            return str(email).lower() if email else None

        result: str | None = self._lookup(f"email:{user_id}", fetch)
        return result

    def id_for_email(self, email: str) -> str | None:
        def fetch() -> str | None:
            found = self.api.user_by_email(email).get("id")
            return str(found) if found else None

        result: str | None = self._lookup(f"user:{email.lower()}", fetch)
        return result

    def group_id(self, handle: str) -> str | None:
        """The ``S…`` id of a user group, by its handle (``sre`` or ``@sre``)."""
        handle = handle.lstrip("@").lower()

        def fetch() -> dict[str, str]:
            return {
                str(g.get("handle", "")).lower(): str(g["id"])
                for g in self.api.usergroups()
                if g.get("id")
            }

        groups: dict[str, str] | None = self._lookup("groups:", fetch)
        return (groups or {}).get(handle)

    def group_members(self, group: str) -> set[str]:
        """User ids in a user group given by handle or ``S…`` id (empty if unknown)."""
        name = group.lstrip("@")
        group_id = name if name.startswith("S") and name.isupper() else self.group_id(name)
        if group_id is None:
            return set()
        gid = group_id

        def fetch() -> frozenset[str]:
            return frozenset(self.api.usergroup_members(gid))

        members: frozenset[str] | None = self._lookup(f"members:{gid}", fetch)
        return set(members or ())

    def mention(self, entry: str) -> str:
        """An approver entry as Slack shows it: a user or user-group mention when known."""
        if entry.startswith("@"):
            gid = self.group_id(entry)
            return f"<!subteam^{gid}>" if gid else escape(entry)
        if is_user_id(entry):
            return f"<@{entry}>"
        if "@" in entry:
            uid = self.id_for_email(entry)
            return f"<@{uid}>" if uid else escape(entry)
        return escape(entry)


class SlackDirectory:
    """The core's Directory: Slack's view of people, over a static directory."""

    def __init__(self, people: SlackPeople, static: Directory | None = None) -> None:
        self.people = people
        self.static: Directory = static or StaticDirectory()

    def identities(self, user: str) -> set[str]:
        ids = set(self.static.identities(user))
        if is_user_id(user):
            email = self.people.email_of(user)
            if email:
                ids |= {email} | self.static.identities(email)
        elif "@" in user and not user.startswith("@"):
            uid = self.people.id_for_email(user)
            if uid:
                ids |= {uid} | self.static.identities(uid)
        return ids

    def members(self, group: str) -> set[str]:
        return set(self.static.members(group)) | self.people.group_members(group)


def directory_factory(people: SlackPeople) -> Callable[[Any], Directory]:
    """``run -> Directory``: Slack first, the run's own ``podium.yaml`` directory as fallback."""

    def for_run(run: Any) -> Directory:
        return SlackDirectory(people, StaticDirectory(directory_from(run.definition)))

    return for_run


__all__ = ["SlackDirectory", "SlackPeople", "TTLCache", "directory_factory"]
