"""Podium's error tree.

Every error Podium raises on purpose derives from :class:`PodiumError`; the
class says what the caller should do about it::

    PodiumError
    ├── StalledError          bad input: report it, do not retry until it changes
    │   ├── SpecError         a workflow file or podium.yaml is invalid
    │   └── ConfigError       a flag, environment variable or config file is invalid
    ├── WaitingError          nothing wrong, come back later (approval, lease held)
    │   └── LeaseHeldError    another agent owns the state store
    ├── TransientError        an outside system failed: back off and retry
    │   └── SourceError       the Git source could not be fetched or read
    ├── NotFoundError         a run, task or attempt named by the user does not exist
    ├── DecisionError         an approval or operator decision was refused
    ├── TaskFailedError       a task finally failed
    └── RollbackFailedError   a rollback action failed

Outside libraries' exceptions (git, httpx, sqlite3, slack_sdk) are translated
into these at the boundary that calls them, so the core never sees them.
"""

from __future__ import annotations


class PodiumError(Exception):
    """Root of every error Podium raises on purpose."""


class StalledError(PodiumError):
    """Bad input: report it and wait for it to change."""


class SpecError(StalledError):
    """One or more workflow files are invalid."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ConfigError(StalledError):
    """A setting (flag, environment variable, config file) is invalid."""


class WaitingError(PodiumError):
    """Nothing is wrong; the operation must wait."""


class LeaseHeldError(WaitingError):
    """Another agent holds the lease on the state store."""


class TransientError(PodiumError):
    """An outside system failed in a way that may pass."""


class SourceError(TransientError):
    """The Git source could not be fetched or read."""


class NotFoundError(PodiumError):
    """A run, task or attempt named by the user does not exist."""


class DecisionError(PodiumError):
    """An approval, rejection or operator decision was refused."""


class TaskFailedError(PodiumError):
    """A task failed after its last attempt."""


class RollbackFailedError(PodiumError):
    """A rollback action failed."""


__all__ = [
    "ConfigError",
    "DecisionError",
    "LeaseHeldError",
    "NotFoundError",
    "PodiumError",
    "RollbackFailedError",
    "SourceError",
    "SpecError",
    "StalledError",
    "TaskFailedError",
    "TransientError",
    "WaitingError",
]
