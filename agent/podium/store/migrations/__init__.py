"""Schema migrations: one chain of forward steps per dialect, one generic runner.

A chain is a sequence of SQL scripts (statements separated by ``;``); step n takes the
schema from version n to n + 1, and the dialect says where the version is kept. Opening
a store runs the steps it has not applied yet, in order, in one write transaction, so
several processes opening a new file at once migrate it exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence

from podium.errors import ConfigError
from podium.store.sql.database import Database


def migrate(database: Database, steps: Sequence[str], where: str) -> None:
    """Bring ``database`` to schema ``len(steps)``; a newer schema is refused (ConfigError
    naming ``where``) and left untouched."""
    dialect = database.dialect
    latest = len(steps)
    with database.tx():
        version = dialect.schema_version(database)
        if version > latest:
            raise ConfigError(
                f"state store {where} has schema {version}, newer than this"
                f" podium understands ({latest}): upgrade podium"
            )
        for number in range(version, latest):
            for statement in steps[number].split(";"):
                if statement.strip():
                    database.execute(statement)
            dialect.set_schema_version(database, number + 1)


__all__ = ["migrate"]
