"""The ``podium`` group and the options its commands share.

Heavy modules are imported inside commands so ``podium --help`` stays fast. Exit codes
are the same for every command:

====  ==========================================================================
0     success: nothing outstanding, every run succeeded or waits for a human
1     error: a run failed, a workflow is stalled, invalid input, a runtime error
2     ``podium plan`` only: something is outstanding (a reconcile would act)
64    usage error: an unknown flag, a missing or malformed argument
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from podium import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_OUTSTANDING = 2
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130

CONTEXT: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
    "show_default": True,
}
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")

F = TypeVar("F", bound=Callable[..., Any])


def _configure_logging(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """--log-format/--log-level take effect where they are given: before the command name
    or after it (an option given after it wins)."""
    root = ctx.find_root()
    root.ensure_object(dict)
    source = ctx.get_parameter_source(param.name or "")
    given = source not in (None, click.core.ParameterSource.DEFAULT)
    if ctx is root or given or param.name not in root.obj:
        root.obj[param.name] = value
    from podium.logs import configure

    configure(root.obj.get("log_format", "auto"), root.obj.get("log_level", "info"))
    return value


def log_options(f: F) -> F:
    """--log-format and --log-level, accepted by the group and by every command."""
    f = click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS),
        default="info",
        envvar="PODIUM_LOG_LEVEL",
        show_envvar=True,
        expose_value=False,
        is_eager=True,
        callback=_configure_logging,
        help="Least severe log lines shown (on stderr).",
    )(f)
    f = click.option(
        "--log-format",
        type=click.Choice(LOG_FORMATS),
        default="auto",
        envvar="PODIUM_LOG_FORMAT",
        show_envvar=True,
        expose_value=False,
        is_eager=True,
        callback=_configure_logging,
        help="Log lines as JSON or for humans (auto: JSON unless stderr is a terminal).",
    )(f)
    return f


class PodiumGroup(click.Group):
    """Gives every command the logging options, so they work after the command name too."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if "log_level" not in {p.name for p in cmd.params}:
            log_options(cmd)  # click's option decorators also take a built command
        super().add_command(cmd, name)


@click.group(cls=PodiumGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="podium")
@log_options
def cli() -> None:
    """Podium: GitOps task orchestrator.

    Workflows live as YAML in Git; Podium runs exactly the tasks that are outstanding.

    Exit codes (every command): 0 success; 1 error, failed run or stalled workflow;
    2 `plan` found work outstanding; 64 usage error; 130 interrupted.
    """


def _not_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise click.BadParameter("must not be empty", ctx=ctx, param=param)
    return value


def store_options(f: F) -> F:
    """--data-dir and --state, shared by every command that opens the state store."""
    f = click.option(
        "--data-dir",
        envvar="PODIUM_DATA_DIR",
        show_envvar=True,
        default=None,
        callback=_not_empty,
        help="Where Podium keeps its clone, checkouts, logs and state [default: ./.podium].",
    )(f)
    f = click.option(
        "--state",
        envvar="PODIUM_STATE",
        show_envvar=True,
        default=None,
        callback=_not_empty,
        help="State database file [default: DATA_DIR/state.db].",
    )(f)
    return f


def source_options(f: F) -> F:
    """--repo, --branch and --path (and the store options), for commands that read Git."""
    f = store_options(f)
    f = click.option(
        "--path",
        "subpath",
        envvar="PODIUM_PATH",
        show_envvar=True,
        default="",
        show_default=False,
        help="Sub-path of the repository that holds podium.yaml and workflows/"
        " [default: the repository root].",
    )(f)
    f = click.option(
        "--branch",
        envvar="PODIUM_BRANCH",
        show_envvar=True,
        default=None,
        help="Branch to track [default: the remote's default branch].",
    )(f)
    f = click.option(
        "--repo",
        envvar="PODIUM_REPO",
        show_envvar=True,
        required=True,
        callback=_not_empty,
        help="Repository URL or local path (required).",
    )(f)
    return f


def json_option(what: str) -> Callable[[F], F]:
    """``--json``: the command's output as a JSON document."""
    return click.option("--json", "as_json", is_flag=True, help=f"{what} as JSON.")


def settle_gc() -> None:
    """Before a command works for long (reconcile, the agent): what start-up loaded stays
    out of later collections, and the cyclic collector runs again."""
    import gc

    gc.freeze()
    gc.enable()


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


__all__ = [
    "CONTEXT",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_OUTSTANDING",
    "EXIT_USAGE",
    "cli",
    "emit_json",
    "json_option",
    "log_options",
    "settle_gc",
    "source_options",
    "store_options",
]
