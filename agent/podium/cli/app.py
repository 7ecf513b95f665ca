"""Commands. Heavy modules are imported inside commands so ``podium --help`` stays fast."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from podium import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _setup_logging(ctx: click.Context) -> None:
    from podium.logs import configure

    obj = ctx.find_root().obj or {}
    configure(obj.get("log_format", "auto"), obj.get("log_level", "info"))


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="podium")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    envvar="PODIUM_LOG_FORMAT",
    show_default=True,
    help="Log lines as JSON or for humans (auto: JSON unless stderr is a terminal).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    envvar="PODIUM_LOG_LEVEL",
    show_default=True,
)
@click.pass_context
def cli(ctx: click.Context, log_format: str, log_level: str) -> None:
    """Podium: GitOps task orchestrator.

    Workflows live as YAML in Git; Podium runs exactly the tasks that are outstanding.
    """
    ctx.obj = {"log_format": log_format, "log_level": log_level}
    _setup_logging(ctx)  # every command logs to stderr, in the chosen format


def store_options(f: Any) -> Any:
    """--data-dir and --state, shared by every command that opens the state store."""
    f = click.option(
        "--data-dir",
        envvar="PODIUM_DATA_DIR",
        default=None,
        help="Where Podium keeps its clone, checkouts, logs and state [default: ./.podium].",
    )(f)
    f = click.option(
        "--state",
        envvar="PODIUM_STATE",
        default=None,
        help="State database file [default: DATA_DIR/state.db].",
    )(f)
    return f


def source_options(f: Any) -> Any:
    f = store_options(f)
    f = click.option(
        "--path",
        "subpath",
        envvar="PODIUM_PATH",
        default="",
        show_default=False,
        help="Sub-path of the repository that holds podium.yaml and workflows/.",
    )(f)
    f = click.option(
        "--branch",
        envvar="PODIUM_BRANCH",
        default=None,
        help="Branch to track [default: the remote's default branch].",
    )(f)
    f = click.option(
        "--repo",
        envvar="PODIUM_REPO",
        required=True,
        help="Repository URL or local path.",
    )(f)
    return f


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


# -- plan / reconcile -------------------------------------------------------------


@cli.command()
@source_options
@click.option("--revision", default=None, help="Plan this branch, tag or commit instead.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Shorthand for --format json.")
@click.pass_context
def plan(
    ctx: click.Context,
    repo: str,
    branch: str | None,
    subpath: str,
    state: str | None,
    data_dir: str | None,
    revision: str | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Show what a reconcile would run. Exit 0: nothing outstanding, 2: something, 1: error."""
    from podium.cli.render import plan_json, plan_markdown, plan_text
    from podium.cli.workspace import open_workspace

    _setup_logging(ctx)
    ws = open_workspace(repo, branch, subpath, state, data_dir)
    try:
        # a plan only looks: no outage events, but say when it plans a cached revision
        fetched = ws.source.fetch()
        if fetched.error is not None and fetched.revision is not None:
            click.echo(
                f"podium: warning: fetching {ws.source.display} failed ({fetched.error});"
                " planning the revisions already fetched",
                err=True,
            )
        if revision is not None:
            rev = ws.source.resolve(revision)
        elif fetched.revision is None:
            from podium.errors import SourceError

            raise SourceError(fetched.error or "source has no revision")
        else:
            rev = fetched.revision
        _loaded, the_plan = ws.reconciler.plan(rev)
        fmt = "json" if as_json else fmt
        render = {"text": plan_text, "json": plan_json, "markdown": plan_markdown}[fmt]
        click.echo(render(the_plan, ws.source.display))
        code = 1 if the_plan.problems else (2 if the_plan.has_changes else 0)
    finally:
        ws.close()
    sys.exit(code)


@cli.command()
@source_options
@click.option(
    "--wait-lease", is_flag=True, help="Wait for another agent's lease instead of exiting."
)
@click.option(
    "--max-parallel",
    default=32,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Global limit of tasks running at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Summary as JSON.")
@click.pass_context
def reconcile(
    ctx: click.Context,
    repo: str,
    branch: str | None,
    subpath: str,
    state: str | None,
    data_dir: str | None,
    wait_lease: bool,
    max_parallel: int,
    as_json: bool,
) -> None:
    """One pass: fetch, plan, run what is outstanding; exit 1 if a run failed."""
    from podium.cli.runs_view import run_summary_rows, summary_table
    from podium.cli.signals import graceful
    from podium.cli.workspace import open_workspace
    from podium.notify.base import drain
    from podium.notify.console import ConsoleNotifier

    _setup_logging(ctx)
    ws = open_workspace(repo, branch, subpath, state, data_dir, max_parallel=max_parallel)
    notifiers = {"console": ConsoleNotifier()}
    try:
        ws.acquire(wait=wait_lease)
        before = {r.id for r in ws.store.active_runs()}
        from podium.cli.live import live_progress

        tty = sys.stderr.isatty() and not as_json
        with graceful(ws.engine.stop), live_progress(ws.store, tty):
            result = ws.reconciler.reconcile_once(drive=True)
        drain(ws.store, notifiers)
        if result.revision is None:
            from podium.errors import SourceError

            raise SourceError(result.fetch_error or "source has no revision")
        ids = sorted(before | set(result.started))
        runs = [ws.store.get_run(i) for i in ids]
        failed = [r for r in runs if r.is_failure]
        if as_json:
            emit_json(
                {
                    "revision": result.revision,
                    "fetch_error": result.fetch_error,
                    "runs": run_summary_rows(ws.store, runs),
                    "problems": [str(p) for p in (result.plan.problems if result.plan else ())],
                }
            )
        else:
            if result.plan is not None:
                for p in result.plan.problems:
                    click.echo(str(p), err=True)
            if runs:
                summary_table(ws.store, runs)
            else:
                click.echo(f"Nothing outstanding at {result.revision[:12]}.")
    finally:
        ws.close()
    sys.exit(1 if failed else 0)


# -- inspecting -----------------------------------------------------------------


@cli.command()
@store_options
@click.option("--workflow", "-w", default=None)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
def runs(
    state: str | None, data_dir: str | None, workflow: str | None, limit: int, as_json: bool
) -> None:
    """List recent runs."""
    from podium.cli.runs_view import run_summary_rows, summary_table
    from podium.cli.workspace import open_store

    store = open_store(state, data_dir)
    records = store.list_runs(workflow, limit)
    if as_json:
        emit_json(run_summary_rows(store, records))
    elif not records:
        click.echo("No runs yet.")
    else:
        summary_table(store, records)


@cli.command()
@store_options
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(state: str | None, data_dir: str | None, run_id: int, as_json: bool) -> None:
    """Show one run: tasks, attempts, approvals and events."""
    from podium.cli.runs_view import run_detail, show_run
    from podium.cli.workspace import open_store

    store = open_store(state, data_dir)
    if as_json:
        emit_json(run_detail(store, run_id))
    else:
        show_run(store, run_id)


@cli.command()
@store_options
@click.argument("run_id", type=int)
@click.argument("task")
@click.option("--attempt", type=int, default=None, help="Attempt number [default: the last].")
@click.option("--rollback", is_flag=True, help="Logs of the rollback action instead.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing while the attempt runs.")
@click.option("--json", "as_json", is_flag=True)
def logs(
    state: str | None,
    data_dir: str | None,
    run_id: int,
    task: str,
    attempt: int | None,
    rollback: bool,
    follow: bool,
    as_json: bool,
) -> None:
    """Print a task attempt's output."""
    from podium.cli.runs_view import print_logs
    from podium.cli.workspace import open_store

    store = open_store(state, data_dir)
    print_logs(store, run_id, task, attempt, "rollback" if rollback else "run", follow, as_json)


@cli.command()
@store_options
@click.option("--json", "as_json", is_flag=True)
def status(state: str | None, data_dir: str | None, as_json: bool) -> None:
    """Per workflow: applied revision, last run, outstanding tasks, validation errors."""
    from podium.cli.runs_view import print_status, status_rows
    from podium.cli.workspace import open_store

    store = open_store(state, data_dir)
    rows = status_rows(store)
    if as_json:
        emit_json(rows)
    else:
        print_status(rows)
