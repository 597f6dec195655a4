"""The PostgreSQL backend: an asyncpg connection pool, for teams sharing one database.

URL: ``postgresql://user:password@host:5432/database``, with optional query parameters
``pool_min_size`` / ``pool_max_size`` (defaults 1 and 10) and any PostgreSQL setting such as
``search_path=schema``. Writes run in READ COMMITTED transactions (the shared SQL takes the
row locks it needs) and are retried on serialization failures, deadlocks and lost
connections; reads run statement by statement; metric chunks are ingested with COPY. Migrations take
an advisory lock, so several ``chachaml serve`` processes can start at once. This module is the
:class:`~chachaml.store.sql.database.Database` seam for PostgreSQL; the SQL itself lives in the
repositories of :mod:`chachaml.store.sql`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from chachaml.errors import ChachamlError, InvalidInput, StoreUnavailable
from chachaml.store.migrations.runner import migrate
from chachaml.store.sql.database import (
    CommitSignal,
    Dialect,
    IntegrityViolation,
    Row,
    Tx,
    numbered,
)
from chachaml.store.sql.store import SQLStore

T = TypeVar("T")

WRITE_RETRIES = 8
EVENTS_CHANNEL = "chachaml_events"  # NOTIFY'd by a trigger of the events table
LISTEN_CONNECT_SECONDS = 10.0  # a LISTEN connection not made by then is tried again
SNAPSHOT_SQL = "SELECT txid_current_snapshot()::text"  # pg_current_snapshot() from 13 on
MIGRATION_LOCK = 0x63686163  # pg_advisory_xact_lock key shared by every chachaml process
RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
CONNECTION_LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # e.g. the backend was terminated by an admin
    asyncpg.InternalClientError,  # a connection caught mid-message by its termination
)
Connection = asyncpg.Connection | PoolConnectionProxy


def pool_options(url: str) -> tuple[str, int, int]:
    """Split chachaml's own pool settings off the URL: ``(dsn, min_size, max_size)``."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise InvalidInput(f"not a PostgreSQL URL (expected postgresql://...): {url!r}")
    query = dict(parse_qsl(parts.query))
    sizes = []
    for name, default in (("pool_min_size", 1), ("pool_max_size", 10)):
        raw = query.pop(name, str(default))
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidInput(f"{name} must be a positive integer, got {raw!r}")
        sizes.append(int(raw))
    if sizes[0] > sizes[1]:
        raise InvalidInput("pool_min_size must not exceed pool_max_size")
    return urlunsplit(parts._replace(query=urlencode(query))), sizes[0], sizes[1]


def redacted(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresTx:
    """:class:`~chachaml.store.sql.database.Tx` over an asyncpg connection (rows by name)."""

    def __init__(self, conn: Connection, keep_events: bool = False) -> None:
        self._conn = conn
        self._keep_events = keep_events
        self.wrote_events = False

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the rows changed."""
        try:
            return _rowcount(await self._conn.execute(numbered(sql), *params))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityViolation(str(exc)) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement per row (one round trip)."""
        if not rows:
            return
        try:
            await self._conn.executemany(numbered(sql), rows)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityViolation(str(exc)) from exc

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query."""
        return cast(list[Row], await self._conn.fetch(numbered(sql), *params))

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Bulk-insert with COPY."""
        try:
            await self._conn.copy_records_to_table(table, records=rows, columns=list(columns))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityViolation(str(exc)) from exc

    def mark_events(self) -> bool:
        """Note that this transaction writes events; ``False`` if the database keeps none."""
        self.wrote_events = self._keep_events
        return self._keep_events


class PostgresDatabase:
    """The :class:`~chachaml.store.sql.database.Database` of a PostgreSQL connection pool."""

    dialect: Dialect = "postgresql"
    event_poll_seconds = 2.0  # a safety net only: NOTIFY wakes readers

    def __init__(self, url: str, pool: asyncpg.Pool, dsn: str | None = None) -> None:
        self.url = redacted(url)
        self.keep_events = True
        self.committed_events = CommitSignal()
        self._pool = pool
        self._dsn = dsn or pool_options(url)[0]
        self._lane: PoolConnectionProxy | None = None  # a pooled connection kept for reads
        self._lane_busy = False

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        """Create the pool (no migration: see :meth:`PostgresStore.open`)."""
        dsn, min_size, max_size = pool_options(url)
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, reset=_keep_session
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"cannot connect to {redacted(url)}: {exc}") from exc
        return cls(url, pool, dsn)

    async def close(self) -> None:
        """Close the pool (the read lane's connection returned to it first)."""
        await self._drop_lane()
        await self._pool.close()

    async def _drop_lane(self) -> None:
        """Give the read lane's connection back to the pool, which resets or closes it."""
        lane, self._lane = self._lane, None
        if lane is not None:
            with anyio.CancelScope(shield=True), contextlib.suppress(*CONNECTION_LOST):
                await self._pool.release(lane)

    async def transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body`` in one transaction, retrying conflicts and lost connections.

        A connection that died before COMMIT was sent (server restart, terminated backend)
        is replaced and the transaction run again: nothing of it had been applied. A
        failure during COMMIT itself is ambiguous and reported as ``StoreUnavailable``.
        """
        for attempt in range(WRITE_RETRIES):
            committing = False
            try:
                async with self._pool.acquire() as conn:
                    transaction = conn.transaction()
                    await transaction.start()
                    tx = PostgresTx(conn, self.keep_events)
                    try:
                        result = await body(tx)
                    except BaseException:
                        with contextlib.suppress(*CONNECTION_LOST):
                            await transaction.rollback()
                        raise
                    committing = True
                    await transaction.commit()
                if tx.wrote_events:  # other processes hear of it by NOTIFY (a trigger)
                    self.committed_events.fire()
                return result
            except RETRYABLE as exc:
                if attempt == WRITE_RETRIES - 1:
                    raise StoreUnavailable(f"PostgreSQL write kept conflicting: {exc}") from exc
                await anyio.sleep(0.02 * 2**attempt)
            except CONNECTION_LOST as exc:
                await self._pool.expire_connections()  # the others likely died with this one
                if committing or attempt == WRITE_RETRIES - 1:
                    raise StoreUnavailable(f"PostgreSQL connection lost: {exc}") from exc
                await anyio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def listen_events(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on each ``NOTIFY chachaml_events``, until cancelled.

        A connection of its own, outside the pool: LISTEN is session state, which the pool's
        connections never keep. A lost connection is opened again (``wake`` then too, as
        notifications may have been missed meanwhile).
        """
        delay = 0.1
        while True:
            try:
                # Shielded: asyncpg cancelled mid-handshake leaves a future to fail unseen (an
                # "unexpected connection_lost()" error in the loop); the cancellation lands
                # once the connection is made, and the finally below closes it
                with anyio.CancelScope(shield=True):
                    conn = await asyncpg.connect(self._dsn, timeout=LISTEN_CONNECT_SECONDS)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            lost = anyio.Event()
            try:
                conn.add_termination_listener(partial(_set_on_close, lost))
                await conn.add_listener(EVENTS_CHANNEL, lambda *_args: wake())
                wake()
                await lost.wait()
            except CONNECTION_LOST:
                pass
            finally:
                conn.terminate()

    async def change_marker(self) -> str | None:
        """The database cluster's current snapshot (``xmin:xmax:in-progress xids``).

        Two equal snapshots see exactly the same committed transactions: every write takes
        a transaction id, which either moves ``xmax`` on or, once it ends, leaves the
        in-progress list. Writes anywhere in the cluster change it, so it errs only towards
        "changed". One round trip with a few bytes of answer.
        """
        rows = await self.query(lambda db: db.fetchall(SNAPSHOT_SQL))
        return str(rows[0][0])

    async def query(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body`` on a pooled connection, statement by statement (READ COMMITTED).

        No explicit transaction: BEGIN and COMMIT would double the round trips of a query,
        and every statement still sees only committed data.

        A read finding the read lane free runs on its connection, held out of the pool:
        the pool's acquire and release cost half the CPU of a one-row read (~170 of
        ~350 us). Concurrent reads take pooled connections as before. A read failing for
        any reason but a chachaml error (a lost connection, a cancellation) hands the lane's
        connection back to the pool, which cleans it up; the next read takes another.
        """
        if not self._lane_busy:
            self._lane_busy = True
            try:
                if self._lane is None:
                    self._lane = await self._pool.acquire()
                return await body(PostgresTx(self._lane))
            except ChachamlError:
                raise
            except CONNECTION_LOST as exc:
                await self._drop_lane()
                await self._pool.expire_connections()
                raise StoreUnavailable(f"PostgreSQL connection lost: {exc}") from exc
            except BaseException:
                await self._drop_lane()
                raise
            finally:
                self._lane_busy = False
        try:
            async with self._pool.acquire() as conn:
                return await body(PostgresTx(conn))
        except CONNECTION_LOST as exc:
            await self._pool.expire_connections()
            raise StoreUnavailable(f"PostgreSQL connection lost: {exc}") from exc


def _set_on_close(lost: anyio.Event, _conn: object) -> None:
    lost.set()


async def _keep_session(conn: Connection) -> None:
    """Return a connection to the pool as it is (asyncpg still rolls back an open transaction).

    The store never changes session state (no SET, LISTEN, cursors or session advisory
    locks), so the default reset query would be a wasted round trip on every read and write:
    about 0.2 ms of a 0.9 ms ``best_run``.
    """


async def _migrate(db: Tx) -> None:
    """Apply pending migrations under an advisory lock held until the transaction ends."""
    await db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
    await migrate(db, "postgresql")


class PostgresStore(SQLStore):
    """A :class:`~chachaml.store.server_state.ServerStore` on PostgreSQL.

    Open with :meth:`open`; the SQL is the shared repositories', over a :class:`PostgresDatabase`.
    """

    database: PostgresDatabase

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Create the pool and apply pending migrations."""
        database = await PostgresDatabase.open(url)
        try:
            await database.transact(_migrate)
        except asyncpg.PostgresError as exc:
            # e.g. a search_path naming a schema that does not exist: say which store and why
            await database.close()
            raise StoreUnavailable(
                f"cannot prepare the store {redacted(url)}: {exc}"
                " (create the schema or database first, or fix the URL)"
            ) from None
        except BaseException:
            await database.close()
            raise
        return cls(database)
