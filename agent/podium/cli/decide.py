"""Decisions from the command line: approve, reject, retry, skip, fail (each one checked and
audited by the same Decisions service as chat buttons)."""

from __future__ import annotations

from typing import Any

import click

from podium.cli.app import CONTEXT, store_options


def _decisions(state: str | None, data_dir: str | None) -> Any:
    from podium.cli.workspace import open_store
    from podium.decisions import Decisions

    return Decisions(open_store(state, data_dir, create=False))


@click.command(context_settings=CONTEXT)
@store_options
@click.argument("run_id", type=int)
@click.argument("task")
@click.option("--by", required=True, help="Who approves (user id, email).")
@click.option("--comment", default=None, help="Why, kept with the decision.")
def approve(
    state: str | None, data_dir: str | None, run_id: int, task: str, by: str, comment: str | None
) -> None:
    """Approve a task waiting for approval."""
    click.echo(_decisions(state, data_dir).decide(run_id, task, by, True, comment).message)


@click.command(context_settings=CONTEXT)
@store_options
@click.argument("run_id", type=int)
@click.argument("task")
@click.option("--by", required=True, help="Who rejects (user id, email).")
@click.option("--reason", required=True, help="Why, kept with the decision (required).")
def reject(
    state: str | None, data_dir: str | None, run_id: int, task: str, by: str, reason: str
) -> None:
    """Reject a task waiting for approval (the run fails and rolls back)."""
    click.echo(_decisions(state, data_dir).decide(run_id, task, by, False, reason).message)


@click.command(context_settings=CONTEXT)
@store_options
@click.argument("run_id", type=int)
@click.option("--by", default="cli", help="Who decides, kept in the audit log.")
def retry(state: str | None, data_dir: str | None, run_id: int, by: str) -> None:
    """Retry a failed run, or the interrupted task of a run waiting for a decision."""
    click.echo(_decisions(state, data_dir).retry(run_id, by).message)


@click.command(context_settings=CONTEXT)
@store_options
@click.argument("run_id", type=int)
@click.argument("task")
@click.option("--by", default="cli", help="Who decides, kept in the audit log.")
def skip(state: str | None, data_dir: str | None, run_id: int, task: str, by: str) -> None:
    """Mark an interrupted or waiting task skipped (its dependants may run)."""
    click.echo(_decisions(state, data_dir).skip(run_id, task, by).message)


@click.command(context_settings=CONTEXT)
@store_options
@click.argument("run_id", type=int)
@click.argument("task")
@click.option("--by", default="cli", help="Who decides, kept in the audit log.")
def fail(state: str | None, data_dir: str | None, run_id: int, task: str, by: str) -> None:
    """Mark an interrupted or waiting task failed (the run's on_failure applies)."""
    click.echo(_decisions(state, data_dir).fail(run_id, task, by).message)


DECISION_COMMANDS = (approve, reject, retry, skip, fail)

__all__ = ["DECISION_COMMANDS"]
