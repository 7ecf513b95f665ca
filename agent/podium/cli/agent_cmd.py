"""``podium agent``: run the GitOps agent until stopped."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from podium.cli.app import CONTEXT, settle_gc


@click.command("agent", context_settings=CONTEXT)
@click.option(
    "--repo", default=None, help="Repository URL or local path (required) [env: PODIUM_REPO]."
)
@click.option(
    "--branch",
    default=None,
    help="Branch to track [env: PODIUM_BRANCH; default: the remote's default branch].",
)
@click.option(
    "--path",
    "path",
    default=None,
    help="Sub-path holding podium.yaml and workflows/ [env: PODIUM_PATH; default: the root].",
)
@click.option(
    "--state",
    default=None,
    help="State database file [env: PODIUM_STATE; default: DATA_DIR/state.db].",
)
@click.option(
    "--data-dir",
    default=None,
    help="Clone cache, checkouts, logs [env: PODIUM_DATA_DIR; default: ./.podium].",
)
@click.option(
    "--interval",
    default=None,
    help="Poll interval, e.g. 30s, 5m [env: PODIUM_INTERVAL; default: 30s].",
)
@click.option(
    "--listen",
    default=None,
    help="Serve the HTTP face (health, metrics, webhooks, Slack) on HOST:PORT"
    " [env: PODIUM_LISTEN; default: off].",
)
@click.option(
    "--max-parallel",
    type=int,
    default=None,
    help="Global limit of running tasks [env: PODIUM_MAX_PARALLEL; default: 32].",
)
@click.option(
    "--shutdown-grace",
    default=None,
    help="On SIGTERM, how long running tasks may finish before they are stopped"
    " [env: PODIUM_SHUTDOWN_GRACE; default: 3s].",
)
@click.option(
    "--log-retention-days",
    type=float,
    default=None,
    help="Delete task logs of runs finished longer ago [env: PODIUM_LOG_RETENTION_DAYS;"
    " default: 90].",
)
@click.option(
    "--log-retention-runs",
    type=int,
    default=None,
    help="Keep task logs of only this many newest finished runs"
    " [env: PODIUM_LOG_RETENTION_RUNS; default: no limit].",
)
@click.option(
    "--containment",
    type=click.Choice(["auto", "cgroup2", "proc-marker"]),
    default=None,
    help="How each task attempt's processes are contained [env: PODIUM_CONTAINMENT;"
    " default: auto (cgroup2 where it is cheap and allowed, else proc-marker)].",
)
@click.option(
    "--wait-lease",
    is_flag=True,
    default=None,
    help="Wait for another agent's lease instead of exiting [env: PODIUM_WAIT_LEASE].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="PODIUM_CONFIG",
    show_envvar=True,
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
    from podium.log import ready
    from podium.runners.containment import MODE_VAR

    ready()
    os.environ[MODE_VAR] = settings.containment  # read where attempts are started
    agent = Agent(settings)
    settle_gc()
    ctx.exit(agent.run())
