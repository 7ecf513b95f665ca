"""``podium agent``: run the GitOps agent until stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.command("agent")
@click.option("--repo", default=None, help="Repository URL or local path [env PODIUM_REPO].")
@click.option("--branch", default=None, help="Branch to track [default: the remote's default].")
@click.option("--path", "path", default=None, help="Sub-path holding podium.yaml and workflows/.")
@click.option("--state", default=None, help="State database file [default: DATA_DIR/state.db].")
@click.option("--data-dir", default=None, help="Clone cache, checkouts, logs [default: ./.podium].")
@click.option("--interval", default=None, help="Poll interval, e.g. 30s, 5m [default: 30s].")
@click.option("--listen", default=None, help="Serve the HTTP face on HOST:PORT.")
@click.option("--max-parallel", type=int, default=None, help="Global limit of running tasks.")
@click.option("--shutdown-grace", default=None, help="Grace for running tasks on SIGTERM.")
@click.option("--wait-lease", is_flag=True, default=None, help="Wait for another agent's lease.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="PODIUM_CONFIG",
    default=None,
    help="YAML file of settings (flags and PODIUM_* env win over it).",
)
@click.option("--print-config", is_flag=True, help="Show the effective settings and exit.")
@click.pass_context
def agent(ctx: click.Context, /, config_file: str | None, print_config: bool, **flags: Any) -> None:
    """Run the agent: poll Git, run outstanding tasks, serve approvals and webhooks."""
    from podium.errors import ConfigError
    from podium.logs import configure
    from podium.settings import load_settings

    root = ctx.find_root().obj or {}
    if config_file is not None and not Path(config_file).is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    flags = {k: v for k, v in flags.items() if v is not None}
    settings = load_settings(flags, Path(config_file) if config_file else None)
    if print_config:
        click.echo(json.dumps(settings.masked(), indent=2, default=str))
        return
    fmt = root.get("log_format", "auto")
    level = root.get("log_level", "info")
    configure(
        settings.log_format if fmt == "auto" else fmt,
        settings.log_level if level == "info" else level,
    )
    from podium.daemon import Agent

    ctx.exit(Agent(settings).run())
