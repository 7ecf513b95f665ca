"""What is wrong with a workflow file, as ``file:line: message``: schema errors, unknown
or missing task kinds, bad needs and dependency cycles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def _is_kind_error(loc: tuple[str | int, ...], msg: str) -> bool:
    """The task model's own "zero or several kinds" error (not e.g. a bad ``rollback``)."""
    on_task = len(loc) == 2 and loc[0] == "tasks" and isinstance(loc[1], int)
    return on_task and ("has no task kind" in msg or "task kinds" in msg)


def pydantic_problems(file: str, data: Any, lines: LineMap, exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    # one problem per place: a union's alternatives fail at the same path (reported once),
    # but every missing key is a problem of its own
    seen: set[tuple[int, tuple[str | int, ...], str | None]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path, missing = _data_path(data, loc)
        line = lines.line(path)
        key = (line, path, missing)
        if key in seen and err["type"] != "extra_forbidden":
            continue
        seen.add(key)
        if _is_kind_error(loc, err["msg"]):
            continue  # reported by kind_problems on the raw data
        where = _fmt_path(path)
        if err["type"] == "extra_forbidden":
            message = f"unknown key {path[-1]!r}" + (
                f" in {_fmt_path(path[:-1])}" if len(path) > 1 else ""
            )
        elif err["type"] == "missing" and missing is not None:
            message = f"missing required key {missing!r}" + (f" in {where}" if where else "")
        else:
            message = f"{where}: {_clean(err['msg'])}" if where else _clean(err["msg"])
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
        name = task.get("id", f"#{index + 1}")
        if not found:
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index)),
                    f"task {name!r} has no task kind: set exactly one of {', '.join(kinds)}",
                )
            )
        elif len(found) > 1:
            problems.append(
                Problem(
                    file,
                    lines.line(("tasks", index, found[1])),
                    f"task {name!r} sets {len(found)} task kinds ({', '.join(found)}):"
                    " set exactly one",
                )
            )
    return problems


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """One dependency cycle as a list of ids (first repeated at the end), or None."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if color.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in color:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = 2
        return None

    for node in graph:
        if node not in color:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def graph_problems(file: str, data: Any, lines: LineMap) -> list[Problem]:
    """Duplicate ids, unknown or self needs, cycles (on raw data, so always reported)."""
    problems: list[Problem] = []
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
                    f"duplicate task id {tid!r} (first at tasks[{ids[tid]}])",
                )
            )
            continue
        ids[tid] = index
        needs = task.get("needs", [])
        needs_of.append((index, tid, needs if isinstance(needs, list) else []))
    graph: dict[str, list[str]] = {}
    for index, tid, needs in needs_of:
        graph[tid] = []
        for pos, need in enumerate(needs):
            if not isinstance(need, str):
                continue
            where = lines.line(("tasks", index, "needs", pos))
            if need == tid:
                problems.append(Problem(file, where, f"task {tid!r} needs itself"))
            elif need not in ids:
                problems.append(Problem(file, where, f"task {tid!r} needs unknown task {need!r}"))
            else:
                graph[tid].append(need)
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(
            Problem(
                file,
                lines.line(("tasks", ids[cycle[0]], "needs")),
                f"dependency cycle: {' -> '.join(cycle)}",
            )
        )
    return problems


__all__ = ["Problem", "graph_problems", "kind_problems", "pydantic_problems"]
