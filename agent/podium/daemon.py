"""``podium agent``: the long-running GitOps agent.

Threads:
- the **main thread** runs the agent's periodic jobs with the ``schedule`` package
  (poll the source, drain notifications, check cron slots) and never blocks on a task;
- the **coordinator thread** owns every state change: it runs requested reconcile
  passes and drives the engine (tasks themselves run on the engine's worker pool);
- the **HTTP thread** (optional) serves health, readiness, metrics, webhooks and
  integration endpoints with uvicorn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import schedule

from podium.cli.workspace import Workspace, open_workspace
from podium.decisions import Decisions
from podium.errors import PodiumError
from podium.integration import Integration, IntegrationContext, load_integrations
from podium.log import get_logger
from podium.metrics import Metrics
from podium.notify.base import Notifier, drain
from podium.notify.console import ConsoleNotifier
from podium.settings import AgentSettings

log = get_logger("podium.agent")

MAX_FETCH_BACKOFF = 300.0
MAX_COORDINATOR_ERRORS = 8
"""Unexpected coordinator errors in a row (with growing pauses, about two minutes in all)
after which the agent stops with a non-zero exit for its supervisor to restart it."""


class Agent:
    """Wires the workspace, the jobs, the HTTP face and integrations together."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.ws: Workspace = open_workspace(
            settings.repo,
            settings.branch,
            settings.path,
            str(settings.state_path),
            str(settings.data_dir),
            max_parallel=settings.max_parallel,
            must_exist=False,  # an unreachable repository at start is retried, not fatal
        )
        self.ws.engine.config.shutdown_grace = settings.shutdown_grace
        self.store = self.ws.store
        self.metrics = Metrics(self.store, self._outstanding)
        self.ws.engine.hooks.append(self.metrics.engine_hook)
        self.notifiers: dict[str, Notifier] = {"console": ConsoleNotifier()}
        self.decisions = Decisions(self.store, notifiers=("console",), on_change=self._kick_engine)
        self.integrations: list[Integration] = []
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._reconcile_requested = threading.Event()
        self._reasons: set[str] = set()
        self._fetch_wanted = False
        self._exit_code = 0
        self._last_outstanding = 0
        self._fetch_failures = 0
        self._next_fetch_at = 0.0
        self._last_revision: str | None = None
        self._server: Any = None
        self._threads: list[threading.Thread] = []
        self.jobs = schedule.Scheduler()

    # -- wiring -----------------------------------------------------------------

    def _setup_integrations(self) -> None:
        from podium.cli.runs_view import status_rows

        ctx = IntegrationContext(
            store=self.store,
            decisions=self.decisions,
            request_reconcile=self.request_reconcile,
            plan_text=self._plan_text,
            status_rows=lambda: status_rows(self.store),
            repo_config=self._repo_config,
            settings=self.settings,
        )
        self.integrations = load_integrations(ctx)
        names = ["console"]
        for integ in self.integrations:
            self.notifiers.update(integ.notifiers)
            names.extend(integ.notifiers)
            if integ.directory is not None:
                self.decisions._directory = integ.directory
        enabled = tuple(dict.fromkeys(names))
        self.decisions.notifiers = enabled
        self.ws.engine.config.notifiers = enabled
        self.ws.reconciler.notifiers = enabled

    def _plan_text(self, workflow: str | None) -> str:
        from podium.cli.render import plan_text

        fetched = self.ws.reconciler.last_fetch
        if fetched is None or fetched.revision is None:
            return "The source has not been fetched yet."
        _loaded, the_plan = self.ws.reconciler.plan(fetched.revision)
        if workflow:
            wp = the_plan.workflow(workflow)
            if wp is None:
                return f"No workflow named {workflow!r}."
            from podium.planner import Plan

            the_plan = Plan(the_plan.revision, (wp,), (), ())
        return plan_text(the_plan, self.ws.source.display)

    def _repo_config(self) -> Any:
        state = self.ws.reconciler.current
        return state.config if state is not None else None

    def _outstanding(self) -> int:
        return self._last_outstanding

    # -- controls (any thread) ---------------------------------------------------

    def request_reconcile(self, reason: str, *, fetch: bool = True) -> None:
        """Ask the coordinator for a reconcile pass as soon as possible; ``fetch=False``
        re-plans the revision fetched last without asking the remote (a run ended, the
        interval passed with the remote unchanged)."""
        self._reasons.add(reason)
        if fetch:
            self._fetch_wanted = True
        self._reconcile_requested.set()
        self._kick_engine()

    def _kick_engine(self) -> None:
        self._kick.set()
        self.ws.engine.wake()

    def stop(self) -> None:
        if not self._stop.is_set():
            log.info("agent_stopping")
        self._stop.set()
        self.ws.engine.stop()
        self._kick.set()

    def readiness(self) -> dict[str, Any]:
        from podium.runners.containment import describe

        fetched = self.ws.reconciler.last_fetch
        return {
            "source": fetched is not None and fetched.revision is not None,
            "store": self.store.writable(),
            "revision": fetched.revision if fetched else None,
            "source_error": fetched.error if fetched else None,
            "containment": describe(self.ws.data_dir),
        }

    def webhook_credentials(self) -> tuple[str | None, str | None]:
        gh = self.settings.webhook_secret
        gl = self.settings.gitlab_token
        return (
            gh.get_secret_value() if gh else None,
            gl.get_secret_value() if gl else None,
        )

    def tracked_branch(self) -> str | None:
        """The branch webhooks must name: the one asked for, else the remote's default
        (``None`` until known, or for a plain directory)."""
        return self.ws.source.branch

    # -- jobs (main thread) --------------------------------------------------------

    def _poll(self) -> None:
        """Every interval: fetch when the remote moved (or cannot be asked cheaply), else
        re-plan what was fetched last, so outstanding work never waits for a new commit."""
        now = time.monotonic()
        if self._fetch_failures and now < self._next_fetch_at:
            self.request_reconcile("interval", fetch=False)  # backing off the remote
            return
        if self.store.get("replan_requested") == "1":
            self.request_reconcile("decision", fetch=False)
            return
        remote = self.ws.source.remote_revision()
        if remote is None or remote != self._last_revision:
            self.request_reconcile("poll")
        else:
            self.request_reconcile("interval", fetch=False)

    def _drain(self) -> None:
        try:
            drain(self.store, self.notifiers)
        except Exception:  # notifications never stop the agent
            log.exception("outbox_drain_failed")

    def _prune_logs(self) -> None:
        """Delete the task logs of runs beyond the retention settings (hourly)."""
        days, runs = self.settings.log_retention_days, self.settings.log_retention_runs
        if days is None and runs is None:
            return
        from podium.retention import prune_logs

        pruned = prune_logs(
            self.settings.data_dir.absolute(),
            self.store.run_finish_times(),
            runs,
            days,
            time.time(),
        )
        if pruned:
            log.info("logs_pruned", runs=len(pruned), first=pruned[0], last=pruned[-1])

    def _check_schedules(self) -> None:
        try:
            if self.ws.reconciler.schedule_due():
                self.request_reconcile("schedule")
        except PodiumError as exc:
            log.warning("schedule_check_failed", error=str(exc))

    @staticmethod
    def _guard(job: Callable[[], None]) -> Callable[[], None]:
        """A periodic job's unexpected error is logged, never fatal to the main thread (the
        coordinator decides when errors that keep coming mean the agent must stop)."""

        def run() -> None:
            try:
                job()
            except Exception as exc:
                log.exception("agent_job_failed", job=job.__name__, error=str(exc))

        run.__name__ = job.__name__
        return run

    # -- coordinator thread ---------------------------------------------------------

    def _reconcile_pass(self) -> None:
        self._reconcile_requested.clear()
        reasons, self._reasons = sorted(self._reasons), set()
        fetch, self._fetch_wanted = self._fetch_wanted, False
        began = time.monotonic()
        try:
            self.store.put("replan_requested", "0")
            result = self.ws.reconciler.reconcile_once(drive=False, fetch=fetch)
        except PodiumError as exc:
            log.error("reconcile_failed", error=str(exc))
            return
        self.metrics.reconcile_duration.observe(time.monotonic() - began)
        if fetch and result.fetch_error:  # without a fetch there is no news of the remote
            self.metrics.fetch_errors.inc()
            self._fetch_failures += 1
            delay = min(MAX_FETCH_BACKOFF, self.settings.interval * 2**self._fetch_failures)
            self._next_fetch_at = time.monotonic() + delay
        elif fetch:
            self._fetch_failures = 0
        fetched = self.ws.reconciler.last_fetch
        self._last_revision = fetched.revision if fetched else None
        if result.plan is not None:
            self._last_outstanding = result.plan.outstanding_count
        if result.started or result.superseded:
            log.info(
                "reconciled",
                revision=(result.revision or "")[:12],
                reasons=reasons,
                started=result.started,
                superseded=result.superseded,
            )

    def _coordinate(self) -> None:
        """The coordinator's loop. An unexpected error is logged and the loop goes on after
        a pause (the store stays the truth: the engine re-reads it); only errors that keep
        coming for :data:`MAX_COORDINATOR_ERRORS` rounds in a row stop the agent, with a
        non-zero exit so that a supervisor restarts it."""
        engine = self.ws.engine
        errors = 0
        while not self._stop.is_set():
            try:
                if not engine.recovered:
                    engine.recover()
                if self._reconcile_requested.is_set():
                    self._reconcile_pass()
                finished = engine.finished_runs
                engine.drive(wait=False)
                if engine.finished_runs != finished:  # the end of a run leads to a new plan
                    self.request_reconcile("run_finished", fetch=False)
                if not engine.busy:
                    self._kick.wait(0.5)
                self._kick.clear()
                errors = 0
            except Exception as exc:
                errors += 1
                log.exception("coordinator_error", error=str(exc), consecutive=errors)
                if errors >= MAX_COORDINATOR_ERRORS:
                    log.error("coordinator_gave_up", error=str(exc))
                    self._exit_code = 1
                    self.stop()
                    break
                engine.resync()
                self._stop.wait(min(30.0, 0.5 * 2**errors))
        try:
            engine.drive(wait=True)  # graceful: running tasks get their grace period
        except Exception as exc:
            log.exception("coordinator_error", error=str(exc), during="shutdown")
            self._exit_code = 1

    # -- HTTP ---------------------------------------------------------------------

    def _start_http(self) -> None:
        """Bind the HTTP face now (a ConfigError if it cannot be), then serve it in a thread.

        Raises the soft limit on open files first, and keeps the face's connections to a
        share of it, so that clients can never take the descriptors the coordinator needs."""
        from podium.http.server import Limits, connection_budget, raise_open_files_limit

        open_files = raise_open_files_limit()
        host_port = self.settings.host_port
        if host_port is None:
            return
        from podium.http.app import build_app
        from podium.http.server import serve

        routes = [r for integ in self.integrations for r in integ.routes]
        limits = Limits(max_connections=connection_budget(open_files))
        face = serve(build_app(self, routes), host_port[0], host_port[1], limits)
        self._server = face
        if face.thread is not None:
            self._threads.append(face.thread)
        log.info(
            "http_listening",
            listen=self.settings.listen,
            max_connections=limits.max_connections,
            open_files=open_files,
        )

    # -- run ----------------------------------------------------------------------

    def run(self) -> int:
        from podium.cli.signals import graceful

        ws = self.ws
        ws.acquire(wait=self.settings.wait_lease)
        # signals are graceful from the start: a SIGTERM while starting stops the agent
        # as cleanly as one while it runs
        with graceful(self.stop):
            self._setup_integrations()
            try:
                self._start_http()  # before any work: a face that cannot listen stops the agent
            except PodiumError:
                ws.close()
                raise
            from podium.runners.containment import describe

            log.info(
                "agent_started",
                containment=describe(self.ws.data_dir)["containment"],
                source=ws.source.display,
                interval=self.settings.interval,
                state=str(self.store.path),
                listen=self.settings.listen,
                notifiers=sorted(self.notifiers),
            )
            interval = max(1, round(self.settings.interval))
            self.jobs.every(interval).seconds.do(self._guard(self._poll))
            self.jobs.every(1).seconds.do(self._guard(self._drain))
            self.jobs.every(15).seconds.do(self._guard(self._check_schedules))
            self.jobs.every(1).hours.do(self._guard(self._prune_logs))
            self._guard(self._prune_logs)()
            self.request_reconcile("start")
            coordinator = threading.Thread(target=self._coordinate, name="podium-coordinator")
            coordinator.start()
            for integ in self.integrations:
                if integ.start is not None:
                    try:
                        integ.start()
                    except Exception:  # an integration never takes the agent down
                        log.exception("integration_start_failed", integration=integ.name)
            while not self._stop.is_set():
                self.jobs.run_pending()
                idle = self.jobs.idle_seconds
                self._stop.wait(min(max(idle or 0.5, 0.05), 0.5))
        coordinator.join()
        self._drain()
        for integ in self.integrations:
            if integ.stop is not None:
                try:
                    integ.stop()
                except Exception:
                    log.exception("integration_stop_failed", integration=integ.name)
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=5)
        ws.close()
        log.info("agent_stopped", exit_code=self._exit_code)
        return self._exit_code


__all__ = ["Agent"]
