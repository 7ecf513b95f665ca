"""The approval rules that gate a commit: those of the last revision applied before it.

Each run created keeps its workflow's rules in the store (they gate the next commit once
it is applied); rules missing there (a state made before they were kept) are read from
the workflow as Git has it at that revision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from podium.errors import PodiumError
from podium.gates import Rules
from podium.log import get_logger
from podium.source.base import Source
from podium.spec.loader import WorkflowDef, load_config, load_snapshot, load_workflow
from podium.store import Store

log = get_logger("podium.reconcile")


def _rules_key(workflow: str, revision: str) -> str:
    return f"rules:{workflow}:{revision}"


class RuleBook:
    """Approval rules by (workflow, revision), kept in the store and in memory."""

    def __init__(self, store: Store, source: Source) -> None:
        self.store = store
        self.source = source
        self._rules: dict[tuple[str, str], Rules | None] = {}

    def applied_rules(
        self, name: str, wf: WorkflowDef, applied: Mapping[str, Mapping[str, Any]]
    ) -> Rules | None:
        """The approval rules of the last revision applied before ``wf``'s own (they gate
        ``wf``); None when none was, or its definition cannot be read. Kept in the store
        when a run is created, so they are read from Git only when missing there."""
        earlier = [row for row in applied.values() if row["revision"] != wf.revision]
        if not earlier:
            return None
        revision = str(max(earlier, key=lambda row: float(row["applied_at"]))["revision"])
        key = (name, revision)
        if key not in self._rules:
            kept = self.store.get(_rules_key(name, revision))
            if kept is not None:
                self._rules[key] = Rules.from_json(json.loads(kept))
            else:
                old = self._definition_at(name, wf.file, revision)
                self._rules[key] = None if old is None else Rules.of(old)
        return self._rules[key]

    def keep(self, wf: WorkflowDef, applied: Mapping[str, Mapping[str, Any]]) -> None:
        """Store ``wf``'s rules (they gate the next commit once it is applied); drop those
        of revisions nothing applied refers to any more."""
        self.store.put(_rules_key(wf.name, wf.revision), json.dumps(Rules.of(wf).to_json()))
        keep = {str(row["revision"]) for row in applied.values()} | {wf.revision}
        self.store.drop_marks(_rules_key(wf.name, ""), keep={_rules_key(wf.name, r) for r in keep})

    def _definition_at(self, name: str, file: str, revision: str) -> WorkflowDef | None:
        try:
            snap = self.source.snapshot(revision)
            config, _ = load_config(snap)
            old, _ = load_workflow(snap, file, config)
            if old is None or old.name != name:  # moved since: look for it by name
                old = load_snapshot(snap).workflows.get(name)
        except (PodiumError, OSError) as exc:
            log.warning("gate_rules_unreadable", workflow=name, revision=revision, error=str(exc))
            return None
        return old


__all__ = ["RuleBook"]
