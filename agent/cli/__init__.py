"""The ``podium`` command line."""

from __future__ import annotations

import sys

import click

from agent.cli.agent_cmd import agent
from agent.cli.app import cli

cli.add_command(agent)


def main() -> None:
    """Entry point: user mistakes become one line and a non-zero exit, never a traceback."""
    from agent.errors import PodiumError

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
