"""Task runners: one per task kind."""

from podium.runners.base import Outcome, OutcomeStatus, Runner, TaskContext

__all__ = ["Outcome", "OutcomeStatus", "Runner", "TaskContext"]
