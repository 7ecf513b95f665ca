"""Prometheus metrics: store-backed gauges read at scrape time, plus process histograms."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from podium.store import Store

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


class _StoreCollector(Collector):
    """Counts that live in the state store (so they are right across restarts)."""

    def __init__(self, store: Store, outstanding: Callable[[], int]) -> None:
        self.store = store
        self.outstanding = outstanding

    def collect(self) -> Iterator[Any]:
        runs = GaugeMetricFamily("podium_runs", "Runs by status.", labels=["status"])
        for status, n in sorted(self.store.count_runs_by_status().items()):
            runs.add_metric([status], n)
        yield runs
        tasks = GaugeMetricFamily("podium_tasks", "Tasks of runs by status.", labels=["status"])
        for status, n in sorted(self.store.count_tasks_by_status().items()):
            tasks.add_metric([status], n)
        yield tasks
        yield GaugeMetricFamily(
            "podium_approvals_waiting",
            "Approval requests waiting for a decision.",
            value=len(self.store.approvals(status="pending")),
        )
        yield GaugeMetricFamily(
            "podium_outbox_depth",
            "Notifications not delivered yet.",
            value=self.store.outbox_depth(),
        )
        yield GaugeMetricFamily(
            "podium_outstanding_tasks",
            "Outstanding tasks in the last plan.",
            value=self.outstanding(),
        )


class Metrics:
    """One registry per agent (no process globals)."""

    def __init__(self, store: Store, outstanding: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(store, outstanding))
        self.task_duration = Histogram(
            "podium_task_duration_seconds",
            "Duration of task attempts.",
            ["workflow", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "podium_reconcile_duration_seconds",
            "Duration of reconcile passes (without runs).",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.fetch_errors = Counter(
            "podium_source_fetch_errors",
            "Failed fetches of the Git source.",
            registry=self.registry,
        )
        self.webhooks = Counter(
            "podium_webhooks",
            "Webhook requests by outcome.",
            ["outcome"],
            registry=self.registry,
        )

    def engine_hook(self, name: str, data: dict[str, Any]) -> None:
        """Engine hook: observe task durations."""
        if name in ("task_succeeded", "task_failed"):
            self.task_duration.labels(data["workflow"], data["status"]).observe(
                float(data.get("duration") or 0.0)
            )

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        data: bytes = generate_latest(self.registry)
        return data


__all__ = ["Metrics"]
