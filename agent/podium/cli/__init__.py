"""The ``podium`` command line."""

from __future__ import annotations

import signal
import sys

import click

from podium.cli.agent_cmd import agent
from podium.cli.app import cli
from podium.cli.decide import DECISION_COMMANDS
from podium.cli.validate import schema, validate

cli.add_command(agent)
cli.add_command(validate)
cli.add_command(schema)
for command in DECISION_COMMANDS:
    cli.add_command(command)


def main() -> None:
    """Entry point: user mistakes become one line and a non-zero exit, never a traceback."""
    from podium.errors import PodiumError

    # a parent that ignored SIGCHLD passes that on: the kernel would then reap task
    # processes itself, and their exit codes would be lost
    if hasattr(signal, "SIGCHLD") and signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        cli.main(standalone_mode=False, prog_name="podium")
    except click.exceptions.Abort:
        click.echo("podium: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"podium: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except PodiumError as exc:
        message = str(exc).strip() or type(exc).__name__
        click.echo(f"podium: error: {message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["cli", "main"]
