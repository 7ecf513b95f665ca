"""Where a run's tasks execute: its private checkout of the revision, and each task's
environment."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from podium import secrets
from podium.engine_core import PASS_ENV, EngineCore
from podium.errors import PodiumError, SourceError
from podium.log import get_logger
from podium.runctx import RunContext
from podium.spec.models import SecretRef, TaskBase

log = get_logger("podium.engine")


class Checkouts(EngineCore):
    """The engine's checkouts: made on a run's first start, removed when it ends."""

    def _prepare(self, ctx: RunContext) -> Path:
        if ctx.checkout is not None:
            return ctx.checkout
        if self.source is None:
            raise SourceError("no source to check the run's revision out from")
        dest = self._checkout_dir(ctx.run.id)
        if dest.exists():
            self.source.remove_checkout(dest)
        ctx.checkout = self.source.checkout(ctx.run.revision, dest)
        ctx.env_base = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        ctx.env_base.update(
            {
                "PODIUM_RUN_ID": str(ctx.run.id),
                "PODIUM_WORKFLOW": ctx.name,
                "PODIUM_REVISION": ctx.run.revision,
                "PODIUM_CHECKOUT": str(ctx.checkout),
                "PODIUM_DATA_DIR": str(self.config.data_dir),
            }
        )
        ctx.env_base.update(ctx.wf.spec.params)
        return ctx.checkout

    def _task_env(self, ctx: RunContext, spec: TaskBase) -> dict[str, str]:
        env = dict(ctx.env_base)
        for key, value in spec.env.items():
            if isinstance(value, SecretRef):
                env[key] = secrets.resolve(value.secret, self.config.secrets_dir)
            else:
                env[key] = value
        env["PODIUM_TASK"] = spec.id
        return env

    def _checkout_dir(self, run_id: int) -> Path:
        return self.config.data_dir / "checkouts" / f"run-{run_id}"

    def _remove_checkout(self, run_id: int) -> None:
        """Delete a finished run's checkout, whichever process made it."""
        dest = self._checkout_dir(run_id)
        if self.source is None or self.config.keep_checkouts or not dest.exists():
            return
        with contextlib.suppress(PodiumError, OSError):
            self.source.remove_checkout(dest)

    def _sweep_checkouts(self) -> None:
        """Remove checkouts of runs that are no longer active (finished elsewhere: superseded,
        or by an agent that died before it cleaned up)."""
        root = self.config.data_dir / "checkouts"
        if not root.is_dir():
            return
        active = {run_id for run_id, _workflow, _status in self.store.active_run_heads()}
        for entry in root.iterdir():
            number = entry.name.removeprefix("run-")
            if number.isdigit() and int(number) not in active:
                self._remove_checkout(int(number))


__all__ = ["Checkouts"]
