"""Repository-relative globs for ``inputs:`` (``*``, ``?``, ``[..]`` and ``**``).

``*`` matches within one path segment, ``**/`` any number of whole segments, ``**``
elsewhere anything (``/`` included), ``?`` one character of a segment, ``[..]`` and
``[!..]`` one character of a set. A pattern naming a directory matches everything
below it.

Matching never backtracks: a pattern is compiled to a small automaton (one state per
glob token) that is run as a lazily built DFA, so the time to match a path grows
linearly with its length whatever the pattern (``*a*a*a*a*c`` included).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# token kinds
_LIT = 0  # one given character
_ONE = 1  # ``?``: one character but ``/``
_SET = 2  # ``[..]``: one character of a set
_STAR = 3  # ``*``: any run of characters but ``/``
_ANY = 4  # ``**`` not followed by ``/``: any run of characters but a line break
_SEGS = 5  # ``**/``: any number of non-empty segments, each with its ``/``

_LOOPS = (_STAR, _ANY, _SEGS)
_MAX_DFA_STATES = 4096
"""Above this many states the DFA's cache starts over (matching stays linear)."""


@dataclass(frozen=True)
class _Token:
    kind: int
    char: str = ""
    charset: Callable[[str], object] | None = None


def _charset(body: str, pattern: str) -> Callable[[str], object]:
    """A one-character test for the body of ``[..]`` (``!`` negates, as ``^`` does)."""
    if body.startswith("!"):
        body = "^" + body[1:]
    if body in ("", "^"):
        raise ValueError(f"invalid glob {pattern!r}: empty character set")
    body = body.replace("\\", "\\\\")
    try:
        with warnings.catch_warnings():  # e.g. "possible nested set" for ``[[a]``
            warnings.simplefilter("ignore")
            rx = re.compile(f"[{body}]")
    except re.error as exc:
        raise ValueError(f"invalid glob {pattern!r}: {exc.msg}") from None
    return rx.fullmatch


def _tokens(pattern: str) -> list[_Token]:
    out: list[_Token] = []
    pat = pattern.strip("/")
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append(_Token(_SEGS))
            i += 3
        elif pat.startswith("**", i):
            out.append(_Token(_ANY))
            i += 2
        elif pat[i] == "*":
            out.append(_Token(_STAR))
            i += 1
        elif pat[i] == "?":
            out.append(_Token(_ONE))
            i += 1
        elif pat[i] == "[" and (end := pat.find("]", i + 1)) != -1:
            out.append(_Token(_SET, charset=_charset(pat[i + 1 : end], pattern)))
            i = end + 1
        else:
            out.append(_Token(_LIT, pat[i]))
            i += 1
    return out


class Glob:
    """One compiled glob: :meth:`matches` tells whether a repository path matches it.

    NFA states: ``2*i`` is "before token i", ``2*i + 1`` "inside a segment of the
    ``**/`` at token i"; ``2*n`` is "pattern done" and ``2*n + 1`` "below a matched
    directory". A DFA state is a closed set of NFA states, built on first use.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._tokens = _tokens(pattern)
        n = len(self._tokens)
        self._done = 2 * n
        self._below = 2 * n + 1
        prefix: list[str] = []
        for token in self._tokens:
            if token.kind != _LIT:
                break
            prefix.append(token.char)
        self.prefix = "".join(prefix)
        """Every matching path starts with this literal text."""
        self.required = _literal_runs(self._tokens[len(prefix) :])
        """Literal text every matching path contains (a quick test before the DFA)."""
        self._ids: dict[frozenset[int], int] = {}
        self._sets: list[frozenset[int]] = []
        self._accepting: list[bool] = []
        self._moves: list[dict[str, int]] = []
        self._start = self._state(self._closure({0}))

    def _closure(self, states: set[int]) -> frozenset[int]:
        todo = list(states)
        seen = set(states)
        while todo:
            s = todo.pop()
            if s % 2 == 0 and s < self._done and self._tokens[s // 2].kind in _LOOPS:
                nxt = s + 2  # a loop may match nothing
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def _state(self, states: frozenset[int]) -> int:
        found = self._ids.get(states)
        if found is None:
            found = self._ids[states] = len(self._sets)
            self._sets.append(states)
            self._accepting.append(self._done in states or self._below in states)
            self._moves.append({})
        return found

    def _step(self, states: frozenset[int], ch: str) -> set[int]:
        out: set[int] = set()
        for s in states:
            if s == self._below:
                if ch != "\n":
                    out.add(s)
                continue
            if s == self._done:
                if ch == "/":
                    out.add(self._below)
                continue
            if s % 2:  # inside a segment of ``**/``
                out.add(s - 1 if ch == "/" else s)
                continue
            token = self._tokens[s // 2]
            kind = token.kind
            if kind == _LIT:
                if ch == token.char:
                    out.add(s + 2)
            elif kind == _ONE:
                if ch != "/":
                    out.add(s + 2)
            elif kind == _SET:
                assert token.charset is not None
                if token.charset(ch):
                    out.add(s + 2)
            elif kind == _STAR:
                if ch != "/":
                    out.add(s)
            elif kind == _ANY:
                if ch != "\n":
                    out.add(s)
            elif ch != "/":  # _SEGS: a segment starts
                out.add(s + 1)
        return out

    def matches(self, path: str) -> bool:
        """Whether ``path`` (normalized, relative) matches the glob."""
        if not path.startswith(self.prefix):
            return False
        for text in self.required:
            if text not in path:
                return False
        if len(self._sets) > _MAX_DFA_STATES:
            self._ids.clear()
            self._sets.clear()
            self._accepting.clear()
            self._moves.clear()
            self._start = self._state(self._closure({0}))
        state = self._start
        moves = self._moves
        for ch in path:
            nxt = moves[state].get(ch)
            if nxt is None:
                nxt = self._state(self._closure(self._step(self._sets[state], ch)))
                moves[state][ch] = nxt
            if not self._sets[nxt]:
                return False
            state = nxt
        return self._accepting[state]


def _literal_runs(tokens: list[_Token]) -> tuple[str, ...]:
    """Runs of two or more literal characters, longest first."""
    runs: list[str] = []
    current: list[str] = []
    for token in [*tokens, _Token(_STAR)]:
        if token.kind == _LIT:
            current.append(token.char)
            continue
        if len(current) > 1:
            runs.append("".join(current))
        current = []
    return tuple(sorted(set(runs), key=len, reverse=True))


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> Glob:
    """The compiled glob; ``ValueError`` for a pattern that is not one (e.g. ``[z-a]``)."""
    return Glob(pattern)


def normalize(path: str) -> str:
    """``./a//b/`` → ``a/b``."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


_MAGIC = frozenset("*?[")
_CHECK_EVERY = 512


def match(
    pattern: str,
    files: list[str],
    file_set: frozenset[str] | None = None,
    check: Callable[[], None] | None = None,
) -> list[str]:
    """Files (sorted, as given) that the glob matches; ``ValueError`` for an invalid glob.

    With ``file_set`` (the same files as a set), a plain path naming one file is a lookup.
    ``check`` is called every few hundred files (a deadline may raise from it).
    """
    norm = normalize(pattern)
    if file_set is not None and norm in file_set and not _MAGIC.intersection(norm):
        return [norm]
    glob = compile_glob(norm)
    prefix = glob.prefix
    out: list[str] = []
    for index, path in enumerate(files):
        if check is not None and index % _CHECK_EVERY == 0:
            check()
        if path.startswith(prefix) and glob.matches(path):
            out.append(path)
    return out


__all__ = ["Glob", "compile_glob", "match", "normalize"]
