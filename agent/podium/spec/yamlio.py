"""Safe YAML reading with line numbers, YAML 1.2 booleans and an alias-bomb guard.

Only plain data comes out (mappings, sequences, scalars). Every key and sequence
item gets its 1-based line in a :class:`LineMap` so that validation errors can
point at ``file:line``. ``on``/``off``/``yes``/``no`` stay strings (YAML 1.2), so a
key like ``on:`` means what it says; so do dates such as ``2024-02-30`` (YAML 1.2
has no implicit timestamps). A value its tag cannot build (``!!int abc``,
``!!bool maybe``, an integer of more than 4300 digits) is a problem on its line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from podium.spec.deadline import LoadTimeout

MAX_NODES = 100_000
"""Upper bound of nodes after alias expansion; a billion-laughs file is refused."""

Path = tuple[str | int, ...]


_FAST_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(yaml.SafeLoader):
    """The pure-Python SafeLoader with YAML 1.2 booleans (only true/false).

    Used to describe a syntax error: its messages are the clearer ones. Being slower,
    it calls ``check`` (a deadline) for every node it composes.
    """

    check: Callable[[], None] | None = None

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check is not None:
            self.check()
        return super().compose_node(parent, index)


class _FastLoader(_FAST_BASE):  # type: ignore[valid-type,misc]
    """The same resolution on libyaml's parser (when installed): for valid files.

    Tag resolution runs in Python for every scalar; its answers are cached, since
    workflow files repeat the same keys and values over and over.
    """

    _resolved: dict[tuple[Any, ...], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        key = (kind, value, implicit) if isinstance(value, str) else None
        if key is not None:
            found = self._resolved.get(key)
            if found is not None:
                return found
        tag: str = super().resolve(kind, value, implicit)
        if key is not None:
            if len(self._resolved) > 50_000:
                self._resolved.clear()
            self._resolved[key] = tag
        return tag


_YAML_1_1_ONLY = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
_RESOLVERS = {
    key: [(tag, rx) for tag, rx in resolvers if tag not in _YAML_1_1_ONLY]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _cls in (_Loader, _FastLoader):
    _cls.yaml_implicit_resolvers = {k: list(v) for k, v in _RESOLVERS.items()}
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )


@dataclass
class YamlProblem:
    line: int
    message: str


@dataclass
class LineMap:
    """Path (keys and indexes) → 1-based line of that key or item."""

    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int:
        """Line of the longest known prefix of ``path`` (1 when nothing matches)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return 1


@dataclass
class Parsed:
    data: Any
    lines: LineMap
    problems: list[YamlProblem]
    invalid: set[Path] = field(default_factory=set)
    """Paths of values their tag could not build (kept as their text, already a problem)."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], stack: set[int]) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    if key in stack:  # recursive alias: refuse
        return MAX_NODES + 1
    stack.add(key)
    size = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo, stack) + _expanded_size(v, memo, stack)
            if size > MAX_NODES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo, stack)
            if size > MAX_NODES:
                break
    stack.discard(key)
    memo[key] = size
    return size


def _bomb_line(node: yaml.Node, memo: dict[int, int]) -> int:
    """Line of the innermost entry that alone expands past :data:`MAX_NODES`.

    Descends from ``node`` into the first child over the limit (a mapping entry is
    pointed at by its key), so the problem names the offending key, not line 1.
    """
    line = node.start_mark.line + 1
    visited: set[int] = set()
    while id(node) not in visited:
        visited.add(id(node))
        children: list[tuple[int, yaml.Node]] = []
        if isinstance(node, yaml.MappingNode):
            children = [(k.start_mark.line + 1, v) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = [(item.start_mark.line + 1, item) for item in node.value]
        over = [(ln, child) for ln, child in children if memo.get(id(child), 0) > MAX_NODES]
        if not over:
            break
        line, node = over[0]
    return line


_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_INT_TAG = "tag:yaml.org,2002:int"
MAX_INT_BITS = 14_284
"""Integers are refused above 4300 decimal digits (Python's own limit for int <-> str)."""
_CHECK_EVERY = 256


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


class _Builder:
    """One pass over the node tree: plain data, the line map and key problems together.

    Much cheaper than PyYAML's generic constructor for the common case; a document
    with merge keys (``<<``) is built by PyYAML instead (``needs_fallback``).
    """

    def __init__(
        self,
        loader: yaml.SafeLoader,
        lines: LineMap,
        problems: list[YamlProblem],
        check: Callable[[], None] | None = None,
    ):
        self.loader = loader
        self.lines = lines
        self.problems = problems
        self.needs_fallback = False
        self.check = check
        self.count = 0
        self.invalid: set[Path] = set()

    def _construct(self, node: yaml.Node, path: Path) -> Any:
        """PyYAML's constructor for one tagged node; a value it cannot build is a problem."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError:
            raise  # e.g. a python tag: refused for the whole document
        except Exception as exc:
            line = node.start_mark.line + 1
            tag = str(node.tag).rsplit(":", 1)[-1]
            raw = node.value if isinstance(node.value, str) else None
            if tag == "int" and raw is not None and "limit" in str(exc):
                message = "integer longer than 4300 digits"
            elif raw is not None:
                message = f"invalid !!{tag} value {_preview(raw)}"
            else:
                message = f"invalid !!{tag} value ({type(exc).__name__})"
            self.problems.append(YamlProblem(line, message))
            self.invalid.add(path)
            return raw
        if node.tag == _INT_TAG and isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            self.problems.append(
                YamlProblem(node.start_mark.line + 1, "integer longer than 4300 digits")
            )
            self.invalid.add(path)
            return node.value
        return value

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.check is not None and self.count % _CHECK_EVERY == 0:
            self.check()
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:
                return node.value
            return self._construct(node, path)
        if node.tag not in (_SEQ_TAG, _MAP_TAG):  # sets, omaps, unknown or python tags
            self.lines.lines.setdefault(path, node.start_mark.line + 1)
            return self._construct(node, path)
        if isinstance(node, yaml.SequenceNode):
            out: list[Any] = []
            for index, item in enumerate(node.value):
                self.lines.lines[(*path, index)] = item.start_mark.line + 1
                out.append(self.build(item, (*path, index)))
            return out
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        return self._construct(node, path)  # pragma: no cover

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[object, int] = {}
        for k, v in node.value:
            line = k.start_mark.line + 1
            if not isinstance(k, yaml.ScalarNode):
                self.problems.append(YamlProblem(line, "mapping keys must be plain"))
                continue
            if k.value == "<<" and k.tag == "tag:yaml.org,2002:merge":
                self.needs_fallback = True
                continue
            key = self.build(k, path)
            name = k.value
            if name in seen:
                self.problems.append(
                    YamlProblem(line, f"duplicate key {name!r} (first on line {seen[name]})")
                )
                continue
            seen[name] = line
            self.lines.lines[(*path, name)] = line
            try:
                result[key] = self.build(v, (*path, name))
            except TypeError:  # an unhashable key (e.g. a list) from a tag
                self.problems.append(YamlProblem(line, "mapping keys must be plain"))
        return result


def _error_line(text: str, exc: yaml.MarkedYAMLError) -> int:
    """1-based line of a syntax error, never past the last line of the file.

    An error found at the end of the stream (an unclosed ``[``, a missing quote) is
    reported where the unfinished construct began, if known, else on the last line.
    """
    last = max(1, len(text.splitlines()))
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    if line > last:
        context = exc.context_mark
        line = context.line + 1 if context is not None and context.line < last else last
    return line


def parse_yaml(text: str, check: Callable[[], None] | None = None) -> Parsed:
    """Parse one YAML document with line information; never raises for bad input.

    The fast (libyaml) parser goes first; a file it refuses is parsed again by the
    pure-Python one, whose error messages and positions are the ones reported.
    ``check`` (a deadline) is called as the work goes; what it raises passes through.
    """
    if _FastLoader is not _Loader:
        parsed = _parse(text, _FastLoader, check)
        if not parsed.problems or parsed.data is not None:
            return parsed
    return _parse(text, _Loader, check)


def _parse(
    text: str, loader_class: type[yaml.SafeLoader], check: Callable[[], None] | None
) -> Parsed:
    loader: yaml.SafeLoader | None = None
    try:
        loader = loader_class(text)
        if isinstance(loader, _Loader):
            loader.check = check
        node = loader.get_single_node()
        if node is None:
            return Parsed(None, LineMap(), [])
        if check is not None:
            check()
        memo: dict[int, int] = {}
        if "*" in text and _expanded_size(node, memo, set()) > MAX_NODES:
            return Parsed(
                None,
                LineMap(),
                [
                    YamlProblem(
                        _bomb_line(node, memo),
                        f"YAML aliases expand to more than {MAX_NODES} nodes: refused",
                    )
                ],
            )
        lines = LineMap({(): node.start_mark.line + 1})
        problems: list[YamlProblem] = []
        builder = _Builder(loader, lines, problems, check)
        data = builder.build(node, ())
        if builder.needs_fallback:
            try:
                data = loader.construct_document(node)
            except yaml.MarkedYAMLError:
                raise
            except Exception as exc:  # a bad tagged value, reported above when found
                if not problems:
                    problems.append(YamlProblem(1, f"YAML error: {_one_line(exc)}"))
                return Parsed(None, lines, problems)
        return Parsed(data, lines, problems, builder.invalid)
    except yaml.MarkedYAMLError as exc:
        what = exc.problem or exc.context or "invalid YAML"
        return Parsed(
            None, LineMap(), [YamlProblem(_error_line(text, exc), f"YAML syntax error: {what}")]
        )
    except yaml.reader.ReaderError as exc:
        # a control character or the like; str(exc) spans two lines, so build one
        line = text[: max(exc.position, 0)].count("\n") + 1
        what = (
            f"unacceptable character #x{exc.character:04x}"
            if isinstance(exc.character, int)
            else "unreadable text"
        )
        return Parsed(None, LineMap(), [YamlProblem(line, f"YAML error: {what}")])
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        return Parsed(None, LineMap(), [YamlProblem(1, f"YAML error: {message}")])
    except RecursionError:
        return Parsed(None, LineMap(), [YamlProblem(1, "YAML nesting is too deep")])
    except LoadTimeout:
        raise
    except Exception as exc:  # defence in depth: whatever PyYAML raises is a problem
        return Parsed(None, LineMap(), [YamlProblem(1, f"YAML error: {_one_line(exc)}")])
    finally:
        if loader is not None:
            loader.dispose()


def _one_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


__all__ = ["MAX_NODES", "LineMap", "Parsed", "YamlProblem", "parse_yaml"]
