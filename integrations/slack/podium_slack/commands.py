"""The ``/podium`` slash command.

Read-only subcommands answer the caller alone (ephemeral); subcommands that change
something answer in the channel, so everybody sees who did what. ``sync`` and
``retry`` are for operators (``operators:`` in ``podium.yaml``); ``approve`` and
``reject`` are for the task's approvers, checked by the core's Decisions exactly as
for a button click. A malformed command gets the usage text, never a stack trace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import structlog
from slack_bolt import Ack, App

from podium.directory import is_allowed
from podium.errors import PodiumError
from podium.log import get_logger

from .deps import Deps
from .text import clip, code_block, duration, emoji, escape, inline, label, person, short, when

log = get_logger("podium.slack")

COMMAND = "/podium"
OPERATOR_COMMANDS = frozenset({"sync", "retry"})
MAX_RUNS = 10

USAGE = f"""*Podium* — GitOps task orchestrator
{inline("/podium status [WORKFLOW]")} — workflows: ready, last run, outstanding tasks
{inline("/podium plan [WORKFLOW]")} — what a reconcile would run now
{inline("/podium runs [WORKFLOW]")} — the last {MAX_RUNS} runs
{inline("/podium sync")} — reconcile now (operators)
{inline("/podium retry RUN")} — retry a failed run (operators)
{inline("/podium approve RUN TASK")} — approve a waiting task (its approvers)
{inline("/podium reject RUN TASK REASON…")} — reject it, with a reason (its approvers)
{inline("/podium help")} — this help"""


class UsageError(ValueError):
    """The command text does not parse; the message says how to write it."""


@dataclass(frozen=True)
class Parsed:
    name: str
    workflow: str | None = None
    run_id: int | None = None
    task: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    public: bool = False


def _run_number(value: str, name: str) -> int:
    if not re.fullmatch(r"#?\d{1,12}", value):
        raise UsageError(f"{inline(name)} needs a run number, not {inline(value)}")
    return int(value.lstrip("#"))


def parse(text: str) -> Parsed:
    """Parse the text after ``/podium``; raise :class:`UsageError` when malformed."""
    words = text.split()
    if not words:
        return Parsed("help")
    name, args = words[0].lower(), words[1:]
    if name in ("help", "-h", "--help", "?"):
        return Parsed("help")
    if name in ("status", "plan", "runs"):
        if len(args) > 1:
            raise UsageError(f"{inline(name)} takes at most one workflow name")
        return Parsed(name, workflow=args[0] if args else None)
    if name == "sync":
        if args:
            raise UsageError(f"{inline('sync')} takes no arguments")
        return Parsed(name)
    if name == "retry":
        if len(args) != 1:
            raise UsageError(f"usage: {inline('/podium retry RUN')}")
        return Parsed(name, run_id=_run_number(args[0], name))
    if name == "approve":
        if len(args) != 2:
            raise UsageError(f"usage: {inline('/podium approve RUN TASK')}")
        return Parsed(name, run_id=_run_number(args[0], name), task=args[1])
    if name == "reject":
        parts = text.strip().split(None, 3)
        if len(parts) < 4 or not parts[3].strip():
            raise UsageError(
                f"usage: {inline('/podium reject RUN TASK REASON…')} (a reason is required)"
            )
        return Parsed(
            name, run_id=_run_number(parts[1], name), task=parts[2], reason=parts[3].strip()
        )
    raise UsageError(f"unknown command {inline(clip(name, 40))}")


def usage(problem: str | None = None) -> str:
    return f":warning: {problem}\n\n{USAGE}" if problem else USAGE


_READY = {
    "Ready": ":white_check_mark:",
    "Reconciling": ":hourglass_flowing_sand:",
    "Stalled": ":warning:",
}


def status_text(rows: list[dict[str, Any]], workflow: str | None) -> str:
    if workflow is not None:
        rows = [r for r in rows if r.get("workflow") == workflow]
        if not rows:
            return f"No workflow named {inline(workflow)}."
    if not rows:
        return "No workflows known yet: the agent has not reconciled."
    lines = []
    for r in rows:
        icon = (
            ":raised_hand:"
            if r.get("reason") in ("WaitingApproval", "WaitingDecision")
            else _READY.get(str(r.get("ready")), ":white_circle:")
        )
        name = escape(str(r.get("workflow") or "(invalid file)"))
        line = f"{icon} *{name}* {r.get('ready')} ({r.get('reason')})"
        if r.get("applied_revision"):
            line += f" · applied {inline(short(r['applied_revision']))}"
        last = r.get("last_run")
        if last:
            line += f" · last run {last['id']} {label(str(last['status']))}"
        if r.get("outstanding"):
            line += f" · {r['outstanding']} outstanding"
        errors = r.get("validation_errors") or []
        if errors:
            line += f" · {len(errors)} validation error(s)\n" + code_block("\n".join(errors), 10)
        lines.append(line)
    return clip("\n".join(lines), 3000)


def runs_text(runs: list[Any], workflow: str | None) -> str:
    if not runs:
        return f"No runs of {inline(workflow)} yet." if workflow else "No runs yet."
    lines = []
    for r in runs:
        took = duration(r.duration)
        line = (
            f"{emoji(str(r.status))} run {r.id} · *{escape(r.workflow)}* ·"
            f" {inline(short(r.revision))} · {label(str(r.status))}"
        )
        if took:
            line += f" in {took}"
        line += f" · {when(r.started_at or r.created_at)}"
        lines.append(line)
    return clip("\n".join(lines), 3000)


class Commands:
    """``/podium`` and its subcommands."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.ctx = deps.ctx

    def register(self, app: App) -> None:
        app.command(COMMAND)(self.on_command)

    def on_command(self, ack: Ack, command: dict[str, Any], respond: Any) -> None:
        text = str(command.get("text") or "")
        user = str(command.get("user_id") or "")
        try:
            parsed = parse(text)
        except UsageError as exc:
            ack(response_type="ephemeral", text=usage(str(exc)))
            return
        if parsed.name == "help":
            ack(response_type="ephemeral", text=usage())
            return
        ack()
        with structlog.contextvars.bound_contextvars(command=parsed.name, actor=user):
            reply = self.run(parsed, user)
            try:
                respond(
                    text=reply.text,
                    response_type="in_channel" if reply.public else "ephemeral",
                    replace_original=False,
                )
            except Exception as exc:  # an expired response_url must not crash the listener
                log.warning("slack_respond_failed", error=type(exc).__name__)

    def run(self, parsed: Parsed, user: str) -> Reply:
        """Execute a parsed command for ``user``; every failure becomes a short reply."""
        try:
            if parsed.name in OPERATOR_COMMANDS:
                refusal = self._operator_refusal(user, parsed.name)
                if refusal is not None:
                    return Reply(f":no_entry: {refusal}")
            handler = getattr(self, f"_{parsed.name}")
            result: Reply = handler(parsed, user)
            return result
        except PodiumError as exc:  # refusals, unknown runs and tasks
            return Reply(f":no_entry: {escape(str(exc))}")
        except Exception:
            log.exception("slack_command_failed")
            return Reply("Podium could not do that; the agent's log has the details.")

    # -- access -------------------------------------------------------------------

    def _operator_refusal(self, user: str, name: str) -> str | None:
        config = self.ctx.repo_config()
        operators = [str(o) for o in (getattr(config, "operators", None) or [])]
        if not operators:
            reason = (
                "no operators are configured: list Slack user ids, emails or @groups"
                " under `operators:` in podium.yaml"
            )
        elif is_allowed(user, operators, self.deps.repo_directory()):
            return None
        else:
            reason = f"only operators may {name} (operators: {', '.join(operators)})"
        self.ctx.store.emit(
            "command_refused",
            actor=user,
            data={"command": name, "reason": reason, "via": "slack"},
        )
        log.warning("slack_command_refused", reason=reason)
        return escape(reason)

    # -- subcommands ----------------------------------------------------------------

    def _status(self, parsed: Parsed, _user: str) -> Reply:
        return Reply(status_text(self.ctx.status_rows(), parsed.workflow))

    def _plan(self, parsed: Parsed, _user: str) -> Reply:
        text = self.ctx.plan_text(parsed.workflow)
        return Reply(code_block(text, lines=60, chars=2800))

    def _runs(self, parsed: Parsed, _user: str) -> Reply:
        runs = self.ctx.store.list_runs(parsed.workflow, MAX_RUNS)
        return Reply(runs_text(runs, parsed.workflow))

    def _sync(self, _parsed: Parsed, user: str) -> Reply:
        self.ctx.request_reconcile("slack")
        return Reply(f":arrows_counterclockwise: {person(user)} asked for a sync.", public=True)

    def _retry(self, parsed: Parsed, user: str) -> Reply:
        assert parsed.run_id is not None
        result = self.ctx.decisions.retry(parsed.run_id, by=user, via="slack")
        return Reply(f":repeat: {person(user)}: {escape(result.message)}", public=True)

    def _approve(self, parsed: Parsed, user: str) -> Reply:
        return self._decide(parsed, user, approve=True)

    def _reject(self, parsed: Parsed, user: str) -> Reply:
        return self._decide(parsed, user, approve=False)

    def _decide(self, parsed: Parsed, user: str, approve: bool) -> Reply:
        assert parsed.run_id is not None and parsed.task is not None
        result = self.ctx.decisions.decide(
            parsed.run_id, parsed.task, user, approve, parsed.reason, via="slack"
        )
        if result.approval is not None:
            try:
                self.deps.publisher.refresh_approval(result.approval.id)
                self.deps.publisher.refresh_parent(parsed.run_id)
            except Exception as exc:  # the decision stands; the message catches up later
                log.warning("slack_update_failed", error=str(exc))
        what = inline(parsed.task)
        if approve:
            text = f":white_check_mark: {person(user)} approved {what} in run {parsed.run_id}."
        else:
            text = (
                f":no_entry: {person(user)} rejected {what} in run {parsed.run_id}:"
                f" {escape(parsed.reason or '')}"
            )
        return Reply(text, public=True)


__all__ = ["COMMAND", "OPERATOR_COMMANDS", "USAGE", "Commands", "Parsed", "Reply", "parse"]
