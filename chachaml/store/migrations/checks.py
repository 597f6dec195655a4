"""Widening a CHECK constraint of a SQLite table in place (a new status value).

SQLite cannot alter a constraint, and rebuilding a table that other tables reference (runs)
would cascade their deletes under ``PRAGMA foreign_keys`` (which a transaction cannot turn
off). Allowing one more value changes no stored row and invalidates none, so the table's
definition text is edited instead: the procedure SQLite's ALTER TABLE documentation gives for
constraint changes that leave the data as it is (``writable_schema``, then a schema version
bump so every connection reloads the schema). PostgreSQL alters the constraint in SQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from chachaml.store.sql.database import Tx


def widen_check(table: str, old: str, new: str) -> Callable[[Tx], Awaitable[None]]:
    """A migration step replacing the text ``old`` of ``table``'s definition with ``new``.

    ``new`` must only allow more than ``old`` (every stored row still passes); a definition
    without ``old`` raises, rather than migrating a schema this step does not know.
    """

    async def step(db: Tx) -> None:
        (row,) = await db.fetchall(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        )
        sql: str = row["sql"]
        if old not in sql:
            raise RuntimeError(f"table {table}'s definition has no {old!r} to widen")
        (version,) = await db.fetchall("PRAGMA schema_version")
        await db.execute("PRAGMA writable_schema = ON")
        try:
            await db.execute(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                (sql.replace(old, new), table),
            )
            await db.execute(f"PRAGMA schema_version = {int(version[0]) + 1}")
        finally:
            await db.execute("PRAGMA writable_schema = OFF")

    return step
