"""The embedded SQLite store: the SQL store over one SQLite file.

``podium.store.open_store`` builds it (the wiring); everything else names the protocol,
``podium.store.Store``.
"""

from __future__ import annotations

from podium.store.sql.runs import ACTIVE_STATUSES
from podium.store.sql.store import SQLStore
from podium.store.sqlite.database import SQLiteDatabase
from podium.store.sqlite.dialect import SQLITE, SQLiteDialect

SQLiteStore = SQLStore
"""The SQLite implementation's type (the SQL store over an SQLite database)."""

__all__ = ["ACTIVE_STATUSES", "SQLITE", "SQLiteDatabase", "SQLiteDialect", "SQLiteStore"]
