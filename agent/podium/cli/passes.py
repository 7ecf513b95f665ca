"""``podium plan`` and ``podium reconcile``: looking at, and acting on, a revision."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from podium.cli.app import (
    CONTEXT,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_OUTSTANDING,
    emit_json,
    json_option,
    settle_gc,
    source_options,
)

if TYPE_CHECKING:
    from podium.cli.workspace import Workspace
    from podium.planner import Plan


def _warn(message: str) -> None:
    click.echo(f"podium: warning: {message}", err=True)


def _warn_uncommitted(ws: Workspace) -> None:
    """A local work tree with edits to what is planned: say that Git's commit is what counts."""
    from podium.errors import SourceError

    try:
        changed = ws.source.uncommitted()
    except SourceError:
        return
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        _warn(
            f"the working tree has uncommitted changes to {shown}: Podium reads committed"
            " revisions only, so they are not part of this plan"
        )


def stalled_notes(the_plan: Plan) -> list[str]:
    """Why workflows cannot make progress without someone (blocked, held), one line each."""
    from podium.cli.render import notes

    out = []
    for w in the_plan.workflows:
        if w.active_run is None and (w.blocked_by is not None or w.held_by is not None):
            out += [f"{w.name}: {n}" for n in notes(w) if n.startswith(("blocked", "held"))]
    return out


@click.command(context_settings=CONTEXT)
@source_options
@click.option(
    "--revision",
    default=None,
    help="Plan this branch, tag or commit instead of the tracked branch [default: its head].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    help="Output format (markdown: for a pull-request comment).",
)
@json_option("The plan")
def plan(
    repo: str,
    branch: str | None,
    subpath: str,
    state: str | None,
    data_dir: str | None,
    revision: str | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Show what a reconcile would run.

    Exit 0: nothing outstanding; 2: something is outstanding; 1: invalid workflow files,
    a revision that would be refused, or an error.
    """
    from podium.cli.render import plan_json, plan_markdown, plan_text
    from podium.cli.workspace import open_workspace

    ws = open_workspace(repo, branch, subpath, state, data_dir, run=False)
    try:
        # a plan only looks: no outage events, but say when it plans a cached revision
        fetched = ws.source.fetch()
        if fetched.error is not None and fetched.revision is not None:
            _warn(
                f"fetching {ws.source.display} failed ({fetched.error});"
                " planning the revisions already fetched"
            )
        if revision is not None:
            rev = ws.source.resolve(revision)
        elif fetched.revision is None:
            from podium.errors import SourceError

            raise SourceError(fetched.error or "source has no revision")
        else:
            rev = fetched.revision
        _warn_uncommitted(ws)
        loaded, the_plan = ws.reconciler.plan(rev)
        fmt = "json" if as_json else fmt
        render = {"text": plan_text, "json": plan_json, "markdown": plan_markdown}[fmt]
        click.echo(render(the_plan, ws.source.display))
        refusal = ws.reconciler.empty_refusal(loaded, the_plan)
        if refusal is not None:
            _warn(f"a reconcile would refuse this revision: {refusal}")
        if the_plan.problems or refusal is not None:
            code = EXIT_ERROR
        else:
            code = EXIT_OUTSTANDING if the_plan.has_changes else EXIT_OK
    finally:
        ws.close()
    sys.exit(code)


@click.command(context_settings=CONTEXT)
@source_options
@click.option(
    "--wait-lease", is_flag=True, help="Wait for another agent's lease instead of exiting."
)
@click.option(
    "--max-parallel",
    default=32,
    type=click.IntRange(1, 1024),
    help="Global limit of tasks running at once.",
)
@json_option("The summary")
def reconcile(
    repo: str,
    branch: str | None,
    subpath: str,
    state: str | None,
    data_dir: str | None,
    wait_lease: bool,
    max_parallel: int,
    as_json: bool,
) -> None:
    """One pass: fetch, plan, run what is outstanding, until every run has finished or waits
    for a human.

    Exit 0: done (or waiting for an approval or a decision); 1: a run failed, a workflow is
    stalled (blocked by a failed task, held, invalid, or the revision refused), or an error.
    """
    from podium.cli.live import live_progress
    from podium.cli.runs_view import run_summary_rows, summary_table
    from podium.cli.signals import graceful
    from podium.cli.workspace import open_workspace
    from podium.notify.base import drain
    from podium.notify.console import ConsoleNotifier

    ws = open_workspace(repo, branch, subpath, state, data_dir, max_parallel=max_parallel)
    settle_gc()
    notifiers = {"console": ConsoleNotifier()}
    try:
        ws.acquire(wait=wait_lease)
        before = {run_id for run_id, _workflow, _status in ws.store.active_run_heads()}
        _warn_uncommitted(ws)
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
        problems = [str(p) for p in (result.plan.problems if result.plan else ())]
        stalled = stalled_notes(result.after) if result.after is not None else []
        if ws.reconciler.refusal is not None:
            stalled.append(ws.reconciler.refusal)
        if as_json:
            emit_json(
                {
                    "revision": result.revision,
                    "fetch_error": result.fetch_error,
                    "runs": run_summary_rows(ws.store, runs),
                    "problems": problems,
                    "stalled": stalled,
                }
            )
        else:
            for line in problems:
                click.echo(line, err=True)
            for line in stalled:
                click.echo(f"podium: {line}", err=True)
            if runs:
                summary_table(ws.store, runs)
            elif not stalled:
                click.echo(f"Nothing outstanding at {result.revision[:12]}.")
    finally:
        ws.close()
    sys.exit(EXIT_ERROR if failed or problems or stalled else EXIT_OK)


__all__ = ["plan", "reconcile", "stalled_notes"]
