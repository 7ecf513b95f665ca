"""The embedded state store: one SQLite file, WAL mode, short transactions.

Durability: every state transition is committed (``synchronous=NORMAL`` in WAL
mode) before the side effect it announces, so a killed agent (SIGKILL) never
loses a committed transition; ``durable=True`` uses ``synchronous=FULL`` to also
survive power loss. All methods are safe to call from several threads of one
process; several processes share the file through SQLite's own locking.
"""

from __future__ import annotations

from podium.store.applied import AppliedStore
from podium.store.audit import AuditStore
from podium.store.runs import ACTIVE_STATUSES, RunStore


class SQLiteStore(RunStore, AppliedStore, AuditStore):
    """Executed state in one SQLite file (the parts live in one module per noun)."""


__all__ = ["ACTIVE_STATUSES", "SQLiteStore"]
