"""Migrated PostgreSQL schemas, emptied and reused by the next test of the same worker.

A fresh schema costs the PostgreSQL server about half a second of catalog work to migrate
and drop, several seconds on a loaded 2-core machine, and some 270 tests ask for one. Emptying
a used schema (``DELETE`` every table, reset every sequence) costs a few milliseconds, and
leaves it as a freshly migrated one: migrations insert no rows but ``schema_version``'s.

A schema is reused only when it is provably as new:

- its tables, columns, indexes and ``schema_version`` rows are what they were right after
  migrating (a test that altered the schema or wrote a newer version gets it dropped);
- no connection made with its URL is still open (its ``application_name`` is the schema's
  name), so nothing a test left running can write into the next test's store;
- it empties within a lock timeout.

Anything else drops it, as before. Tests that need an empty, unmigrated schema use
:func:`tests.support.services.postgres_schema`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import asyncpg

from tests.support.services import POSTGRES_URL, on_own_loop, postgres_schema, unavailable

SHAPE = """SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT table_name || '.' || column_name || ':' || data_type || ':'
         || coalesce(column_default, '') || ':' || is_nullable AS x
    FROM information_schema.columns WHERE table_schema = $1
  UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = $1
  UNION ALL SELECT 'v' || version || ':' || name FROM {schema}.schema_version
) AS shape"""


@dataclass
class Schema:
    """One migrated schema: its name, its shape when new, and the SQL that empties it."""

    name: str
    shape: str
    empty_sql: str

    @property
    def url(self) -> str:
        """A store URL on this schema whose connections carry its name."""
        separator = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{separator}search_path={self.name}&application_name={self.name}"


async def _connect() -> asyncpg.Connection:
    return await asyncpg.connect(POSTGRES_URL, timeout=5)


async def _create() -> Schema | None:
    """A new migrated schema; ``None`` when migrations leave rows that emptying would lose."""
    from chachaml.store import open_store

    name = f"p_{uuid.uuid4().hex[:16]}"
    conn = await _connect()
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        separator = "&" if "?" in POSTGRES_URL else "?"
        store = await open_store(f"{POSTGRES_URL}{separator}search_path={name}")
        await store.close()
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", name)
        ]
        for table in tables:
            if table != "schema_version" and await conn.fetchval(f"SELECT 1 FROM {name}.{table}"):
                await conn.execute(f"DROP SCHEMA {name} CASCADE")
                return None
        sequences = [
            r["sequencename"]
            for r in await conn.fetch(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = $1", name
            )
        ]
        statements = [
            "BEGIN",
            "SET LOCAL lock_timeout = '2s'",
            "SET LOCAL session_replication_role = replica",  # no FK order needed: all go
            *(f"DELETE FROM {name}.{t}" for t in tables if t != "schema_version"),
            *(f"SELECT setval('{name}.{s}', 1, false)" for s in sequences),
            "COMMIT",
        ]
        shape: str = await conn.fetchval(SHAPE.format(schema=name), name)
        return Schema(name, shape, ";\n".join(statements))
    finally:
        await conn.close()


async def _reset(schema: Schema) -> bool:
    """Empty ``schema`` if it can be reused (see the module's docstring); else drop it."""
    conn = await _connect()
    try:
        open_ = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", schema.name
        )
        shape = await conn.fetchval(SHAPE.format(schema=schema.name), schema.name)
        if open_ == 0 and shape == schema.shape:
            await conn.execute(schema.empty_sql)
            return True
    except asyncpg.PostgresError:
        pass  # e.g. a lock not granted in time: drop it instead
    finally:
        await conn.close()
    await _drop(schema.name)
    return False


async def _drop(name: str) -> None:
    conn = await _connect()
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


class SchemaPool:
    """One test process's free migrated schemas (see the module's docstring)."""

    def __init__(self) -> None:
        self._free: list[Schema] = []
        self._reusable = True

    @contextmanager
    def schema(self) -> Iterator[str]:
        """A migrated, empty schema's store URL for the duration of the block."""
        if not self._reusable:
            with postgres_schema() as url:
                yield url
            return
        try:
            schema = self._free.pop() if self._free else on_own_loop(_create)
        except (OSError, asyncpg.PostgresError) as exc:
            unavailable(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
        if schema is None:  # migrations insert rows: never reuse, one schema per test
            self._reusable = False
            with postgres_schema() as url:
                yield url
            return
        try:
            yield schema.url
        finally:
            if on_own_loop(lambda: _reset(schema)):
                self._free.append(schema)

    def close(self) -> None:
        """Drop every free schema."""
        for schema in self._free:
            on_own_loop(partial(_drop, schema.name))
        self._free.clear()
