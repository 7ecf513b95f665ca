"""A run's frozen definition: the workflow as it was at the run's revision.

Stored with the run so that a run resumes exactly as it started, whatever Git
says by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.fingerprint import TaskFingerprint
from podium.gates import Gate
from podium.spec.loader import WorkflowDef
from podium.spec.models import DirectorySpec, workflow_model


def definition_of(
    wf: WorkflowDef,
    fps: Mapping[str, TaskFingerprint],
    directory: DirectorySpec | None = None,
    operators: list[str] | None = None,
    gates: Mapping[str, Gate] | None = None,
) -> dict[str, Any]:
    """The run's frozen definition; ``gates``: the approval rules bound to its tasks."""
    return {
        "file": wf.file,
        "revision": wf.revision,
        "spec": wf.spec.model_dump(mode="json", by_alias=True),
        "inputs": {k: dict(v) for k, v in wf.inputs.items()},
        "task_lines": dict(wf.task_lines),
        "fingerprints": {k: v.fingerprint for k, v in fps.items()},
        "directory": (directory or DirectorySpec()).model_dump(mode="json"),
        "operators": list(operators or []),
        **({} if gates is None else {"gates": {t: g.to_json() for t, g in gates.items()}}),
    }


def workflow_from(definition: Mapping[str, Any]) -> WorkflowDef:
    spec = workflow_model().model_validate(definition["spec"])
    return WorkflowDef(
        spec=spec,
        file=definition["file"],
        revision=definition["revision"],
        task_lines=definition.get("task_lines", {}),
        inputs=definition.get("inputs", {}),
    )


def directory_from(definition: Mapping[str, Any]) -> DirectorySpec:
    return DirectorySpec.model_validate(definition.get("directory") or {})


__all__ = ["definition_of", "directory_from", "workflow_from"]
