"""Migrated PostgreSQL schemas, emptied and reused by the next test of the same worker.

A fresh schema costs the PostgreSQL server about half a second of catalog work to migrate
and drop, several seconds on a loaded 2-core machine, and some 700 tests ask for one. Emptying
a used schema (``DELETE`` every table, reset every sequence) costs a few milliseconds, and
leaves it as a freshly migrated one: migrations insert no rows but ``schema_version``'s. The
pool keeps one connection on an event loop of its own thread for its checks: a connection per
test, and a loop per call, cost more than the emptying.

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import asyncpg
from anyio.from_thread import BlockingPortal, start_blocking_portal

from tests.support.services import POSTGRES_URL, postgres_schema, unavailable

T = TypeVar("T")

# The schema's tables, columns, indexes and versions (from pg_catalog: the information_schema
# views cost the server tens of milliseconds a call), and the connections still open on it.
SHAPE = """SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) AS shape,
  (SELECT count(*) FROM pg_stat_activity WHERE application_name = $1::text) AS open FROM (
  SELECT c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':'
         || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ':' || a.attnotnull AS x
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = $1::text::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = $1::text
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


async def _create(conn: asyncpg.Connection) -> Schema | None:
    """A new migrated schema; ``None`` when migrations leave rows that emptying would lose."""
    from chachaml.store import open_store

    name = f"p_{uuid.uuid4().hex[:16]}"
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


async def _reset(conn: asyncpg.Connection, schema: Schema) -> bool:
    """Empty ``schema`` if it can be reused (see the module's docstring); else drop it."""
    try:
        found = await conn.fetchrow(SHAPE.format(schema=schema.name), schema.name)
        if found is not None and found["open"] == 0 and found["shape"] == schema.shape:
            await conn.execute(schema.empty_sql)
            return True
    except asyncpg.PostgresError:
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")  # e.g. a lock not granted in time: drop it instead
    await _drop(conn, schema.name)
    return False


async def _drop(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


class SchemaPool:
    """One test process's free migrated schemas (see the module's docstring)."""

    def __init__(self) -> None:
        self._free: list[Schema] = []
        self._reusable = True
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._conn: asyncpg.Connection | None = None

    def _call(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``work`` with the pool's connection on the pool's loop (both made on first use;
        a broken connection is replaced)."""
        if self._portal is None:
            self._portal_cm = start_blocking_portal()
            self._portal = self._portal_cm.__enter__()

        async def with_connection() -> T:
            if self._conn is None or self._conn.is_closed():
                self._conn = await _connect()
            return await work(self._conn)

        return self._portal.call(with_connection)

    @contextmanager
    def schema(self) -> Iterator[str]:
        """A migrated, empty schema's store URL for the duration of the block."""
        if not self._reusable:
            with postgres_schema() as url:
                yield url
            return
        try:
            schema = self._free.pop() if self._free else self._call(_create)
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
            if self._call(partial(_reset, schema=schema)):
                self._free.append(schema)

    def close(self) -> None:
        """Drop every free schema, close the connection and stop the loop."""
        try:
            for schema in self._free:
                self._call(partial(_drop, name=schema.name))
            self._free.clear()
            if self._conn is not None:
                self._call(lambda conn: conn.close())
        finally:
            if self._portal_cm is not None:
                self._portal_cm.__exit__(None, None, None)
                self._portal_cm = self._portal = None
