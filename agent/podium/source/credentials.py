"""Credentials of a repository URL, handed to git through its environment, never its argv.

A URL such as ``https://user:TOKEN@host/repo.git`` would show the token in the process
list (``/proc/PID/cmdline``) of every ``git fetch``, in the ``git-remote-https`` helper
it starts, and in the cache's ``FETCH_HEAD``. Instead git is given the URL without its
user-info, and the credentials travel in environment variables of that git process:

- a user name *and* password: a credential helper set through ``GIT_CONFIG_COUNT``/
  ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` (configuration from the environment, not
  ``-c``) prints them from ``PODIUM_GIT_USERNAME``/``PODIUM_GIT_PASSWORD``. The helper
  list is reset first, so the user's own helpers neither answer for this URL nor store
  its token.
- a user name only (``https://TOKEN@host/...``): ``credential.username`` is set the same
  way and the user's own helpers are kept (they may know the password); the same helper,
  added after them, answers with an empty password otherwise, so that git never runs
  ``GIT_ASKPASS`` with a prompt that names the URL's user in its argv.

Only ``http``/``https`` URLs are rewritten: the user of an ``ssh://git@host`` URL is an
account name that ssh needs in its argv, not a secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from podium.errors import SourceError

USERNAME_VAR = "PODIUM_GIT_USERNAME"
PASSWORD_VAR = "PODIUM_GIT_PASSWORD"  # noqa: S105 the name of a variable, not its value
_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf "username=%s\\npassword=%s\\n" "${USERNAME_VAR}" "${PASSWORD_VAR}"; }}; f'
)
_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class RemoteAccess:
    """What a network git command gets: a URL free of credentials, and the environment
    that carries them (empty when the URL has none)."""

    url: str
    env: dict[str, str] = field(default_factory=dict)


def remote_access(url: str) -> RemoteAccess:
    """Split the credentials off an ``http(s)`` URL; other locations pass unchanged.

    :class:`SourceError` if a credential holds a line break or a NUL (percent-encoded),
    which git's credential protocol cannot carry.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES or "@" not in parts.netloc:
        return RemoteAccess(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    user, password = unquote(user), unquote(password)
    if any(char in user + password for char in "\n\r\0"):
        raise SourceError("the credentials in the repository URL contain a line break")
    bare = urlunsplit(parts._replace(netloc=host))
    secrets = {USERNAME_VAR: user, PASSWORD_VAR: password}
    if colon:
        config = [("credential.helper", ""), ("credential.helper", _HELPER)]
    elif user:
        config = [("credential.username", user), ("credential.helper", _HELPER)]
    else:
        return RemoteAccess(bare)
    return RemoteAccess(bare, _config_env(config) | secrets)


def _config_env(entries: list[tuple[str, str]]) -> dict[str, str]:
    """Git configuration given through the environment, after any the user already gives."""
    try:
        start = max(0, int(os.environ.get("GIT_CONFIG_COUNT", "0") or "0"))
    except ValueError:
        start = 0
    env = {"GIT_CONFIG_COUNT": str(start + len(entries))}
    for offset, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{start + offset}"] = key
        env[f"GIT_CONFIG_VALUE_{start + offset}"] = value
    return env


__all__ = ["PASSWORD_VAR", "USERNAME_VAR", "RemoteAccess", "remote_access"]
