"""Task runners: one per task kind."""

from agent.runners.base import Outcome, OutcomeStatus, Runner, TaskContext

__all__ = ["Outcome", "OutcomeStatus", "Runner", "TaskContext"]
