"""Repository-relative globs for ``inputs:`` (``*``, ``?``, ``[..]`` and ``**``)."""

from __future__ import annotations

import re
from functools import cache


@cache
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob where ``*`` stays inside one path segment and ``**/`` spans any.

    Raises ``ValueError`` for a pattern that is not a valid glob (e.g. ``[z-a]``).
    """
    out: list[str] = []
    i = 0
    pat = pattern.strip("/")
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append(r"(?:[^/]+/)*")
            i += 3
        elif pat.startswith("**", i):
            out.append(r".*")
            i += 2
        elif pat[i] == "*":
            out.append(r"[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append(r"[^/]")
            i += 1
        elif pat[i] == "[":
            end = pat.find("]", i + 1)
            if end == -1:
                out.append(re.escape(pat[i]))
                i += 1
            else:
                body = pat[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    # a pattern naming a directory matches everything below it
    try:
        return re.compile("".join(out) + r"(?:/.*)?\Z")
    except re.error as exc:
        raise ValueError(f"invalid glob {pattern!r}: {exc.msg}") from None


def normalize(path: str) -> str:
    """``./a//b/`` → ``a/b``."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


_MAGIC = frozenset("*?[")


def match(pattern: str, files: list[str], file_set: frozenset[str] | None = None) -> list[str]:
    """Files (sorted, as given) that the glob matches; ``ValueError`` for an invalid glob.

    With ``file_set`` (the same files as a set), a plain path naming one file is a lookup.
    """
    norm = normalize(pattern)
    if file_set is not None and norm in file_set and not _MAGIC.intersection(norm):
        return [norm]
    rx = glob_regex(norm)
    return [f for f in files if rx.match(f)]


__all__ = ["glob_regex", "match", "normalize"]
