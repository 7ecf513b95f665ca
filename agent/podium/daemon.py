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
from typing import Any

import schedule
import structlog

from podium.cli.workspace import Workspace, open_workspace
from podium.decisions import Decisions
from podium.errors import PodiumError
from podium.integration import Integration, IntegrationContext, load_integrations
from podium.metrics import Metrics
from podium.notify.base import Notifier, drain
from podium.notify.console import ConsoleNotifier
from podium.settings import AgentSettings

log = structlog.get_logger("podium.agent")

MAX_FETCH_BACKOFF = 300.0


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

    def request_reconcile(self, reason: str) -> None:
        """Ask the coordinator for a full reconcile pass as soon as possible."""
        self._reasons.add(reason)
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
        fetched = self.ws.reconciler.last_fetch
        return {
            "source": fetched is not None and fetched.revision is not None,
            "store": self.store.writable(),
            "revision": fetched.revision if fetched else None,
            "source_error": fetched.error if fetched else None,
        }

    def webhook_credentials(self) -> tuple[str | None, str | None]:
        gh = self.settings.webhook_secret
        gl = self.settings.gitlab_token
        return (
            gh.get_secret_value() if gh else None,
            gl.get_secret_value() if gl else None,
        )

    def tracked_branch(self) -> str | None:
        return self.settings.branch

    # -- jobs (main thread) --------------------------------------------------------

    def _poll(self) -> None:
        now = time.monotonic()
        if self._fetch_failures and now < self._next_fetch_at:
            return
        if self.store.get("replan_requested") == "1":
            self.request_reconcile("decision")
            return
        remote = self.ws.source.remote_revision()
        if remote is None or remote != self._last_revision:
            self.request_reconcile("poll")

    def _drain(self) -> None:
        try:
            drain(self.store, self.notifiers)
        except Exception:  # notifications never stop the agent
            log.exception("outbox_drain_failed")

    def _check_schedules(self) -> None:
        try:
            if self.ws.reconciler.schedule_due():
                self.request_reconcile("schedule")
        except PodiumError as exc:
            log.warning("schedule_check_failed", error=str(exc))

    # -- coordinator thread ---------------------------------------------------------

    def _reconcile_pass(self) -> None:
        self._reconcile_requested.clear()
        reasons, self._reasons = sorted(self._reasons), set()
        began = time.monotonic()
        try:
            self.store.put("replan_requested", "0")
            result = self.ws.reconciler.reconcile_once(drive=False)
        except PodiumError as exc:
            log.error("reconcile_failed", error=str(exc))
            return
        self.metrics.reconcile_duration.observe(time.monotonic() - began)
        if result.fetch_error:
            self.metrics.fetch_errors.inc()
            self._fetch_failures += 1
            delay = min(MAX_FETCH_BACKOFF, self.settings.interval * 2**self._fetch_failures)
            self._next_fetch_at = time.monotonic() + delay
        else:
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
        engine = self.ws.engine
        try:
            engine.recover()
            while not self._stop.is_set():
                if self._reconcile_requested.is_set():
                    self._reconcile_pass()
                engine.drive(wait=False)
                if not engine.busy:
                    self._kick.wait(0.5)
                self._kick.clear()
            engine.drive(wait=True)  # graceful: running tasks get their grace period
        except Exception:
            log.exception("coordinator_crashed")
            self._stop.set()

    # -- HTTP ---------------------------------------------------------------------

    def _start_http(self) -> None:
        host_port = self.settings.host_port
        if host_port is None:
            return
        import uvicorn

        from podium.http.app import build_app

        routes = [r for integ in self.integrations for r in integ.routes]
        app = build_app(self, routes)
        config = uvicorn.Config(
            app,
            host=host_port[0],
            port=host_port[1],
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, name="podium-http", daemon=True)
        thread.start()
        self._threads.append(thread)
        log.info("http_listening", listen=self.settings.listen)

    # -- run ----------------------------------------------------------------------

    def run(self) -> int:
        from podium.cli.signals import graceful

        ws = self.ws
        ws.acquire(wait=self.settings.wait_lease)
        self._setup_integrations()
        log.info(
            "agent_started",
            source=ws.source.display,
            interval=self.settings.interval,
            state=str(self.store.path),
            listen=self.settings.listen,
            notifiers=sorted(self.notifiers),
        )
        self.jobs.every(max(1, round(self.settings.interval))).seconds.do(self._poll)
        self.jobs.every(1).seconds.do(self._drain)
        self.jobs.every(15).seconds.do(self._check_schedules)
        self.request_reconcile("start")
        coordinator = threading.Thread(target=self._coordinate, name="podium-coordinator")
        coordinator.start()
        self._start_http()
        for integ in self.integrations:
            if integ.start is not None:
                try:
                    integ.start()
                except Exception:  # an integration never takes the agent down
                    log.exception("integration_start_failed", integration=integ.name)
        with graceful(self.stop):
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
        log.info("agent_stopped")
        return 0


__all__ = ["Agent"]
