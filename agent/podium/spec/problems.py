"""What is wrong with a workflow file, as ``file:line: message``: schema errors, unknown
or missing task kinds, bad needs and dependency cycles."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from podium.kinds import registry
from podium.spec.yamlio import LineMap


@dataclass(frozen=True, order=True)
class Problem:
    """One validation problem, printed as ``file:line: message``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def show(value: object, limit: int = 60) -> str:
    """``repr`` of user data for a message, cut short (and never raising)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    if not isinstance(word, str) or len(word) > 100:
        return ""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def _schema_nodes(nodes: list[Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``nodes`` with ``$ref`` resolved and ``anyOf``/``oneOf``/``allOf`` flattened."""
    out: list[Mapping[str, Any]] = []
    todo = list(nodes)
    seen: set[int] = set()
    while todo:
        node = todo.pop()
        if not isinstance(node, Mapping) or id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            todo.append(root.get("$defs", {}).get(ref.removeprefix("#/$defs/")))
        for key in ("anyOf", "oneOf", "allOf"):
            todo += node.get(key, [])
    return out


def known_keys(schema: Mapping[str, Any], path: Iterable[str | int]) -> set[str]:
    """The keys a mapping at ``path`` of a document may have, per its JSON Schema."""
    nodes: list[Any] = [schema]
    for part in path:
        following: list[Any] = []
        for node in _schema_nodes(nodes, schema):
            if isinstance(part, int):
                following.append(node.get("items"))
            elif part in node.get("properties", {}):
                following.append(node["properties"][part])
            elif isinstance(node.get("additionalProperties"), Mapping):
                following.append(node["additionalProperties"])
        nodes = following
    keys: set[str] = set()
    for node in _schema_nodes(nodes, schema):
        keys.update(node.get("properties", {}))
    return keys


def _fmt_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], str | None]:
    """Follow ``loc`` through ``data``; skip union tags. Returns (path, missing key)."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
        elif i == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
            return tuple(path), part
    return tuple(path), None


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


_EXPECTED = {
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
}


# text that would have been of the expected type, had it not been quoted
_QUOTED = {
    "bool_type": re.compile(r"true|false|True|False|TRUE|FALSE"),
    "int_type": re.compile(r"[-+]?[0-9]+"),
    "float_type": re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"),
}
_NEVER = re.compile(r"(?!)")


def _given(value: object) -> str:
    """What a value is, in the file's terms."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, int | float):
        return f"the number {show(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _type_message(err: Mapping[str, Any]) -> str | None:
    """``expected a whole number, got the text '4'`` for a strict type error."""
    expected = _EXPECTED.get(str(err["type"]))
    if expected is None:
        return None
    value = err.get("input")
    hint = ""
    if isinstance(value, str) and _QUOTED.get(str(err["type"]), _NEVER).fullmatch(value):
        hint = " (write it without quotes)"
    return f"expected {expected}, got {_given(value)}{hint}"


def _is_kind_error(loc: tuple[str | int, ...], msg: str) -> bool:
    """The task model's own "zero or several kinds" error (not e.g. a bad ``rollback``)."""
    on_task = len(loc) == 2 and loc[0] == "tasks" and isinstance(loc[1], int)
    return on_task and ("has no task kind" in msg or "task kinds" in msg)


def pydantic_problems(
    file: str,
    data: Any,
    lines: LineMap,
    exc: ValidationError,
    schema: Callable[[], Mapping[str, Any]] | None = None,
    check: Callable[[], None] | None = None,
    skip: Collection[tuple[str | int, ...]] = (),
) -> list[Problem]:
    """One problem per place of a validation error.

    ``schema`` gives the JSON Schema of the document, used to suggest the key meant
    for an unknown one; ``check`` (a deadline) is called as the errors are gone through;
    errors at a path in ``skip`` (values already reported while parsing) are left out.
    """
    problems: list[Problem] = []
    # one problem per place: a union's alternatives fail at the same path (reported once),
    # but every missing key is a problem of its own
    seen: set[tuple[int, tuple[str | int, ...], str | None]] = set()
    for count, err in enumerate(exc.errors(include_url=False)):
        if check is not None and count % 256 == 0:
            check()
        loc = tuple(err["loc"])
        path, missing = _data_path(data, loc)
        if path in skip and missing is None:
            continue
        line = lines.line(path)
        key = (line, path, missing)
        if key in seen and err["type"] != "extra_forbidden":
            continue
        seen.add(key)
        if _is_kind_error(loc, err["msg"]):
            continue  # reported by kind_problems on the raw data
        where = _fmt_path(path)
        if err["type"] == "extra_forbidden" and path:
            message = f"unknown key {show(path[-1])}" + (
                f" in {_fmt_path(path[:-1])}" if len(path) > 1 else ""
            )
            if schema is not None:
                message += did_you_mean(path[-1], known_keys(schema(), path[:-1]))
        elif err["type"] == "missing" and missing is not None:
            message = f"missing required key {missing!r}" + (f" in {where}" if where else "")
        else:
            text = _type_message(err) or _clean(err["msg"])
            message = f"{where}: {text}" if where else text
        problems.append(Problem(file, line, message))
    return problems


def kind_problems(file: str, data: Any, lines: LineMap) -> list[Problem]:
    """Zero or several task kinds on one task (checked on raw data so it is always reported)."""
    problems: list[Problem] = []
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list):
        return problems
    kinds = registry()
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        found = [k for k in task if k in kinds]
        name = show(task.get("id", f"#{index + 1}"))
        if not found:
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index)),
                    f"task {name} has no task kind: set exactly one of {', '.join(kinds)}",
                )
            )
        elif len(found) > 1:
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index, found[1])),
                    f"task {name} sets {len(found)} task kinds ({', '.join(found)}):"
                    " set exactly one",
                )
            )
    return problems


_ACTIVE, _DONE = 1, 2


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """One dependency cycle as a list of ids (first repeated at the end), or None.

    A depth-first search with an explicit stack: no recursion, whatever the depth.
    """
    color: dict[str, int] = {}
    for root in graph:
        if root in color:
            continue
        color[root] = _ACTIVE
        path = [root]
        pending = [iter(graph[root])]
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                color[path.pop()] = _DONE
                pending.pop()
            elif dep in graph:
                state = color.get(dep)
                if state == _ACTIVE:
                    return [*path[path.index(dep) :], dep]
                if state is None:
                    color[dep] = _ACTIVE
                    path.append(dep)
                    pending.append(iter(graph[dep]))
    return None


_MAX_SUGGESTIONS = 50
"""Unknown needs that get a did-you-mean hint (each one compares with every task id)."""


def graph_problems(
    file: str, data: Any, lines: LineMap, check: Callable[[], None] | None = None
) -> list[Problem]:
    """Duplicate ids, unknown or self needs, cycles (on raw data, so always reported)."""
    problems: list[Problem] = []
    suggested = 0
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list):
        return problems
    ids: dict[str, int] = {}
    needs_of: list[tuple[int, str, list[Any]]] = []
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            continue
        tid = task["id"]
        if tid in ids:
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index, "id")),
                    f"duplicate task id {show(tid)} (first at tasks[{ids[tid]}])",
                )
            )
            continue
        ids[tid] = index
        needs = task.get("needs", [])
        needs_of.append((index, tid, needs if isinstance(needs, list) else []))
    graph: dict[str, list[str]] = {}
    for index, tid, needs in needs_of:
        if check is not None and index % 256 == 0:
            check()
        graph[tid] = []
        for pos, need in enumerate(needs):
            if not isinstance(need, str):
                continue
            where = lines.line(("tasks", index, "needs", pos))
            if need == tid:
                problems.append(Problem(file, where, f"task {show(tid)} needs itself"))
            elif need not in ids:
                hint = did_you_mean(need, ids) if suggested < _MAX_SUGGESTIONS else ""
                suggested += 1
                problems.append(
                    Problem(file, where, f"task {show(tid)} needs unknown task {show(need)}{hint}")
                )
            else:
                graph[tid].append(need)
    cycle = find_cycle(graph)
    if cycle:
        problems.append(
            Problem(
                file,
                lines.line(("tasks", ids[cycle[0]], "needs")),
                f"dependency cycle: {' -> '.join(cycle)}",
            )
        )
    return problems


__all__ = [
    "Problem",
    "did_you_mean",
    "find_cycle",
    "graph_problems",
    "kind_problems",
    "known_keys",
    "pydantic_problems",
    "show",
]
