"""``podium validate`` and ``podium schema``: checking workflow files without a state store."""

from __future__ import annotations

import sys

import click

from podium.cli.app import CONTEXT, emit_json


@click.command(context_settings=CONTEXT)
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Problems as JSON.")
def validate(directory: str, as_json: bool) -> None:
    """Validate podium.yaml and every workflow file under DIRECTORY (exit 1 on problems)."""
    from pathlib import Path

    from podium.errors import ConfigError
    from podium.source.directory import DirectorySource
    from podium.spec.loader import load_snapshot

    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"{directory}: no such directory")
    source = DirectorySource(root)
    state = load_snapshot(source.snapshot(source.fetch().revision or ""))
    if as_json:
        emit_json(
            {
                "valid": not state.problems,
                "workflows": sorted(state.workflows),
                "problems": [
                    {"file": p.file, "line": p.line, "message": p.message} for p in state.problems
                ],
            }
        )
    else:
        for problem in state.problems:
            click.echo(str(problem))
        if state.problems:
            click.echo(f"{len(state.problems)} problem(s) found", err=True)
        else:
            click.echo(f"{len(state.workflows)} workflow(s) valid")
    sys.exit(1 if state.problems else 0)


@click.command(context_settings=CONTEXT)
@click.option("--config", "which", flag_value="config", help="Schema of podium.yaml instead.")
@click.option("--workflow", "which", flag_value="workflow", default=True, hidden=True)
def schema(which: str) -> None:
    """Print the JSON Schema of workflow files (for editors)."""
    from podium.spec.schema import config_schema, workflow_schema

    emit_json(config_schema() if which == "config" else workflow_schema())


__all__ = ["schema", "validate"]
