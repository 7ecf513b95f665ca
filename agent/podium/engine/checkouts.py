"""Where a run's tasks execute: its private checkout of the revision, and each task's
environment (secrets by name: the executor resolves them)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from podium.engine.context import RunContext
from podium.errors import PodiumError, SourceError
from podium.source.base import Source
from podium.spec.models import SecretRef, TaskBase

PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL")
"""The agent's environment variables a task sees (nothing else of it)."""


class Checkouts:
    """Checkouts made on a run's first start and removed when it ends. Its own state: the
    checkout and base environment of each run it prepared."""

    def __init__(self, source: Source | None, data_dir: Path, keep: bool = False) -> None:
        self.source = source
        self.data_dir = data_dir
        self.keep = keep
        self._made: dict[int, tuple[Path, dict[str, str], dict[str, str]]] = {}
        """run id → (checkout root, the environment every task of the run starts from,
        the values of Podium's own variables in it)."""

    def prepare(self, ctx: RunContext) -> Path:
        """The run's checkout root, made on first use."""
        made = self._made.get(ctx.run.id)
        if made is not None:
            return made[0]
        if self.source is None:
            raise SourceError("no source to check the run's revision out from")
        dest = self.path(ctx.run.id)
        if dest.exists():
            self.source.remove_checkout(dest)
        root = self.source.checkout(ctx.run.revision, dest)
        env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        env.update(ctx.wf.spec.params)
        own = {
            "PODIUM_RUN_ID": str(ctx.run.id),
            "PODIUM_WORKFLOW": ctx.name,
            "PODIUM_REVISION": ctx.run.revision,
            "PODIUM_CHECKOUT": str(root),
            "PODIUM_DATA_DIR": str(self.data_dir),
        }
        env.update(own)  # a workflow cannot change them: containment finds tasks by them
        self._made[ctx.run.id] = (root, env, own)
        return root

    def task_env(self, ctx: RunContext, spec: TaskBase) -> tuple[dict[str, str], dict[str, str]]:
        """A task's environment without secret values, and its secrets: variable → name.
        Podium's own ``PODIUM_*`` values win over the task's ``env``."""
        _root, base, own = self._made[ctx.run.id]
        env = dict(base)
        secrets: dict[str, str] = {}
        for key, value in spec.env.items():
            if key in own or key == "PODIUM_TASK":
                continue
            if isinstance(value, SecretRef):
                secrets[key] = value.secret
            else:
                env[key] = value
        env["PODIUM_TASK"] = spec.id
        return env, secrets

    def path(self, run_id: int) -> Path:
        return self.data_dir / "checkouts" / f"run-{run_id}"

    def remove(self, run_id: int) -> None:
        """Delete a finished run's checkout, whichever process made it."""
        self._made.pop(run_id, None)
        dest = self.path(run_id)
        if self.source is None or self.keep or not dest.exists():
            return
        with contextlib.suppress(PodiumError, OSError):
            self.source.remove_checkout(dest)

    def sweep(self, active: set[int]) -> None:
        """Remove checkouts of runs that are no longer active (finished elsewhere:
        superseded, or by an agent that died before it cleaned up)."""
        root = self.data_dir / "checkouts"
        if not root.is_dir():
            return
        for entry in root.iterdir():
            number = entry.name.removeprefix("run-")
            if number.isdigit() and int(number) not in active:
                self.remove(int(number))


__all__ = ["PASS_ENV", "Checkouts"]
