"""The ``python`` kind: call ``module:function`` from the checkout in a subprocess.

The function runs in a fresh interpreter (this one's ``sys.executable``) under the
same supervision as shell tasks, so timeouts and cancellation stop it the same
way, and its imports come from the checkout (``PYTHONPATH`` starts with ``cwd``).
The target travels as an argument to a fixed bootstrap, never as code.
"""

from __future__ import annotations

import os
import sys

from podium.runners.base import Outcome, TaskContext
from podium.runners.shell import supervise

BOOTSTRAP = """\
import importlib, sys, traceback

def _podium_main(target):
    module_name, _, function_name = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        result = function()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        return 1
    if result is False:
        return 1
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        return 1
    return 0

sys.argv = sys.argv[1:]
sys.exit(_podium_main(sys.argv[0]))
"""
"""Calls the target with no arguments: None/True/0 (or any other value) exits 0;
False, a non-zero int or an exception (traceback printed) exits 1; ``sys.exit``
passes through."""


class PythonRunner:
    """Runs a ``python:`` task's ``module:function`` in a supervised subprocess."""

    def run(self, config: str, ctx: TaskContext) -> Outcome:
        """Run one attempt of a ``python:`` task."""
        argv = [sys.executable, "-u", "-c", BOOTSTRAP, config]
        return supervise(argv, ctx, env=_python_env(ctx))


def _python_env(ctx: TaskContext) -> dict[str, str]:
    """The task's environment with the checkout first on ``PYTHONPATH``."""
    env = dict(ctx.env)
    existing = env.get("PYTHONPATH")
    checkout = str(ctx.cwd.absolute())
    env["PYTHONPATH"] = f"{checkout}{os.pathsep}{existing}" if existing else checkout
    return env


__all__ = ["BOOTSTRAP", "PythonRunner"]
