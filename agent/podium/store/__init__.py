"""Executed state: the ``Store`` protocol and the factory that opens one.

Everything above the store depends on ``Store`` (``podium.store.base``) and gets one
from ``open_store``; record types live in ``podium.store.records``.
"""

from __future__ import annotations

from pathlib import Path

from podium.store.base import Store


def open_store(path: Path | str, *, read_only: bool = False, durable: bool = False) -> Store:
    """The embedded SQLite store in the file at ``path`` (created and migrated as needed).

    ``read_only``: write nothing on opening once the schema is current (for commands that
    only look); ``durable``: ``synchronous=FULL``, surviving power loss, not only a crash.
    A file that cannot be used raises ``ConfigError`` with one line saying why.
    """
    from podium.store.sql.store import SQLStore  # the SQL parts load only when a store opens
    from podium.store.sqlite.database import SQLiteDatabase

    return SQLStore(SQLiteDatabase(path, read_only=read_only, durable=durable))


__all__ = ["Store", "open_store"]
