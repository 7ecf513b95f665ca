"""Task fingerprints: what a task *is*, as one stable hash.

A fingerprint covers the task's normalized spec (kind, kind config, env, the
workflow params it sees, workdir), the content of the files its ``inputs`` match,
and the fingerprints of the tasks it needs. Operational knobs (timeout, retries,
approval, rollback, description) are left out: changing them does not re-run a
task. YAML formatting, comments and key order never matter because the hash is
taken over canonical JSON of validated models.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from podium.spec import globs
from podium.spec.loader import WorkflowDef
from podium.spec.models import SecretRef, TaskBase

VERSION = "podium-fp-1"


@dataclass(frozen=True)
class TaskFingerprint:
    fingerprint: str
    spec_hash: str
    inputs_hash: str
    upstream: tuple[tuple[str, str], ...]


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def _digest(obj: Any) -> str:
    """sha256 of canonical JSON (one shared encoder: building one per call is costly)."""
    return hashlib.sha256(_CANONICAL.encode(obj).encode()).hexdigest()


_NO_INPUTS = _digest([])


def normalized_spec(task: TaskBase, params: Mapping[str, str]) -> dict[str, Any]:
    """The part of a task that defines what it does (secrets by name only)."""
    env = {
        k: ({"secret": v.secret} if isinstance(v, SecretRef) else v) for k, v in task.env.items()
    }
    return {
        "kind": task.kind,
        "config": _jsonable(task.config),
        "env": env,
        "params": dict(params),
        "workdir": globs.normalize(task.workdir) if task.workdir else "",
    }


def topological(tasks: list[TaskBase]) -> list[TaskBase]:
    """Tasks ordered so every task comes after the tasks it needs (stable).

    Depth-first in the tasks' own order, with an explicit stack (no recursion, so a
    chain of any length is fine).
    """
    by_id = {t.id: t for t in tasks}
    done: set[str] = set()
    order: list[TaskBase] = []
    for root in tasks:
        if root.id in done:
            continue
        done.add(root.id)
        stack: list[tuple[TaskBase, Iterator[str]]] = [(root, iter(root.needs))]
        while stack:
            task, needs = stack[-1]
            for need in needs:
                if need in by_id and need not in done:
                    done.add(need)
                    stack.append((by_id[need], iter(by_id[need].needs)))
                    break
            else:
                stack.pop()
                order.append(task)
    return order


def fingerprint_workflow(wf: WorkflowDef) -> dict[str, TaskFingerprint]:
    """Fingerprints of every task of a validated workflow."""
    tasks: list[TaskBase] = list(wf.spec.tasks)
    params = wf.spec.params
    out: dict[str, TaskFingerprint] = {}
    for task in topological(tasks):
        spec_hash = _digest(normalized_spec(task, params))
        inputs = wf.inputs.get(task.id)
        inputs_hash = _digest(sorted(inputs.items())) if inputs else _NO_INPUTS
        upstream = tuple(sorted((n, out[n].fingerprint) for n in set(task.needs)))
        parts = [VERSION, spec_hash, inputs_hash, *(f"{n}={f}" for n, f in upstream)]
        fp = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        out[task.id] = TaskFingerprint(fp, spec_hash, inputs_hash, upstream)
    return out


__all__ = ["VERSION", "TaskFingerprint", "fingerprint_workflow", "normalized_spec", "topological"]
