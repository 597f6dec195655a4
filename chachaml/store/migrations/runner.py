"""The migration runner, written once for both dialects.

It runs inside one write transaction of the backend (SQLite: ``BEGIN IMMEDIATE`` on the
writer; PostgreSQL: after an advisory lock), so processes opening one database at once never
race: the first applies what is pending, the others then find nothing left to do.
"""

from __future__ import annotations

import time

from chachaml.errors import SchemaTooNew
from chachaml.store.migrations import Migration, postgres, sqlite
from chachaml.store.sql.database import Dialect, Tx

MIGRATIONS: dict[Dialect, tuple[Migration, ...]] = {
    "sqlite": sqlite.MIGRATIONS,
    "postgresql": postgres.MIGRATIONS,
}
SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL, applied_at {real} NOT NULL)"
)
REAL = {"sqlite": "REAL", "postgresql": "DOUBLE PRECISION"}


async def migrate(db: Tx, dialect: Dialect, *, up_to: int | None = None) -> None:
    """Apply the dialect's pending migrations; ``SchemaTooNew`` for a newer database.

    ``up_to`` stops after that version: the older schema a test of a data migration starts
    from.
    """
    migrations = MIGRATIONS[dialect]
    await db.execute(SCHEMA_TABLE.format(real=REAL[dialect]))
    (found,) = await db.fetchall("SELECT coalesce(max(version), 0) AS version FROM schema_version")
    current = found["version"]
    known = migrations[-1].version
    if current > known:
        raise SchemaTooNew(
            f"the database schema is version {current}, newer than this chachaml knows"
            f" ({known}); upgrade chachaml to use this store"
        )
    for migration in migrations:
        if migration.version <= current:
            continue
        if up_to is not None and migration.version > up_to:
            break
        for statement in migration.statements:
            if isinstance(statement, str):
                await db.execute(statement)
            else:
                await statement(db)
        await db.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time()),
        )
