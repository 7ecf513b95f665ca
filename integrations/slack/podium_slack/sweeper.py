"""A background check that keeps run-thread parent messages current between events."""

from __future__ import annotations

import threading

from podium.log import get_logger
from podium.notify.base import RetryLater

from .api import SlackError
from .publisher import Publisher

log = get_logger("podium.slack")


class Sweeper:
    """Every ``every`` seconds, edit parents whose run changed status (see Publisher.sweep)."""

    def __init__(self, publisher: Publisher, every: float = 5.0) -> None:
        self.publisher = publisher
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="podium-slack-sweep", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            self.publisher.watch_recent()
        except Exception:  # never fatal: the next events still update messages
            log.exception("slack_sweep_failed")
        while not self._stop.wait(self.every):
            try:
                self.publisher.sweep()
            except (SlackError, RetryLater) as exc:
                log.info("slack_sweep_deferred", error=str(exc))
            except Exception:
                log.exception("slack_sweep_failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


__all__ = ["Sweeper"]
