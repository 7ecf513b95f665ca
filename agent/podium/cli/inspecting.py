"""``podium runs``, ``show``, ``logs`` and ``status``: they read the state, never create it."""

from __future__ import annotations

import sys

import click

from podium.cli.app import CONTEXT, EXIT_ERROR, EXIT_OK, emit_json, json_option, store_options


@click.command(context_settings=CONTEXT)
@store_options
@click.option("--workflow", "-w", default=None, help="Only this workflow's runs [default: all].")
@click.option(
    "--limit", default=20, type=click.IntRange(1, 10000), help="How many runs, newest first."
)
@json_option("The runs")
def runs(
    state: str | None, data_dir: str | None, workflow: str | None, limit: int, as_json: bool
) -> None:
    """List recent runs."""
    from podium.cli.runs_view import run_summary_rows, summary_table
    from podium.cli.workspace import open_store
    from podium.errors import NotFoundError

    store = open_store(state, data_dir, create=False, write=False)
    if (
        workflow is not None
        and workflow not in store.workflow_rows()
        and not store.last_run(workflow)
    ):
        raise NotFoundError(f"no workflow named {workflow!r}")
    records = store.list_runs(workflow, limit)
    if as_json:
        emit_json(run_summary_rows(store, records))
    elif not records:
        click.echo("No runs yet.")
    else:
        summary_table(store, records)


@click.command(context_settings=CONTEXT)
@store_options
@click.argument("run_id", type=int)
@json_option("The run")
def show(state: str | None, data_dir: str | None, run_id: int, as_json: bool) -> None:
    """Show one run: its tasks in the order they ran, their attempts, approvals and events."""
    from podium.cli.runs_view import run_detail, show_run
    from podium.cli.workspace import open_store

    store = open_store(state, data_dir, create=False, write=False)
    if as_json:
        emit_json(run_detail(store, run_id))
    else:
        show_run(store, run_id)


@click.command(context_settings=CONTEXT)
@store_options
@click.argument("run_id", type=int)
@click.argument("task")
@click.option("--attempt", type=int, default=None, help="Attempt number [default: the last].")
@click.option("--rollback", is_flag=True, help="Logs of the rollback action instead.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing while the attempt runs.")
@json_option("The log and its attempt")
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

    store = open_store(state, data_dir, create=False, write=False)
    print_logs(store, run_id, task, attempt, "rollback" if rollback else "run", follow, as_json)


@click.command(context_settings=CONTEXT)
@store_options
@json_option("The status rows")
def status(state: str | None, data_dir: str | None, as_json: bool) -> None:
    """Per workflow: condition, last applied revision, last run, outstanding tasks, errors.

    Exit 0: no workflow is Stalled; 1: at least one is (a failed task blocks it, a task
    waits for a decision, a file is invalid, an internal error), or an error.
    """
    from podium.cli.runs_view import print_status, status_rows
    from podium.cli.workspace import open_store

    store = open_store(state, data_dir, create=False, write=False)
    rows = status_rows(store)
    if as_json:
        emit_json(rows)
    else:
        print_status(rows)
    sys.exit(EXIT_ERROR if any(r["ready"] == "Stalled" for r in rows) else EXIT_OK)


INSPECT_COMMANDS = (runs, show, logs, status)

__all__ = ["INSPECT_COMMANDS"]
