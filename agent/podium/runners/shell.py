"""The ``run`` kind, and :func:`supervise`, which every subprocess-based runner shares.

Supervision itself (containment, timeouts, cancellation, leftovers) lives in
:mod:`podium.runners.procloop`; a runner on a worker thread drives a loop of its own
for its one attempt.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from podium.log import get_logger
from podium.runners.base import Outcome, OutcomeStatus, TaskContext
from podium.runners.procloop import ProcessLoop

log = get_logger(__name__)

SHELL = "/bin/sh"


# Text with any of these needs a shell; so do words the shell treats itself.
_SHELL_SYNTAX = frozenset("$`\\\"'|&;<>()[]{}*?~#=%!\n\t")
# Words the shell handles itself (keywords, special and behaviour-changing builtins):
# text starting with one of them always goes to the shell. ``true``/``false`` are not here:
# the programs do exactly what the builtins do.
_SHELL_WORDS = frozenset(
    {
        ".",
        ":",
        "[",
        "alias",
        "bg",
        "break",
        "case",
        "cd",
        "command",
        "continue",
        "do",
        "done",
        "echo",
        "elif",
        "else",
        "esac",
        "eval",
        "exec",
        "exit",
        "export",
        "fc",
        "fg",
        "fi",
        "for",
        "function",
        "getopts",
        "hash",
        "if",
        "in",
        "jobs",
        "kill",
        "local",
        "printf",
        "pwd",
        "read",
        "readonly",
        "return",
        "select",
        "set",
        "shift",
        "source",
        "test",
        "then",
        "time",
        "times",
        "trap",
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
    }
)


@lru_cache(maxsize=1024)
def _which(word: str, path: str, cwd: str) -> str | None:
    """The executable a command word names, if the kernel can exec it as it is (a binary
    or a script with ``#!``; a script without one is the shell's to run)."""
    if "/" in word:
        full = os.path.join(cwd, word)
        found = full if os.path.isfile(full) and os.access(full, os.X_OK) else None
    else:
        found = shutil.which(word, path=path)
    if found is None:
        return None
    try:
        with open(found, "rb") as program:
            magic = program.read(4)
    except OSError:
        return None
    return found if magic == b"\x7fELF" or magic.startswith(b"#!") else None


def command_argv(command: str, env: Mapping[str, str], cwd: Path) -> list[str]:
    """How to run a ``run:`` command: ``/bin/sh -c TEXT``, or, like make, the program itself
    when the text is plain words naming an executable (no quoting, expansion, redirection,
    operators, builtins) — the shell would do exactly that, one process later."""
    return list(_command_argv(command, env.get("PATH", os.defpath), str(cwd)))


@lru_cache(maxsize=4096)
def _command_argv(command: str, path: str, cwd: str) -> tuple[str, ...]:
    words = command.split(" ")
    if (
        not command.strip()
        or _SHELL_SYNTAX.intersection(command)
        or words[0] in _SHELL_WORDS
        or "" in words
    ):
        return (SHELL, "-c", command)
    program = _which(words[0], path, cwd)
    if program is None:
        return (SHELL, "-c", command)  # the shell's own "not found" message and exit 127
    return (program, *words[1:])


class ShellRunner:
    """Runs the task's shell text with ``/bin/sh -c``; parameters arrive only as env."""

    def run(self, config: str, ctx: TaskContext) -> Outcome:
        """Run one attempt of a ``run:`` task."""
        return supervise(command_argv(config, ctx.env, ctx.cwd), ctx)


def supervise(
    argv: Sequence[str], ctx: TaskContext, env: Mapping[str, str] | None = None
) -> Outcome:
    """Run ``argv`` as a contained attempt under ``ctx``'s limits and report the outcome."""
    started = time.monotonic()
    if env is not None:
        ctx = replace(ctx, env=dict(env))
    loop = ProcessLoop()
    try:
        try:
            outcome = loop.spawn(0, argv, ctx)
        except OSError as exc:
            reason = f"cannot open log file {ctx.log_path}: {exc.strerror or exc}"
            return Outcome(OutcomeStatus.FAILED, error=reason, duration=_since(started))
        while outcome is None:
            done = loop.poll(None)
            if done:
                outcome = done[0][1]
        return outcome
    except Exception as exc:  # a runner reports, never raises: the child is killed below
        log.exception("runner_internal_error", task=ctx.task_id)
        return Outcome(
            OutcomeStatus.FAILED, error=f"internal error: {exc!r}", duration=_since(started)
        )
    finally:
        loop.close()


def _since(started: float) -> float:
    return time.monotonic() - started


__all__ = ["SHELL", "ShellRunner", "command_argv", "supervise"]
