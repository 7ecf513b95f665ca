"""The ``podium`` command line."""

from __future__ import annotations

import gc
import signal
import sys

import click

from podium.cli.agent_cmd import agent
from podium.cli.app import CONTEXT, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, cli
from podium.cli.decide import DECISION_COMMANDS
from podium.cli.inspecting import INSPECT_COMMANDS
from podium.cli.passes import plan, reconcile
from podium.cli.validate import schema, validate

for command in (agent, plan, reconcile, validate, schema, *INSPECT_COMMANDS, *DECISION_COMMANDS):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes become one line and a non-zero exit, never a traceback."""
    from podium.errors import PodiumError

    # a command's start-up makes many objects and no garbage: the cyclic collector only
    # rescans them (a tenth of a short command); commands that run long turn it back on
    gc.disable()
    args = sys.argv[1:] if argv is None else argv
    if not args:  # bare `podium`: the help, as git does
        click.echo(cli.get_help(click.Context(cli, info_name="podium", **CONTEXT)))
        sys.exit(EXIT_OK)
    # a parent that ignored SIGCHLD passes that on: the kernel would then reap task
    # processes itself, and their exit codes would be lost
    if hasattr(signal, "SIGCHLD") and signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        cli.main(args, standalone_mode=False, prog_name="podium")
    except click.exceptions.Abort:
        click.echo("podium: aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see: {exc.ctx.command_path if exc.ctx else 'podium'} --help)"
        click.echo(f"podium: usage error: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"podium: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_ERROR if exc.exit_code == 2 else exc.exit_code)
    except PodiumError as exc:
        message = str(exc).strip() or type(exc).__name__
        click.echo(f"podium: error: {message}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


__all__ = ["cli", "main"]
